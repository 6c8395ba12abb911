"""``bupose infer IMAGE... --checkpoint CKPT``: the test-time pipeline on image files or folders.

Outputs (all optional, all written atomically):
  --json OUT.json      COCO keypoint results for every image (written once, at the end; an
                       unreadable image is skipped with a warning and listed at the end, the
                       exit status is 2 only when every input failed; --strict stops at the
                       first bad file with no results file);
  --save-maps DIR      per image ``<stem>.npz`` with the decoder inputs and the test settings
                       (written as each image is done; ``bupose decode`` re-decodes them without
                       the network, with the same settings unless flags change them);
  --draw DIR           per image ``<stem>.jpg`` with the poses drawn (above --min-score, each
                       person in its colour with its score);
  --show-maps DIR      per image ``<stem>_heatmaps.jpg``, ``_joints.jpg``, ``_tags.jpg`` and
                       ``_grouping.jpg`` (which joint joined which person);
  --annotations GT     take image ids from GT (matched by file name) and print the COCO or
                       CrowdPose scores of the results on the given images.
Test settings (decoder, flip, scales, input size, grouping thresholds): a flag wins over the
checkpoint's recorded settings (or an official YAML's TEST.* with ``--official-config``), which
win over the official defaults (``bupose.inference.settings``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bupose.cli.common import add_model_args
    from bupose.cli.infer_offsets import add_offsets_args
    from bupose.cli.infer_stream import add_stream_args
    from bupose.cli.infer_topdown import add_topdown_args

    p = subparsers.add_parser(
        "infer",
        help="detect poses in images (HigherHRNet/HAE test pipeline)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image or video files, folders, "
                   "glob patterns or a webcam index")
    add_model_args(p)
    add_decoder_args(p)
    add_topdown_args(p)
    add_offsets_args(p)
    add_stream_args(p)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test (default: the checkpoint's / TEST.FLIP_TEST, else on)")
    p.add_argument("--scales", type=parse_scales, default=None, metavar="S1,S2,...",
                   help="test scale factors, e.g. 0.5,1,2 (default: the checkpoint's / "
                        "TEST.SCALE_FACTOR, else 1)")
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input size of the short side (default: the checkpoint's, else 512)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write COCO keypoint results")
    p.add_argument("--save-maps", type=Path, default=None, metavar="DIR",
                   help="write <stem>.npz decoder inputs per image")
    p.add_argument("--annotations", type=Path, default=None, metavar="GT.json",
                   help="COCO-format ground truth: image ids by file name, and print scores")
    p.add_argument("--draw", type=Path, default=None, metavar="DIR",
                   help="write images with the poses drawn")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                   help="forward-pass precision (bf16/fp16 autocast; pays on CPUs with "
                        "AVX-512-bf16/AMX and on GPUs; default fp32)")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first unreadable image (default: skip it with a warning)")
    p.add_argument("--show-maps", type=Path, default=None, metavar="DIR",
                   help="write heatmap, per-joint, tag-map and grouping pictures per image")
    p.set_defaults(func=run)


def add_decoder_args(p: argparse.ArgumentParser) -> None:
    """--decoder, the grouping settings and --min-score, shared with ``bupose decode``.

    Every default is None = "not given": the checkpoint's (or the saved maps') settings apply,
    else the official defaults (``bupose.inference.settings.TestSettings``).
    """
    p.add_argument("--decoder", choices=("ae", "hae", "cal", "offsets"), default=None,
                   help="grouping: associative embedding (official order) or HAE progressive "
                        "(default: the checkpoint's decoder, else ae)")
    p.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                   help="keypoint candidate threshold (default: the checkpoint's / "
                        "TEST.DETECTION_THRESHOLD, else 0.1)")
    p.add_argument("--tag-threshold", type=float, default=None, metavar="T",
                   help="tag distance threshold (default: the checkpoint's / TEST.TAG_THRESHOLD, "
                        "else 1.0)")
    p.add_argument("--max-people", type=int, default=None, metavar="N",
                   help="at most N people are grouping candidates (official MAX_NUM_PEOPLE; "
                        "also the top-k unless --top-k is given; default: the checkpoint's, "
                        "else 30)")
    p.add_argument("--top-k", type=int, default=None, metavar="N",
                   help="peaks kept per joint type after NMS (default: --max-people's value)")
    p.add_argument("--nms-kernel", type=int, default=None, metavar="N",
                   help="odd side of the peak NMS window (default: the checkpoint's, else 5)")
    p.add_argument("--solver", choices=("scipy", "munkres"), default=None,
                   help="assignment solver: scipy (default) or munkres (ties between equally "
                        "good assignments broken as the official munkres 1.1.4 does)")
    p.add_argument("--min-score", type=float, default=0.0, metavar="S",
                   help="write and draw only people with score >= S (default 0: all; grouping "
                        "and --save-maps are unaffected)")


def settings_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The test-setting flags of ``add_decoder_args`` (and infer's --flip, --scales,
    --input-size) as ``TestSettings.replace`` keys; None = not given."""
    names = ("decoder", "detection_threshold", "tag_threshold", "max_people", "top_k",
             "nms_kernel", "solver", "flip", "scales", "input_size")
    return {name: getattr(args, name, None) for name in names}


