"""Top-down (CAL) models in ``bupose infer`` and ``bupose decode --decoder cal``.

``bupose infer IMAGES --checkpoint CKPT --config YAML --boxes gt --annotations GT.json``
(ground-truth person boxes: persons with a labelled keypoint, cleaned as the reference does) or
``--boxes DETS.json`` (COCO detection results, category 1, score >= ``--box-threshold``, used
raw: reference quirk 11; a box or score that is not a finite number, or a file none of whose
detections is for the given images, is a DataError). An unreadable image is skipped with a
warning as on the AE path (``bupose.cli.infer_files``). Outputs: ``--json`` (the official
result entries: keypoints, rescored score, center, scale; images in the reference's order: the
annotation file's for GT boxes, the detection file's for detections; per image the OKS-NMS keep
order), ``--draw``,
``--save-maps DIR`` (per image ``<stem>.npz``: heatmaps (N,K,h,w), offsets (N,2K,h,w),
heatmaps_flip / offsets_flip (raw outputs on the flipped crops, with flip), center, scale (N,2),
box_score (N,), image_id (N,), file_name) and, with ``--annotations``, the AP table.
With MPII ``--annotations`` (mmpose JSON list or the hourglass ``.json.gz``) and ``--boxes gt``:
one pose per annotated person from the reference's MPII box (centre moved down by 15 * scale,
scale x 1.25), no NMS; ``--json`` writes MPII predictions, ``--pckh-gt GT.mat`` prints PCKh.

``bupose decode MAPS.npz... --decoder cal`` decodes such files (all boxes of all files as one set,
images in order of first appearance) with ``--locref-stdev``, ``--in-vis-thre``, ``--oks-thre``
(defaults: the W32-64x48 yaml's 1.5, 0.2, 0.9) and writes the official results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import ConfigError, DataError

MAP_KEYS = ("heatmaps", "offsets", "center", "scale")


def add_topdown_args(p: argparse.ArgumentParser) -> None:
    """``bupose infer`` options of top-down models."""
    g = p.add_argument_group("top-down models (CAL)")
    g.add_argument("--boxes", default=None, metavar="gt|DETS.json",
                   help="person boxes: 'gt' (from --annotations) or a COCO detection results "
                        "file; required for top-down models")
    g.add_argument("--box-threshold", type=float, default=None, metavar="T",
                   help="keep detections with score >= T (default: TEST.IMAGE_THRE, else 0)")
    g.add_argument("--pckh-gt", type=Path, default=None, metavar="GT.mat",
                   help="MPII: print PCKh@0.5/@0.1 against this ground truth (the persons of "
                        "the MPII --annotations, in order)")
    g.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="person crops per forward pass (default 32)")
    add_cal_args(g)


def add_cal_args(g: Any) -> None:
    """Decoding settings shared by ``infer`` and ``decode`` (None = checkpoint / default)."""
    g.add_argument("--locref-stdev", type=float, default=None, metavar="V",
                   help="offset unit in heatmap cells (default: DATASET.LOCREF_STDEV, else 1.5)")
    g.add_argument("--in-vis-thre", type=float, default=None, metavar="T",
                   help="joints above T count in the person score (default: TEST.IN_VIS_THRE, "
                        "else 0.2)")
    g.add_argument("--oks-thre", type=float, default=None, metavar="T",
                   help="OKS-NMS threshold (default: TEST.OKS_THRE, else 0.9)")
    g.add_argument("--readout", choices=("offset", "argmax", "quarter", "dark"), default="offset",
                   help="joint read-out: CAL's offsets (default) or a baseline for comparison")


def gt_boxes_by_image(gt: dict[str, Any], source: Any) -> dict[int, np.ndarray]:
    """image id -> (N, 4) float64 cleaned ground-truth boxes, in annotation order (persons of
    category 1, not crowd, area > 0, a labelled keypoint, non-empty cleaned box)."""
    from bupose.inference.topdown import gt_boxes

    sizes = {int(im["id"]): (int(im["width"]), int(im["height"]))
             for im in gt.get("images", []) if "width" in im and "height" in im}
    per_image: dict[int, list[dict[str, Any]]] = {}
    for ann in gt.get("annotations", []):
        if ann.get("category_id", 1) == 1 and not ann.get("iscrowd", 0):
            per_image.setdefault(int(ann["image_id"]), []).append(ann)
    out = {}
    for image_id, anns in per_image.items():
        if image_id not in sizes:
            raise DataError(f"{source}: image {image_id} has no width/height (needed to clean "
                            "the ground-truth boxes)")
        try:
            kps = np.asarray([a["keypoints"] for a in anns], np.float64)
            areas = np.asarray([a["area"] for a in anns], np.float64)
            boxes = np.asarray([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
        except (KeyError, ValueError, TypeError) as e:
            raise DataError(f"{source}: image {image_id}: annotations need keypoints, area and "
                            f"bbox ({type(e).__name__}: {e})") from None
        out[image_id] = gt_boxes(kps, areas, boxes, sizes[image_id])
    return out


def detection_boxes(path: Path, threshold: float) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """image id -> ((N, 4) raw xywh boxes, (N,) scores) of a COCO detection results file:
    category 1 and score >= threshold, in file order (reference ``IMAGE_THRE`` filter)."""
    from bupose.utils.io import read_json

    data = read_json(path, "detection file")
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON list of detections")
    per_image: dict[int, list[tuple[list[float], float]]] = {}
    for i, det in enumerate(data):
        try:
            if det.get("category_id", 1) != 1 or float(det["score"]) < threshold:
                continue
            box = [float(v) for v in det["bbox"]]
            if len(box) != 4:
                raise ValueError("bbox needs 4 values")
            if not np.isfinite([*box, float(det["score"])]).all():
                raise ValueError("bbox and score must be finite numbers")
            per_image.setdefault(int(det["image_id"]), []).append((box, float(det["score"])))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: detection {i}: needs image_id, bbox [x, y, w, h] and "
                            f"score ({type(e).__name__}: {e})") from None
    return {k: (np.asarray([b for b, _ in v], np.float64), np.asarray([s for _, s in v]))
            for k, v in per_image.items()}


def build_topdown_predictor(args: argparse.Namespace, model: Any) -> Any:
    """The TopDownPredictor from the flags, with the checkpoint / yaml settings as defaults."""
    from bupose.inference.topdown import TopDownPredictor

    spec = model.meta.spec
    try:
        return TopDownPredictor(model, spec, locref_stdev=args.locref_stdev,
                                in_vis_thre=args.in_vis_thre, oks_thre=args.oks_thre,
                                flip=args.flip, batch_size=args.batch_size, device=args.device,
                                readout=getattr(args, "readout", "offset"))
    except ValueError as e:
        raise ConfigError(str(e)) from None


def run_topdown(args: argparse.Namespace, model: Any) -> int:
    """``bupose infer`` for a top-down model (module docstring)."""
    from bupose.cli.infer_cmd import _check_unique_stems, collect_images, image_ids
    from bupose.evaluation.results import write_coco_results
    from bupose.utils.io import read_json

    _check_request(args, model)
    images = collect_images(args.images)
    if args.save_maps or args.draw:
        _check_unique_stems(images)
    if args.annotations is not None and args.boxes == "gt" and _is_mpii(args.annotations):
        return run_mpii(args, model, images)
    if args.pckh_gt is not None:
        raise ConfigError("--pckh-gt needs --boxes gt with MPII --annotations")
    gt = read_json(args.annotations, "annotation file") if args.annotations else None
    ids = image_ids(images, gt, args.annotations)
    boxes = _boxes(args, gt, model)
    if args.boxes != "gt":
        _check_detection_ids(args.boxes, boxes, ids)
    predictor = build_topdown_predictor(args, model)
    model.to(args.device).eval()
    entries = _infer_images(args, predictor, images, ids, boxes)
    entries = official_order(entries, _image_rank(args, gt, boxes))
    if args.json:
        write_coco_results(args.json, entries)
    print(f"{len(images)} images, {len(entries)} people"
          + (f"; results: {args.json}" if args.json else ""), file=sys.stderr)
    if gt is not None:
        _print_scores(entries, gt, ids, predictor.spec)
    return 0


def _check_request(args: argparse.Namespace, model: Any) -> None:
    from bupose.models import model_family

    if model_family(model) != "topdown":
        raise ConfigError(f"--boxes is for top-down models; {model.meta.name!r} is a "
                          f"{model_family(model)!r} model")
    if args.boxes is None:
        raise ConfigError(f"model {model.meta.name!r} is top-down: give person boxes with "
                          "--boxes gt --annotations GT.json or --boxes DETS.json")
    if args.boxes == "gt" and args.annotations is None:
        raise ConfigError("--boxes gt needs --annotations GT.json")


def _check_detection_ids(path: str, boxes: dict[int, Any], ids: list[int]) -> None:
    """A detection file whose detections are all for other images: the ids do not match."""
    if boxes and not set(boxes) & set(ids):
        raise DataError(f"{path}: none of its detections is for the given images (it has image "
                        f"ids {_few(sorted(boxes))}; the images have ids {_few(ids)}, from "
                        "numeric file names or --annotations)")


def _few(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:3])) + (", ..." if len(ids) > 3 else "")


def _infer_images(
    args: argparse.Namespace, predictor: Any, images: list[Path], ids: list[int],
    boxes: dict[int, tuple[Any, Any]],
) -> list[dict[str, Any]]:
    """Crops of the boxes of every image (consecutive images share forward passes), decoding
    per image: the official result entries (+ ``file_name``), ``--save-maps`` / ``--draw``."""
    import torch
    from tqdm import tqdm

    from bupose.cli.infer_files import check_skipped, read_or_skip
    from bupose.inference.topdown import poses_of

    skipped: list[str] = []  # unreadable images: skipped with a warning, as the AE path

    def items() -> Any:
        for path, image_id in zip(images, ids):
            found, scores = boxes.get(image_id, (np.zeros((0, 4)), np.zeros(0)))
            image = read_or_skip(path, skipped, getattr(args, "strict", False))
            if image is None:
                continue
            center, scale = predictor.boxes_to_center_scale(found)  # gt: cleaned already
            yield (path, image if args.draw else None), image, center, scale, scores, image_id

    entries: list[dict[str, Any]] = []
    with torch.inference_mode():
        stream = predictor.maps_stream(items())
        for (path, image), maps in tqdm(stream, total=len(images), desc="infer", unit="img"):
            if args.save_maps:
                _save_maps(args.save_maps / f"{path.stem}.npz", maps, path.name)
            decoded = predictor.decode(maps)
            entries.extend(dict(r, file_name=path.name) for r in decoded.results())
            if args.draw:
                _draw(args.draw / f"{path.stem}.jpg", image, poses_of(decoded), predictor.spec)
    check_skipped(skipped, len(images))
    return entries


def _boxes(args: argparse.Namespace, gt: Any, model: Any) -> dict[int, tuple[Any, Any]]:
    if args.boxes == "gt":
        return {k: (v, np.ones(len(v))) for k, v in gt_boxes_by_image(gt, args.annotations).items()}
    threshold = args.box_threshold
    if threshold is None:
        test = {str(k).lower(): v for k, v in (getattr(model.meta, "test", None) or {}).items()}
        threshold = float(test.get("image_thre", 0.0))
    return detection_boxes(Path(args.boxes), threshold)


def _is_mpii(path: Path) -> bool:
    """MPII annotations: the hourglass ``.json.gz`` or a JSON list of persons (COCO files are
    objects)."""
    if str(path).endswith(".gz"):
        return True
    from bupose.utils.io import read_json

    return isinstance(read_json(path, "annotation file"), list)


def run_mpii(args: argparse.Namespace, model: Any, images: list[Path]) -> int:
    """MPII ground-truth boxes (the reference's centre/scale rule), one pose per annotated
    person in annotation order, no NMS; ``--json`` writes MPII predictions (N, 16, 3) and
    ``--pckh-gt`` prints PCKh."""
    from bupose.data.mpii import read_mpii_annotations
    from bupose.evaluation import evaluate_pckh, format_pckh_stats, write_mpii_results
    from bupose.inference.poses import Poses
    from bupose.inference.topdown import mpii_center_scale
    from bupose.utils.io import read_image

    records = read_mpii_annotations(args.annotations)
    by_name = {p.name: p for p in images}
    missing = [r.file_name for r in records if Path(r.file_name).name not in by_name]
    if missing:
        raise DataError(f"{args.annotations}: image {missing[0]!r} is not among the given "
                        f"images ({len(missing)} missing; every annotated person is predicted)")
    predictor = build_topdown_predictor(args, model)
    model.to(args.device).eval()
    people = []
    for index, record in enumerate(records):
        path = by_name[Path(record.file_name).name]
        image = read_image(path)
        center, scale = mpii_center_scale(record.centers, record.scales)
        maps = predictor.maps_for(image, center, scale, None, index)
        if args.save_maps:
            _save_maps(args.save_maps / f"{path.stem}.npz", maps, path.name)
        decoded = predictor.decode(maps)
        people.append(decoded.keypoints)
        if args.draw:
            poses = Poses(decoded.keypoints, decoded.scores)
            _draw(args.draw / f"{path.stem}.jpg", image, poses, predictor.spec)
    predictions = np.concatenate(people)
    if args.json:
        write_mpii_results(args.json, predictions)
    print(f"{len(records)} images, {len(predictions)} MPII persons"
          + (f"; predictions: {args.json}" if args.json else ""), file=sys.stderr)
    if args.pckh_gt is not None:
        stats = evaluate_pckh(predictions[..., :2], args.pckh_gt)
        print(format_pckh_stats(stats, len(predictions)))
    return 0


def official_order(entries: list[dict[str, Any]], rank: dict[int, int]) -> list[dict[str, Any]]:
    """Entries grouped by image in the reference's database order (stable within an image):
    ``rank`` image id -> position; images without a rank go last, in the order given."""
    return sorted(entries, key=lambda e: rank.get(int(e["image_id"]), len(rank)))


def _image_rank(args: argparse.Namespace, gt: Any, boxes: dict[int, Any]) -> dict[int, int]:
    """The reference's image order: the annotation file's images for GT boxes, the first
    appearance in the detection file for detections."""
    ids = [int(im["id"]) for im in gt.get("images", [])] if args.boxes == "gt" else list(boxes)
    return {image_id: i for i, image_id in enumerate(ids)}


def _save_maps(path: Path, maps: Any, file_name: str) -> None:
    from bupose.utils.io import atomic_write

    arrays = dict(maps.to_numpy(), file_name=np.str_(file_name))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _draw(path: Path, image: np.ndarray, poses: Any, spec: Any) -> None:
    import cv2

    from bupose.utils.io import atomic_write_bytes
    from bupose.viz.draw import draw_poses

    drawn = draw_poses(image, poses.keypoints, spec, scores=poses.scores)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.asarray(drawn), cv2.COLOR_RGB2BGR))
    if not ok:
        raise DataError(f"{path}: cannot encode the drawn image")
    atomic_write_bytes(path, data.tobytes())


def _print_scores(entries: list[dict[str, Any]], gt: dict[str, Any], ids: Any, spec: Any) -> None:
    from bupose.evaluation import format_keypoint_stats, score_keypoints

    keep = set(int(i) for i in ids)
    subset = dict(gt)
    subset["images"] = [im for im in gt.get("images", []) if int(im["id"]) in keep]
    subset["annotations"] = [a for a in gt.get("annotations", []) if int(a["image_id"]) in keep]
    print(format_keypoint_stats(score_keypoints(entries, subset, None, spec)))


def load_topdown_maps(path: Path, index: int) -> Any:
    """One ``--save-maps`` file as TopDownMaps; DataError names the file and the problem."""
    from bupose.inference.topdown import TopDownMaps

    if not path.is_file():
        raise DataError(f"{path}: maps file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile/numpy raise many types for a damaged file
        raise DataError(f"{path}: cannot read as .npz ({type(e).__name__}: {e})") from None
    missing = [k for k in MAP_KEYS if k not in a]
    if missing:
        raise DataError(f"{path}: no {', '.join(missing)} (has {', '.join(sorted(a))})")
    hm, off = a["heatmaps"], a["offsets"]
    n = len(hm)
    if hm.ndim != 4 or off.shape != (n, 2 * hm.shape[1], *hm.shape[2:]):
        raise DataError(f"{path}: expected heatmaps (N,K,h,w) and offsets (N,2K,h,w), got "
                        f"{hm.shape} and {off.shape}")
    if ("heatmaps_flip" in a) != ("offsets_flip" in a):
        raise DataError(f"{path}: heatmaps_flip and offsets_flip go together")
    flips = [a[k] for k in ("heatmaps_flip", "offsets_flip") if k in a] or [None, None]
    if flips[0] is not None and (flips[0].shape != hm.shape or flips[1].shape != off.shape):
        raise DataError(f"{path}: flip maps do not have the shapes of heatmaps/offsets")
    default_id = int(path.stem) if path.stem.isdigit() else index
    image_id = a.get("image_id", np.full(n, default_id))
    geometry = [np.asarray(a[k], np.float32).reshape(-1, 2) for k in ("center", "scale")]
    if any(len(g) != n for g in geometry) or np.asarray(image_id).reshape(-1).shape != (n,):
        raise DataError(f"{path}: center, scale (N,2) and image_id (N,) must have N = {n} rows")
    score = np.asarray(a.get("box_score", np.ones(n)), np.float64).reshape(-1)
    if len(score) != n:
        raise DataError(f"{path}: box_score has {len(score)} values for {n} boxes")
    return TopDownMaps(hm, off, flips[0], flips[1], geometry[0], geometry[1], score,
                       np.asarray(image_id, np.int64).reshape(-1))


def run_decode(args: argparse.Namespace) -> int:
    """``bupose decode --decoder cal``: all boxes of all files decoded as one set."""
    from bupose.decoders.cal import CalParams, decode_cal
    from bupose.evaluation.results import write_coco_results
    from bupose.inference.topdown import TopDownMaps
    from bupose.structures.spec import load_spec

    spec = load_spec(args.spec)
    try:
        maps = TopDownMaps.concat([load_topdown_maps(p, i) for i, p in enumerate(args.maps)])
    except ValueError as e:
        raise DataError(f"{', '.join(map(str, args.maps))}: {e}") from None
    if maps.heatmaps.shape[1] != spec.num_keypoints:
        raise DataError(f"heatmaps have K = {maps.heatmaps.shape[1]}; spec {spec.name!r} has "
                        f"{spec.num_keypoints} (use --spec)")
    defaults = CalParams()
    params = CalParams(*(d if v is None else v for v, d in (
        (args.locref_stdev, defaults.locref_stdev), (args.in_vis_thre, defaults.in_vis_thre),
        (args.oks_thre, defaults.oks_thre))), readout=args.readout)
    decoded = decode_cal(maps.heatmaps, maps.offsets, maps.center, maps.scale, maps.box_score,
                         maps.image_id, maps.heatmaps_flip, maps.offsets_flip, spec, params)
    results = decoded.results()
    print(f"{len(maps)} boxes, {len(results)} people after OKS-NMS "
          f"({'flip fused' if maps.heatmaps_flip is not None else 'no flip maps'})",
          file=sys.stderr)
    if args.json:
        write_coco_results(args.json, results)
    return 0
