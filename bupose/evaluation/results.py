"""Results files: writing them (atomically) and checking them before they are scored.

COCO-style keypoint results (COCO, CrowdPose, OCHuman, AIC, any K) are a JSON list with one entry
per detected person::

    {"image_id": int, "category_id": 1, "keypoints": [x1, y1, c1, ..., xK, yK, cK], "score": float}

in image pixels; the third value of each keypoint is a confidence that OKS does not use (the
CrowdPose protocol drops a person whose K confidences are all <= 0). Extra keys (``file_name``,
``bbox`` ...) are kept; note that, as in pycocotools' ``loadRes``, a non-empty ``bbox`` on the
first entry makes the box area (not the keypoint extent) decide a detection's area range.

MPII results are the persons of the PCKh ground truth, in its order: a JSON list of entries
``{"keypoints": [x1, y1, s1, ..., x16, y16, s16]}`` (or 16*2 values, or nested (16, 2|3) lists),
or a JSON/``.npy`` array of shape (N, 16, 2|3), in 0-based image pixels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import DataError
from bupose.utils.io import atomic_write_json, read_json

REQUIRED_FIELDS = ("image_id", "category_id", "keypoints", "score")


def coco_entries(
    image_id: int,
    keypoints: np.ndarray,
    scores: np.ndarray,
    category_id: int = 1,
    **extra: Any,
) -> list[dict[str, Any]]:
    """Result entries for the N persons found in one image.

    Args:
        image_id: the image's id in the ground truth.
        keypoints: (N, K, 3) [x, y, confidence] in image pixels (or (N, K, 2): confidence 1).
        scores: (N,) person scores.
        category_id: the person category of the ground truth (1 in every COCO-style set).
        extra: keys copied into every entry (e.g. ``file_name``).
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim != 3 or kps.shape[2] not in (2, 3):
        raise ValueError(f"keypoints must be (N, K, 2|3), got shape {kps.shape}")
    if kps.shape[2] == 2:
        kps = np.concatenate([kps, np.ones(kps.shape[:2] + (1,))], axis=2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) != len(kps):
        raise ValueError(f"{len(kps)} persons but {len(scores)} scores")
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in person.reshape(-1)],
            "score": float(score),
            **extra,
        }
        for person, score in zip(kps, scores)
    ]


