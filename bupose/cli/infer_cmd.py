"""``bupose infer IMAGE... --checkpoint CKPT``: the test-time pipeline on image files or folders.

Outputs (all optional, all written atomically):
  --json OUT.json      COCO keypoint results for every image (written once, at the end: a failing
                       image stops the run with an error naming it and no partial results file);
  --save-maps DIR      per image ``<stem>.npz`` with the decoder inputs (written as each image is
                       done; ``bupose decode`` re-decodes them without the network);
  --draw DIR           per image ``<stem>.jpg`` with the poses drawn;
  --annotations GT     take image ids from GT (matched by file name) and print the COCO or
                       CrowdPose scores of the results on the given images.
With an official YAML (``--config``), its TEST.* values and input size are the defaults.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

# official TEST.* keys (lower case) -> GroupingParams fields (MAX_NUM_PEOPLE is also the official
# top-k; NMS_PADDING is implied by the kernel)
_TEST_TO_PARAMS = {
    "max_num_people": ("max_people", "top_k"),
    "detection_threshold": ("detection_threshold",),
    "tag_threshold": ("tag_threshold",),
    "use_detection_val": ("use_detection_val",),
    "ignore_too_much": ("ignore_too_much",),
    "nms_kernel": ("nms_kernel",),
    "adjust": ("adjust",),
    "refine": ("refine",),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bupose.cli.common import add_model_args
    from bupose.cli.infer_topdown import add_topdown_args

    p = subparsers.add_parser(
        "infer",
        help="detect poses in images (HigherHRNet/HAE test pipeline)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    add_model_args(p)
    add_decoder_args(p)
    add_topdown_args(p)
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test (default: the config's TEST.FLIP_TEST, else on)")
    p.add_argument("--scales", type=parse_scales, default=None, metavar="S1,S2,...",
                   help="test scale factors, e.g. 0.5,1,2 (default: TEST.SCALE_FACTOR, else 1)")
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
    p.set_defaults(func=run)


def add_decoder_args(p: argparse.ArgumentParser) -> None:
    """--decoder and the grouping thresholds, shared with ``bupose decode``."""
    p.add_argument("--decoder", choices=("ae", "hae", "cal"), default="ae",
                   help="grouping: associative embedding (official order) or HAE progressive")
    p.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                   help="keypoint candidate threshold "
                        "(default: TEST.DETECTION_THRESHOLD, else 0.1)")
    p.add_argument("--tag-threshold", type=float, default=None, metavar="T",
                   help="tag distance threshold (default: TEST.TAG_THRESHOLD, else 1.0)")
    p.add_argument("--solver", choices=("scipy", "munkres"), default="scipy",
                   help="assignment solver: scipy (default) or munkres (ties between equally "
                        "good assignments broken as the official munkres 1.1.4 does)")


def parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated numbers: {text!r}") from None
    if not scales or any(not s > 0 for s in scales):
        raise argparse.ArgumentTypeError(f"scales must be positive numbers, got {text!r}")
    return scales


def grouping_params(
    test: dict[str, Any], detection_threshold: float | None, tag_threshold: float | None,
    solver: str = "scipy",
) -> Any:
    """The decoder's GroupingParams from official TEST settings (lower-case keys) and overrides."""
    from bupose.decoders.params import GroupingParams

    values: dict[str, Any] = {}
    for key, fields in _TEST_TO_PARAMS.items():
        if key in test:
            values.update((field, test[key]) for field in fields)
    if detection_threshold is not None:
        values["detection_threshold"] = detection_threshold
    if tag_threshold is not None:
        values["tag_threshold"] = tag_threshold
    return GroupingParams(solver=solver, **values)


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


def _test_settings(model: Any) -> tuple[dict[str, Any], int | None]:
    meta = getattr(model, "meta", None)
    test = dict(getattr(meta, "test", None) or {})
    return {k.lower(): v for k, v in test.items()}, getattr(meta, "input_size", None)


def build_predictor(args: argparse.Namespace, model: Any) -> Any:
    """The Predictor from the command line, with the checkpoint/config test settings as defaults."""
    from bupose.inference.predictor import Predictor

    test, meta_size = _test_settings(model)
    flip = args.flip if args.flip is not None else bool(test.get("flip_test", True))
    scales = args.scales or tuple(float(s) for s in test.get("scale_factor", (1.0,)))
    input_size = args.input_size or meta_size or 512
    spec = model.meta.spec
    try:
        return Predictor(
            model, spec, decoder=args.decoder,
            params=grouping_params(test, args.detection_threshold, args.tag_threshold,
                                   args.solver),
            input_size=int(input_size), flip=flip, scales=scales,
            project2image=bool(test.get("project2image", True)),
            use_heatmaps=test.get("with_heatmaps"), use_tags=test.get("with_ae"),
            device=args.device,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None


def save_maps(path: Path, arrays: dict[str, np.ndarray]) -> None:
    from bupose.utils.io import atomic_write

    atomic_write(path, lambda f: np.savez(f, **arrays))


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from bupose.cli.common import model_from_args
    from bupose.evaluation.results import write_coco_results
    from bupose.utils.io import read_image, read_json

    if args.checkpoint is None and args.model is not None:
        print(f"warning: --model {args.model} without --checkpoint: random weights "
              "(smoke runs and benchmarks only)", file=sys.stderr)
    if args.boxes is not None:  # person boxes: a top-down model (MPII annotations too)
        from bupose.cli.infer_topdown import run_topdown

        return run_topdown(args, model_from_args(args))
    images = collect_images(args.images)
    gt = read_json(args.annotations, "annotation file") if args.annotations else None
    ids = image_ids(images, gt, args.annotations)
    if args.save_maps or args.draw:
        _check_unique_stems(images)
    model = model_from_args(args)
    from bupose.models import model_family

    if model_family(model) == "topdown":
        from bupose.cli.infer_topdown import run_topdown

        return run_topdown(args, model)
    model.to(args.device).eval()
    predictor = build_predictor(args, model)
    entries: list[dict[str, Any]] = []
    num_people = 0
    with torch.inference_mode():
        for path, image_id in zip(tqdm(images, desc="infer", unit="img"), ids):
            image = read_image(path)
            maps = predictor.maps(image)
            if args.save_maps:
                arrays = maps.to_numpy()
                arrays.update(image_id=np.int64(image_id), file_name=np.str_(path.name))
                save_maps(args.save_maps / f"{path.stem}.npz", arrays)
            poses = predictor.decode(maps)
            num_people += len(poses)
            entries.extend(poses.to_coco(image_id, file_name=path.name))
            if args.draw:
                _draw(args.draw / f"{path.stem}.jpg", image, poses, predictor.spec)
    if args.json:
        write_coco_results(args.json, entries)
    print(f"{len(images)} images, {num_people} people"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    if gt is not None:
        _print_scores(entries, gt, ids, predictor.spec)
    return 0


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