def keep_confident(poses: Any, min_score: float) -> Any:
    """The people of ``poses`` whose score is >= ``min_score`` (all of them when it is <= 0)."""
    if min_score <= 0 or len(poses) == 0:
        return poses
    keep = poses.scores >= min_score
    tags = None if poses.tags is None else poses.tags[keep]
    return type(poses)(poses.keypoints[keep], poses.scores[keep], tags=tags)


def parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {text!r}") from None
    if not scales or any(not s > 0 for s in scales):
        raise argparse.ArgumentTypeError(f"scales must be positive numbers, got {text!r}")
    return scales


def collect_images(paths: Sequence[str | Path]) -> list[Path]:
    """Image files from files and folders (a folder's images sorted by name), in argument order."""
    images: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise DataError(f"{item}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            images.extend(found)
        elif item.is_file():
            images.append(item)
        else:
            raise DataError(f"{item}: no such image file or folder")
    return images


def image_ids(
    images: Sequence[Path], annotations: dict[str, Any] | None, gt_path: Any
) -> list[int]:
    """COCO image ids: from the ground truth by file name when given, else the numeric file stem
    (``000000000785.jpg`` -> 785), else the image's position in the list."""
    if annotations is not None:
        entries = annotations.get("images", [])
        by_name = {Path(im["file_name"]).name: int(im["id"]) for im in entries}
        missing = [p.name for p in images if p.name not in by_name]
        if missing:
            raise DataError(
                f"{gt_path}: no image entry with file_name {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        return [by_name[p.name] for p in images]
    return [int(p.stem) if p.stem.isdigit() else i for i, p in enumerate(images)]


def build_predictor(args: argparse.Namespace, model: Any) -> Any:
    """The Predictor: flags > the model's settings (checkpoint / official YAML) > defaults."""
    from bupose.inference.predictor import Predictor
    from bupose.inference.settings import settings_for_model

    settings = settings_for_model(model, **settings_flags(args))
    try:
        return Predictor(model, model.meta.spec, settings=settings, device=args.device,
                         precision=getattr(args, "precision", "fp32"))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def save_maps(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from bupose.utils.io import atomic_write

    atomic_write(path, lambda f: np.savez(f, **arrays))


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from bupose.cli.infer_files import check_skipped, read_or_skip
    from bupose.evaluation.results import write_coco_results
    from bupose.inference.pipeline import overlapped
    from bupose.utils.io import read_json

    if args.checkpoint is None and args.model is not None:
        print(f"warning: --model {args.model} without --checkpoint: random weights "
              "(smoke runs and benchmarks only)", file=sys.stderr)
    from bupose.cli.infer_stream import infer_model, run_stream, wants_stream

    if args.boxes is not None:  # person boxes: a top-down model (MPII annotations too)
        from bupose.cli.infer_topdown import run_topdown

        return run_topdown(args, infer_model(args, use_default=False))

    if wants_stream(args):  # videos, webcams, globs, --batch, --track, torchrun (infer_stream)
        return run_stream(args)
    images = collect_images(args.images)
    gt = read_json(args.annotations, "annotation file") if args.annotations else None
    ids = image_ids(images, gt, args.annotations)
    if args.save_maps or args.draw or args.show_maps:
        _check_unique_stems(images)
    predictor = _image_predictor(args)
    if isinstance(predictor, int):  # a top-down or SimplePose run, done
        return predictor
    entries: list[dict[str, Any]] = []
    skipped: list[str] = []
    num_people = 0
    finish = functools.partial(_finish_image, args, predictor, dict(zip(images, ids)))
    work = overlapped(images, lambda path: read_or_skip(path, skipped, args.strict),
                      predictor.maps, finish)
    for _, found in tqdm(work, total=len(images), desc="infer", unit="img"):
        if found is not None:
            num_people += len(found)
            entries.extend(found)
    check_skipped(skipped, len(images))
    if args.json:
        write_coco_results(args.json, entries)
    print(f"{len(images) - len(skipped)} images, {num_people} people"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    if gt is not None:
        _print_scores(entries, gt, ids, predictor.spec)
    return 0


def _image_predictor(args: argparse.Namespace) -> Any:
    """The AE predictor of an image run: torch-free onnxruntime when it applies
    (``infer_onnx.fast_predictor``), else ``build_predictor`` on the model. A top-down or
    SimplePose model runs its own loop here and its exit status is returned instead."""
    from bupose.cli.infer_onnx import fast_predictor
    from bupose.cli.infer_stream import infer_model

    predictor = fast_predictor(args)
    if predictor is not None:
        return predictor
    model = infer_model(args)  # --onnx FILE, else the model arguments
    from bupose.models import model_family

    if model_family(model) == "topdown":
        from bupose.cli.infer_topdown import run_topdown

        return run_topdown(args, model)
    if model_family(model) == "offsets":
        from bupose.cli.infer_offsets import run_offsets

        return run_offsets(args, model)
    model.to(args.device).eval()
    return build_predictor(args, model)


def _finish_image(args: argparse.Namespace, predictor: Any, ids: dict[Path, int], path: Path,
                  image: np.ndarray, maps: Any) -> list[dict[str, Any]]:
    """Decode one image's maps, write its files (--save-maps, --draw, --show-maps); its COCO
    entries (runs in the finisher thread of ``bupose.inference.pipeline.overlapped``)."""
    from bupose.cli.infer_files import show_maps

    if args.save_maps:
        arrays = maps.to_numpy()
        arrays.update(image_id=np.int64(ids[path]), file_name=np.str_(path.name),
                      settings=np.str_(json.dumps(predictor.settings.to_meta())))
        save_maps(args.save_maps / f"{path.stem}.npz", arrays)
    poses = keep_confident(predictor.decode(maps), args.min_score)
    if args.draw:
        _draw(args.draw / f"{path.stem}.jpg", image, poses, predictor.spec)
    if args.show_maps:
        show_maps(args.show_maps, path.stem, image, maps, poses, predictor.spec)
    return list(poses.to_coco(ids[path], file_name=path.name))


def _check_unique_stems(images: Sequence[Path]) -> None:
    seen: dict[str, Path] = {}
    for p in images:
        if p.stem in seen:
            raise DataError(f"{p} and {seen[p.stem]} would write the same <stem> output file")
        seen[p.stem] = p


def _draw(path: Path, image: np.ndarray, poses: Any, spec: Any) -> None:
    import cv2

    from bupose.utils.io import atomic_write_bytes
    from bupose.viz.draw import draw_poses

    drawn = draw_poses(image, poses.keypoints, spec, scores=poses.scores)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(drawn), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"{path}: cannot encode the drawn image")
    atomic_write_bytes(path, data.tobytes())


def _print_scores(
    entries: list[dict[str, Any]], gt: dict[str, Any], ids: Sequence[int], spec: Any
) -> None:
    """COCO or CrowdPose AP (picked from the ground truth, as ``bupose eval``) over the images
    that were given (the ground truth restricted to them)."""
    from bupose.evaluation import format_keypoint_stats, score_keypoints

    keep = set(ids)
    subset = dict(gt)
    subset["images"] = [im for im in gt.get("images", []) if int(im["id"]) in keep]
    subset["annotations"] = [a for a in gt.get("annotations", []) if int(a["image_id"]) in keep]
    print(format_keypoint_stats(score_keypoints(entries, subset, None, spec)))