def write_coco_results(
    path: str | os.PathLike, entries: Iterable[Mapping[str, Any]]
) -> Path:
    """Write keypoint result entries as a JSON list, atomically.

    Each entry needs ``image_id``, ``category_id``, ``keypoints`` (K*3 flat, or (K, 3)) and a finite
    ``score``; every entry must have the same K. Extra keys are written as they are. numpy values
    are converted. Raises DataError naming the entry when one is malformed.
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    num_values: int | None = None
    for index, entry in enumerate(entries):
        where = f"{path}: result entry {index}"
        missing = [k for k in REQUIRED_FIELDS if k not in entry]
        if missing:
            raise DataError(f"{where} lacks {', '.join(missing)}")
        try:
            kps = np.asarray(entry["keypoints"], dtype=np.float64).reshape(-1)
            score = float(entry["score"])
            ids = int(entry["image_id"]), int(entry["category_id"])
        except (TypeError, ValueError) as e:
            raise DataError(f"{where}: malformed value ({e})") from None
        num_values = len(kps) if num_values is None else num_values
        if len(kps) == 0 or len(kps) % 3 or len(kps) != num_values:
            raise DataError(
                f"{where}: keypoints has {len(kps)} values; expected K*3 = {num_values} "
                "(the same K in every entry)"
            )
        if not np.isfinite(kps).all() or not math.isfinite(score):
            raise DataError(f"{where}: keypoints or score have a NaN or inf value")
        row = {k: _plain(v) for k, v in entry.items()}
        row.update(image_id=ids[0], category_id=ids[1], keypoints=kps.tolist(), score=score)
        rows.append(row)
    return atomic_write_json(path, rows)


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values, for JSON."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def read_results(results: str | os.PathLike | Sequence[Any]) -> tuple[Any, str]:
    """The raw content of a results file (or an in-memory list) and the name to report it by."""
    if isinstance(results, (str, os.PathLike)):
        return read_json(results, "results file"), str(results)
    return results, "results"


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def validate_coco_results(
    data: Any,
    source: str,
    num_keypoints: int,
    image_ids: set[int],
    category_ids: set[int],
    gt_source: str = "the ground truth",
) -> list[dict[str, Any]]:
    """Check keypoint results against the ground truth; return clean copies.

    Args:
        data: the loaded JSON (must be a list of objects).
        source: the results file name, for messages.
        num_keypoints: K of the ground truth.
        image_ids, category_ids: the ids the ground truth defines.
        gt_source: the annotation file name, for messages.

    Returns:
        entries with ``image_id`` and ``category_id`` as int, ``keypoints`` a list of K*3 floats,
        ``score`` a float, and ``bbox`` (4 floats) when the first entry has a non-empty one.

    Raises:
        DataError naming ``source``, the entry index and the problem: not a list, an entry that is
        not an object, a missing field, a wrong keypoint count, a non-number, NaN or inf, an
        image or category id the ground truth does not have.
    """
    if not isinstance(data, list):
        kind = type(data).__name__
        raise DataError(f"{source}: expected a JSON list of result entries, got a {kind}")
    use_bbox = bool(data) and isinstance(data[0], dict) and bool(data[0].get("bbox"))
    return [
        _validate_entry(entry, f"{source}: result entry {i}", num_keypoints, image_ids,
                        category_ids, gt_source, use_bbox)
        for i, entry in enumerate(data)
    ]


def _validate_entry(
    entry: Any,
    where: str,
    num_keypoints: int,
    image_ids: set[int],
    category_ids: set[int],
    gt_source: str,
    use_bbox: bool,
) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise DataError(f"{where} is a {type(entry).__name__}, not an object")
    missing = [k for k in REQUIRED_FIELDS if k not in entry]
    if missing:
        raise DataError(f"{where} lacks {', '.join(repr(k) for k in missing)}")
    image_id, category_id = entry["image_id"], entry["category_id"]
    if not _is_int(image_id):
        raise DataError(f"{where}: image_id must be an integer, got {image_id!r}")
    if int(image_id) not in image_ids:
        raise DataError(f"{where}: image_id {image_id} is not an image of {gt_source}")
    if not _is_int(category_id) or int(category_id) not in category_ids:
        raise DataError(
            f"{where}: category_id {category_id!r} is not a category of {gt_source} "
            f"(known: {sorted(category_ids)})"
        )
    keypoints = _numbers(entry["keypoints"], f"{where}: keypoints")
    if len(keypoints) != 3 * num_keypoints:
        raise DataError(
            f"{where}: keypoints has {len(keypoints)} values; expected 3*K = {3 * num_keypoints} "
            f"(K = {num_keypoints} from {gt_source})"
        )
    score = _numbers([entry["score"]], f"{where}: score")[0]
    clean = {"image_id": int(image_id), "category_id": int(category_id),
             "keypoints": keypoints, "score": score}
    if use_bbox:
        bbox = _numbers(entry.get("bbox"), f"{where}: bbox")
        if len(bbox) != 4:
            raise DataError(f"{where}: bbox must be [x, y, w, h] (the first entry has a bbox)")
        clean["bbox"] = bbox
    return clean


def _numbers(values: Any, what: str) -> list[float]:
    """A flat list of finite floats, or DataError saying what is wrong."""
    if not isinstance(values, (list, tuple)):
        raise DataError(f"{what} must be a list of numbers, got {type(values).__name__}")
    array = np.array(values)
    if array.ndim == 1 and array.dtype.kind in "iuf" and np.isfinite(array).all():
        return array.astype(np.float64).tolist()
    for v in values:  # slow path: find the offending value for the message
        if not _is_number(v):
            raise DataError(f"{what} holds {v!r}, which is not a number")
        if not math.isfinite(float(v)):
            raise DataError(f"{what} has a NaN or inf value")
    raise DataError(f"{what} must be a flat list of numbers")


def write_mpii_results(path: str | os.PathLike, keypoints: np.ndarray) -> Path:
    """Write MPII predictions (N, 16, 2|3), in ground-truth person order, as a JSON list."""
    kps = np.asarray(keypoints, dtype=np.float64)
    if kps.ndim != 3 or kps.shape[1:] not in ((16, 2), (16, 3)):
        raise DataError(f"{path}: MPII predictions must be (N, 16, 2|3), got shape {kps.shape}")
    if not np.isfinite(kps).all():
        raise DataError(f"{path}: MPII predictions have a NaN or inf value")
    return atomic_write_json(path, [{"keypoints": p.reshape(-1).tolist()} for p in kps])


def read_mpii_predictions(
    predictions: str | os.PathLike | np.ndarray | Sequence[Any], num_joints: int = 16
) -> np.ndarray:
    """MPII predictions as (N, J, 2) float64 from any accepted results form (module docstring).

    Raises DataError naming the file and the person index when an entry is malformed.
    """
    if isinstance(predictions, np.ndarray):
        return _mpii_array(predictions, "predictions", num_joints)
    if isinstance(predictions, (str, os.PathLike)):
        path = Path(predictions)
        if path.suffix.lower() == ".npy":
            if not path.is_file():
                raise DataError(f"{path}: results file not found")
            try:
                array = np.load(path, allow_pickle=False)
            except (ValueError, OSError) as e:
                raise DataError(f"{path}: cannot read .npy results: {e}") from None
            return _mpii_array(array, str(path), num_joints)
        data, source = read_json(path, "results file"), str(path)
    else:
        data, source = predictions, "predictions"
    if not isinstance(data, list):
        raise DataError(f"{source}: expected a JSON list of persons, got a {type(data).__name__}")
    rows = []
    for i, entry in enumerate(data):
        where = f"{source}: person {i}"
        if isinstance(entry, dict):
            if "keypoints" not in entry:
                raise DataError(f"{where} lacks 'keypoints'")
            entry = entry["keypoints"]
        rows.append(_mpii_person(entry, where, num_joints))
    return np.stack(rows) if rows else np.zeros((0, num_joints, 2))


def _mpii_person(values: Any, where: str, num_joints: int) -> np.ndarray:
    if isinstance(values, list) and values and all(isinstance(r, list) for r in values):
        widths = {len(r) for r in values}
        if len(values) != num_joints or len(widths) != 1 or widths.pop() not in (2, 3):
            raise DataError(f"{where}: keypoints must be {num_joints} rows of [x, y(, score)]")
        values = [v for row in values for v in row]
    numbers = _numbers(values, f"{where}: keypoints")
    if len(numbers) not in (2 * num_joints, 3 * num_joints):
        raise DataError(
            f"{where}: keypoints has {len(numbers)} values; expected {num_joints}*3 "
            f"(or {num_joints}*2)"
        )
    return np.asarray(numbers, dtype=np.float64).reshape(num_joints, -1)[:, :2]


def _mpii_array(array: np.ndarray, source: str, num_joints: int) -> np.ndarray:
    if array.ndim != 3 or array.shape[1] != num_joints or array.shape[2] not in (2, 3):
        raise DataError(
            f"{source}: predictions must have shape (N, {num_joints}, 2|3), got {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{source}: predictions must be numbers, got dtype {array.dtype}")
    array = array[:, :, :2].astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(array).all(axis=(1, 2)))
    if len(bad):
        raise DataError(f"{source}: person {bad[0]}: keypoints have a NaN or inf value")
    return array
