"""``bupose eval``: score a results file against its ground truth and print the standard table;
with ``--checkpoint CKPT --images DIR`` the results are first predicted by the model
(``bupose.cli.eval_checkpoint``)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError
from bupose.evaluation import (
    EvaluationWarning,
    evaluate_pckh,
    format_keypoint_stats,
    format_pckh_stats,
    load_mpii_ground_truth,
    score_keypoints,
)
from bupose.utils.io import atomic_write_json

KINDS = ("coco", "crowdpose", "mpii")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a results file: COCO / CrowdPose keypoint AP or MPII PCKh",
        description=(
            "Score a results file against its ground truth and print the standard table. "
            "COCO: pycocotools keypoint AP (maxDets 20). CrowdPose: the official crowdposetools "
            "statistics (xtcocotools 'keypoints_crowd' semantics). MPII: PCKh@0.5 and @0.1 with "
            "the official head-box normalisation. With --checkpoint and --images, a model is "
            "evaluated on the ground truth's images instead of a results file."
        ),
    )
    parser.add_argument("--results", default=None, metavar="RESULTS",
                        help="results JSON (COCO-style entries; MPII: JSON list or .npy array)")
    parser.add_argument("--annotations", required=True, metavar="GT",
                        help="ground truth: COCO-style JSON, or the MPII PCKh .mat file")
    parser.add_argument("--kind", choices=KINDS, default=None,
                        help="protocol (default: mpii for a .mat file, crowdpose when the images "
                             "carry crowdIndex, else coco)")
    parser.add_argument("--spec", default=None, metavar="NAME_OR_FILE",
                        help="keypoint spec giving the OKS sigmas (default: coco17 for K=17, "
                             "crowdpose14 for K=14 with the crowdpose kind)")
    parser.add_argument("--json", default=None, metavar="OUT",
                        help="also write the statistics to this JSON file (atomically)")
    parser.add_argument("--one-based", action="store_true",
                        help="MPII: predictions are already in MATLAB 1-based pixels (no +1)")
    from bupose.cli.eval_checkpoint import add_checkpoint_args

    add_checkpoint_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.results is None) == (args.checkpoint is None):
        raise ConfigError("give either --results RESULTS or --checkpoint CKPT --images DIR")
    kind = args.kind
    if kind is None and Path(args.annotations).suffix.lower() == ".mat":
        kind = "mpii"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EvaluationWarning)
        if kind == "mpii":
            table, payload = _run_mpii(args)
        else:
            table, payload = _run_keypoints(args, kind)
    for warning in caught:
        if issubclass(warning.category, EvaluationWarning):
            print(f"bupose eval: warning: {warning.message}", file=sys.stderr)
    print(table)
    if args.json:
        source = {"results": str(args.results)} if args.results else {
            "checkpoint": str(args.checkpoint), "images": str(args.images)}
        payload = {**source, "annotations": str(args.annotations), **payload}
        atomic_write_json(args.json, payload, indent=2)
        print(f"wrote {args.json}")
    return 0


def _run_keypoints(args: argparse.Namespace, kind: str | None) -> tuple[str, dict[str, Any]]:
    results, annotations = args.results, args.annotations
    if args.checkpoint is not None:
        from bupose.cli.eval_checkpoint import predict_dataset

        results, annotations = predict_dataset(args)
    evaluation = score_keypoints(results, annotations, kind, args.spec)
    payload = {
        "kind": evaluation.kind,
        "spec": evaluation.spec.name,
        "num_images": evaluation.num_images,
        "num_persons": evaluation.num_persons,
        "num_results": evaluation.num_results,
        "stats": evaluation.stats,
    }
    return format_keypoint_stats(evaluation), payload


def _run_mpii(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.checkpoint is not None:
        raise ConfigError("--checkpoint evaluates COCO-format ground truth; for MPII PCKh run "
                          "the model first and pass --results")
    gt = load_mpii_ground_truth(args.annotations)
    stats = evaluate_pckh(args.results, gt, one_based=args.one_based)
    num_persons = len(gt.positions)
    payload = {"kind": "mpii", "num_persons": num_persons, "stats": stats}
    return format_pckh_stats(stats, num_persons), payload
