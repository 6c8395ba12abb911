"""``bupose decode MAPS.npz...``: re-decode saved aggregated maps without the network (grouping
ablations).

npz keys: ``heatmaps`` (K,H,W) or (1,K,H,W) float32, ``tags`` (K,H,W,L) or (1,K,H,W,L); optional
``center``, ``scale``, ``base_size`` (official back-projection: results in image pixels; without
them results are in map pixels), ``image_id`` and ``file_name`` (as written by
``bupose infer --save-maps``; otherwise the image id is the numeric file stem, else the position),
``settings`` (JSON of the test settings infer used: decoder and grouping settings; flags given
here win over them, the official defaults fill what neither gives).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import DataError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bupose.cli.infer_cmd import add_decoder_args
    from bupose.cli.infer_offsets import add_offsets_args
    from bupose.cli.infer_topdown import add_cal_args

    p = subparsers.add_parser(
        "decode",
        help="group saved heatmaps/tags into poses (no network)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("maps", nargs="+", type=Path, metavar="MAPS.npz", help="saved decoder inputs")
    add_decoder_args(p)
    add_cal_args(p.add_argument_group("--decoder cal (top-down CAL maps of `infer --save-maps`)"))
    add_offsets_args(p, infer=False)
    p.add_argument("--spec", default="coco17",
                   help="keypoint spec name or JSON/YAML file (default coco17)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write COCO keypoint results")
    p.set_defaults(func=run)


def load_maps(path: Path, num_keypoints: int) -> tuple[Any, dict[str, Any]]:
    """Read and check one npz: (DecoderInputs, {"image_id", "file_name"} when stored).

    Raises DataError naming the file for a missing/unreadable file, a missing key, wrong shapes,
    a K that does not match the spec, or tags that do not fit the heatmaps.
    """
    import torch

    from bupose.inference.predictor import DecoderInputs

    if not path.is_file():
        raise DataError(f"{path}: maps file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/numpy raise many types for a damaged file
        raise DataError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from None
    for key in ("heatmaps", "tags"):
        if key not in arrays:
            raise DataError(f"{path}: no {key!r} array (has {', '.join(sorted(arrays)) or 'none'})")
    heatmaps = _squeeze_batch(arrays["heatmaps"], 3, "heatmaps", "(K,H,W) or (1,K,H,W)", path)
    tags = _squeeze_batch(arrays["tags"], 4, "tags", "(K,H,W,L) or (1,K,H,W,L)", path)
    if heatmaps.shape[0] != num_keypoints:
        raise DataError(
            f"{path}: heatmaps have K = {heatmaps.shape[0]} channels; the spec has "
            f"{num_keypoints} keypoints (use --spec)"
        )
    if tags.shape[:3] != heatmaps.shape:
        raise DataError(
            f"{path}: tags {tuple(tags.shape)} do not fit heatmaps {tuple(heatmaps.shape)} "
            "(expected (K,H,W,L) with the heatmaps' K, H, W)"
        )
    for name, array in (("heatmaps", heatmaps), ("tags", tags)):
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise DataError(f"{path}: {name} must be finite floating-point values")
    center, scale, base_size = _geometry(arrays, path)
    inputs = DecoderInputs(
        torch.from_numpy(heatmaps.astype(np.float32)), torch.from_numpy(tags.astype(np.float32)),
        center, scale, base_size,
    )
    info = {}
    if "image_id" in arrays:
        info["image_id"] = int(arrays["image_id"])
    if "file_name" in arrays:
        info["file_name"] = str(arrays["file_name"])
    if "settings" in arrays:
        try:
            info["settings"] = dict(json.loads(str(arrays["settings"])))
        except (ValueError, TypeError):
            raise DataError(f"{path}: 'settings' is not a JSON object") from None
    return inputs, info


def _squeeze_batch(array: np.ndarray, ndim: int, name: str, want: str, path: Path) -> np.ndarray:
    if array.ndim == ndim + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != ndim or min(array.shape, default=0) == 0:
        raise DataError(f"{path}: {name} has shape {tuple(array.shape)}; expected {want}")
    return array


def _geometry(arrays: dict[str, np.ndarray], path: Path) -> tuple[Any, Any, Any]:
    present = [k for k in ("center", "scale") if k in arrays]
    if len(present) == 1:
        raise DataError(f"{path}: has {present[0]!r} but not the other of center/scale")
    center = scale = base_size = None
    if present:
        center = np.asarray(arrays["center"], dtype=np.float64).reshape(-1)
        scale = np.asarray(arrays["scale"], dtype=np.float64).reshape(-1)
        if center.shape != (2,) or scale.shape != (2,):
            raise DataError(f"{path}: center and scale must have 2 values each")
        if not (np.isfinite(center).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise DataError(f"{path}: center/scale must be finite, scale positive")
    if "base_size" in arrays:
        base = np.asarray(arrays["base_size"]).reshape(-1)
        if base.shape != (2,):
            raise DataError(f"{path}: base_size must be (W, H)")
        base_size = (int(base[0]), int(base[1]))
    return center, scale, base_size


def run(args: argparse.Namespace) -> int:
    from bupose.cli.infer_cmd import keep_confident, settings_flags
    from bupose.evaluation.results import write_coco_results
    from bupose.inference.predictor import decode_maps
    from bupose.inference.settings import TestSettings
    from bupose.structures.spec import load_spec

    if args.decoder == "cal":
        from bupose.cli.infer_topdown import run_decode

        return run_decode(args)
    if args.decoder == "offsets":  # SimplePose V2 maps (heatmaps, offsets): cli/infer_offsets.py
        from bupose.cli.infer_offsets import run_decode as run_decode_offsets

        return run_decode_offsets(args)
    spec = load_spec(args.spec)
    flags = settings_flags(args)
    entries: list[dict[str, Any]] = []
    for index, path in enumerate(args.maps):
        inputs, info = load_maps(path, spec.num_keypoints)
        settings = TestSettings.from_meta(info.get("settings")).replace(**flags)
        poses = decode_maps(inputs, settings.decoder, settings.grouping, spec.joint_order)
        poses = keep_confident(poses, args.min_score)
        default_id = int(path.stem) if path.stem.isdigit() else index
        image_id = info.get("image_id", default_id)
        frame = "image" if inputs.center is not None else "map"
        print(f"{path}: {len(poses)} people ({frame} pixels)", file=sys.stderr)
        entries.extend(poses.to_coco(image_id, file_name=info.get("file_name")))
    if args.json:
        write_coco_results(args.json, entries)
    return 0
