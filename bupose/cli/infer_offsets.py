"""SimplePose V2 ("offsets" family) in ``bupose infer`` and ``bupose decode --decoder offsets``.

``bupose infer IMAGES --checkpoint OFFICIAL_OG.pth`` runs the official test path
(``bupose.inference.offset_predictor``) with the README evaluation flags as defaults:
``--resize-mode long-edge|fixed-height`` (default long-edge), ``--input-size`` (default the
model's, 640), ``--flip/--no-flip`` (default flip), ``--thre-hmp 0.04``, ``--topk 32``,
``--dist-max 40``, ``--person-thre 0.04`` (+ ``--cat-flip-offset``). Outputs: ``--json``
(COCO entries: keypoints x, y, heatmap value, 0, 0, 0 for a joint not found; score = sum of the
values / K as ``evaluate.py``; the official file writes a not-found joint at offset/scale with a
0/1 flag instead), ``--draw``, ``--save-maps DIR`` (per image ``<stem>.npz``: heatmaps (K,h,w),
offsets (2L,h,w), meta_offset, meta_scale (2,), image_id, file_name, offset_params: JSON of the
decoding settings, reused by ``bupose decode`` unless flags change them), ``--annotations`` (AP),
``--show-maps DIR`` (heatmaps, per-joint heatmaps, guiding offsets at the joints found, grouping:
``bupose.viz.offsets``). An unreadable image is skipped with a warning, as on the AE path
(``bupose.cli.infer_files``: exit 2 only when every input failed; ``--strict`` stops).

``bupose decode MAPS.npz... --decoder offsets`` decodes such files (heatmaps (K,h,w) or
(1,K,h,w), offsets (2L,h,w) or (1,2L,h,w) at stride 4 of the network input; with meta_offset and
meta_scale the results are in image pixels, else in input pixels).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import ConfigError, DataError


def add_offsets_args(p: argparse.ArgumentParser, infer: bool = True) -> None:
    """Options of the offsets family (None = the official default)."""
    g = p.add_argument_group("SimplePose V2 (offsets) models / --decoder offsets")
    if infer:
        g.add_argument("--resize-mode", choices=("long-edge", "fixed-height"), default=None,
                       help="long edge = input size + centre pad (default), or height = input "
                            "size + right/bottom pad to a multiple of 128")
        g.add_argument("--cat-flip-offset", action="store_true",
                       help="stack the flip-test offsets as 4-vectors instead of averaging")
    g.add_argument("--thre-hmp", type=float, default=None, metavar="T",
                   help="keypoint candidate threshold (default 0.04)")
    g.add_argument("--topk", type=int, default=None, metavar="N",
                   help="peaks per joint type (default 32; --top-k is the same)")
    g.add_argument("--dist-max", type=float, default=None, metavar="D",
                   help="largest guide error of a limb in input pixels (default 40)")
    g.add_argument("--person-thre", type=float, default=None, metavar="T",
                   help="drop people whose mean joint value is below T (default 0.04)")


def offset_params(args: argparse.Namespace, stored: dict[str, Any] | None = None) -> Any:
    """OffsetParams: the flags given > ``stored`` (the settings saved with the maps) > the
    official defaults."""
    from bupose.decoders.offsets import OffsetParams

    names = {f.name for f in dataclasses.fields(OffsetParams)}
    values = {k: v for k, v in (stored or {}).items() if k in names}
    given = {"thre_hmp": args.thre_hmp, "dist_max": args.dist_max,
             "person_thre": args.person_thre,
             "topk": args.topk if args.topk is not None else getattr(args, "top_k", None)}
    values.update({k: v for k, v in given.items() if v is not None})
    try:
        return OffsetParams(**values)
    except (TypeError, ValueError) as e:
        raise ConfigError(str(e)) from None


def build_offset_predictor(args: argparse.Namespace, model: Any) -> Any:
    from bupose.inference.offset_predictor import OffsetPredictor

    if getattr(args, "scales", None) not in (None, (1.0,)):
        raise ConfigError("--scales: SimplePose V2 (offsets) models are evaluated at one scale "
                          "(--input-size, --resize-mode)")
    size = args.input_size or getattr(model.meta, "input_size", None) or 640
    try:
        return OffsetPredictor(model, model.meta.spec, offset_params(args), input_size=int(size),
                               resize_mode=args.resize_mode or "long-edge",
                               flip=True if args.flip is None else args.flip,
                               cat_flip_offset=args.cat_flip_offset, device=args.device)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def run_offsets(args: argparse.Namespace, model: Any) -> int:
    """``bupose infer`` for a SimplePose V2 model (module docstring)."""
    import torch
    from tqdm import tqdm

    from bupose.cli.infer_cmd import (
        _check_unique_stems,
        _print_scores,
        collect_images,
        image_ids,
        keep_confident,
    )
    from bupose.cli.infer_files import check_skipped, read_or_skip
    from bupose.evaluation.results import write_coco_results
    from bupose.utils.io import read_json

    images = collect_images(args.images)
    if args.save_maps or args.draw or getattr(args, "show_maps", None):
        _check_unique_stems(images)
    gt = read_json(args.annotations, "annotation file") if args.annotations else None
    ids = image_ids(images, gt, args.annotations)
    model.to(args.device).eval()
    predictor = build_offset_predictor(args, model)
    entries: list[dict[str, Any]] = []
    skipped: list[str] = []  # unreadable images: skipped with a warning, as the AE path
    with torch.inference_mode():
        for path, image_id in zip(tqdm(images, desc="infer", unit="img"), ids):
            image = read_or_skip(path, skipped, getattr(args, "strict", False))
            if image is None:
                continue
            maps = predictor.maps(image)
            poses = keep_confident(predictor.decode(maps), args.min_score)
            entries.extend(poses.to_coco(image_id, file_name=path.name))
            _write_files(args, path, image_id, image, maps, poses, predictor)
    check_skipped(skipped, len(images))
    if args.json:
        write_coco_results(args.json, entries)
    print(f"{len(images) - len(skipped)} images, {len(entries)} people"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    if gt is not None:
        _print_scores(entries, gt, ids, predictor.spec)
    return 0


def _write_files(args: argparse.Namespace, path: Path, image_id: int, image: np.ndarray,
                 maps: Any, poses: Any, predictor: Any) -> None:
    """The per-image ``--save-maps``, ``--draw`` and ``--show-maps`` files."""
    from bupose.cli.infer_cmd import _draw, save_maps

    if args.save_maps:
        settings = json.dumps(dataclasses.asdict(predictor.params))
        save_maps(args.save_maps / f"{path.stem}.npz",
                  dict(maps.to_numpy(), image_id=np.int64(image_id),
                       file_name=np.str_(path.name), offset_params=np.str_(settings)))
    if args.draw:
        _draw(args.draw / f"{path.stem}.jpg", image, poses, predictor.spec)
    if getattr(args, "show_maps", None):
        from bupose.viz.offsets import write_offset_pictures

        write_offset_pictures(args.show_maps, path.stem, image, maps, poses, predictor.spec,
                              predictor.skeleton)


def load_offset_maps(path: Path) -> dict[str, Any]:
    """Read and check one maps npz of ``--decoder offsets`` (module docstring).

    Raises DataError naming the file for a missing/unreadable file, a missing key or bad shapes.
    """
    from bupose.decoders.offsets import COCO_OFFSET_SKELETON

    if not path.is_file():
        raise DataError(f"{path}: maps file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/numpy raise many types for a damaged file
        raise DataError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from None
    for key in ("heatmaps", "offsets"):
        if key not in arrays:
            raise DataError(f"{path}: no {key!r} array (has {', '.join(sorted(arrays))})")
        if arrays[key].ndim == 4 and arrays[key].shape[0] == 1:
            arrays[key] = arrays[key][0]
        if arrays[key].ndim != 3 or not np.issubdtype(arrays[key].dtype, np.floating):
            raise DataError(f"{path}: {key} must be float (C,h,w) or (1,C,h,w), got "
                            f"{arrays[key].shape} {arrays[key].dtype}")
        if not np.isfinite(arrays[key]).all():
            raise DataError(f"{path}: {key} has non-finite values")
    if arrays["heatmaps"].shape[1:] != arrays["offsets"].shape[1:]:
        raise DataError(f"{path}: heatmaps {arrays['heatmaps'].shape} and offsets "
                        f"{arrays['offsets'].shape} differ in size")
    joints = 1 + max(max(limb) for limb in COCO_OFFSET_SKELETON)
    if len(arrays["heatmaps"]) < joints:
        raise DataError(f"{path}: heatmaps have {len(arrays['heatmaps'])} channels; the offset "
                        f"skeleton joins {joints} keypoints")
    present = [k for k in ("meta_offset", "meta_scale") if k in arrays]
    if len(present) == 1:
        raise DataError(f"{path}: has {present[0]!r} but not the other of meta_offset/meta_scale")
    for key in present:
        arrays[key] = np.asarray(arrays[key], np.float64).reshape(-1)
        if arrays[key].shape != (2,) or not np.isfinite(arrays[key]).all():
            raise DataError(f"{path}: {key} must be 2 finite values")
    if present and not (arrays["meta_scale"] > 0).all():
        raise DataError(f"{path}: meta_scale must be positive")
    if "offset_params" in arrays:
        try:
            arrays["offset_params"] = dict(json.loads(str(arrays["offset_params"])))
        except (ValueError, TypeError):
            raise DataError(f"{path}: 'offset_params' is not a JSON object") from None
    return arrays


def run_decode(args: argparse.Namespace) -> int:
    """``bupose decode --decoder offsets`` (module docstring)."""
    from bupose.cli.infer_cmd import keep_confident
    from bupose.decoders.offsets import decode_offsets
    from bupose.evaluation.results import write_coco_results
    from bupose.inference.offset_predictor import poses_from_decoded

    entries: list[dict[str, Any]] = []
    for index, path in enumerate(args.maps):
        arrays = load_offset_maps(path)
        params = offset_params(args, arrays.get("offset_params"))
        try:
            decoded = decode_offsets(arrays["heatmaps"], arrays["offsets"], params)
        except (ValueError, DataError) as e:
            raise DataError(f"{path}: {e}") from None
        image_frame = "meta_offset" in arrays
        meta = ((arrays["meta_offset"], arrays["meta_scale"]) if image_frame
                else (np.zeros(2), np.ones(2)))
        poses = keep_confident(poses_from_decoded(decoded.poses, *meta), args.min_score)
        default_id = int(path.stem) if path.stem.isdigit() else index
        image_id = int(arrays["image_id"]) if "image_id" in arrays else default_id
        name = str(arrays["file_name"]) if "file_name" in arrays else None
        frame = "image" if image_frame else "input"
        print(f"{path}: {len(poses)} people ({frame} pixels)", file=sys.stderr)
        entries.extend(poses.to_coco(image_id, file_name=name))
    if args.json:
        write_coco_results(args.json, entries)
    return 0
