"""``bupose eval --checkpoint CKPT --annotations GT --images DIR``: evaluate a model on a dataset.

Every image of the ground truth (read from DIR by its ``file_name``) goes through the test-time
Predictor with the checkpoint's test settings (flags win over them, as in ``bupose infer``); the
results are then scored exactly like ``bupose eval --results`` (COCO or CrowdPose AP). This is
what validation during ``bupose train`` runs, for any checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError


def add_checkpoint_args(parser: argparse.ArgumentParser) -> None:
    """The arguments that make ``bupose eval`` predict instead of reading --results."""
    from bupose.cli.infer_cmd import add_decoder_args, parse_scales

    g = parser.add_argument_group("evaluate a checkpoint (instead of --results)")
    g.add_argument("--checkpoint", type=Path, default=None, metavar="CKPT",
                   help="model weights (a bupose checkpoint, or official weights with "
                        "--official-config, zoo:NAME or a URL)")
    g.add_argument("--official-config", dest="config", type=Path, default=None, metavar="YAML",
                   help="the official experiment YAML of official weights")
    g.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="folder holding the ground truth's images (by file_name)")
    g.add_argument("--max-images", type=int, default=0, metavar="N",
                   help="evaluate the first N images only (0 = all)")
    g.add_argument("--save-results", type=Path, default=None, metavar="OUT.json",
                   help="also write the COCO results of the checkpoint")
    g.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test (default: the checkpoint's, else on)")
    g.add_argument("--scales", type=parse_scales, default=None, metavar="S1,S2,...",
                   help="test scale factors (default: the checkpoint's, else 1)")
    g.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input size of the short side (default: the checkpoint's)")
    g.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_decoder_args(g)  # type: ignore[arg-type]  # a group takes the same add_argument calls


def predict_dataset(args: argparse.Namespace) -> tuple[list[dict[str, Any]], Any]:
    """COCO result entries of the checkpoint on every (or the first --max-images) image, and the
    ground truth to score them against (restricted to those images when --max-images cuts)."""
    import torch
    from tqdm import tqdm

    from bupose.cli.common import model_from_args
    from bupose.cli.infer_cmd import build_predictor, keep_confident
    from bupose.data.coco import CocoKeypoints
    from bupose.engine.evaluate import ground_truth_subset
    from bupose.models import model_family

    if args.images is None:
        raise ConfigError("--checkpoint needs --images DIR (the ground truth's image folder)")
    args.model, args.num_keypoints = None, None
    model = model_from_args(args)
    if model_family(model) != "ae":
        raise ConfigError(f"{args.checkpoint}: eval --checkpoint evaluates bottom-up "
                          f"(AE/HAE) models; this is a {model_family(model)!r} model")
    model.to(args.device).eval()
    predictor = build_predictor(args, model)
    reader = CocoKeypoints(args.annotations, args.images, predictor.spec, train_filter=False)
    n = len(reader) if args.max_images <= 0 else min(len(reader), args.max_images)
    results: list[dict[str, Any]] = []
    with torch.inference_mode():
        for i in tqdm(range(n), desc="eval", unit="img", file=sys.stderr):
            sample = reader[i]
            poses = keep_confident(predictor(sample.image), args.min_score)
            results.extend(poses.to_coco(int(sample.image_id)))
    if args.save_results:
        from bupose.evaluation.results import write_coco_results

        write_coco_results(args.save_results, results)
    annotations: Any = args.annotations
    if n < len(reader):
        annotations = ground_truth_subset(args.annotations, [int(i) for i in reader.image_ids[:n]])
    return results, annotations
