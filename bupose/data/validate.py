"""Checks of a COCO-format keypoint annotation file, shared by the dataset reader and
``bupose data stats``: every problem is a ``DataError`` naming the file and the image or
annotation id, instead of a wrong count, a NaN loss or an index error much later.

Checked: the layout (an ``images`` list of objects with an integer ``id`` and a
``file_name``, an ``annotations`` list), unique image ids, unique annotation ids (where given),
every annotation on a listed image, keypoints present as 3 x K finite numbers with the same K in
every annotation (or the spec's K), a finite ``bbox`` when given, and, in a file with
segmentations, a ``segmentation`` on every crowd region (``iscrowd`` = 1: the ignore mask is made
from it; CrowdPose, without any, has crowd boxes and no mask). Negative coordinates are
accepted: real sets label joints just outside the image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bupose.errors import DataError


def check_keypoint_annotations(
    data: Any, path: str | Path, num_keypoints: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int | None]:
    """Validate a loaded COCO-format keypoint file (module docstring).

    Args:
        data: the loaded JSON.
        path: the file, named in errors.
        num_keypoints: K every annotation must have (the spec's); None = the length of the
            category's ``keypoints`` names when given, else that of the first annotation.

    Returns:
        (images, annotations, K); K is None when the file has no annotations and none was given.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: not a COCO-format annotation file (no 'images' list)")
    annotations = data.get("annotations", [])
    if not isinstance(annotations, list):
        raise DataError(f"{path}: 'annotations' must be a list")
    image_ids = _image_ids(data["images"], path)
    if num_keypoints is None:
        num_keypoints = _category_k(data.get("categories"))
    ann_ids: set[Any] = set()
    segmented = any(isinstance(a, dict) and a.get("segmentation") for a in annotations)
    for ann in annotations:
        num_keypoints = _check_annotation(ann, num_keypoints, image_ids, path, segmented)
        ann_id = ann.get("id")
        if ann_id is not None:
            if ann_id in ann_ids:
                raise DataError(f"{path}: annotation id {ann_id} appears twice")
            ann_ids.add(ann_id)
    return data["images"], annotations, num_keypoints


def _category_k(categories: Any) -> int | None:
    """K from the first category's keypoint names, when the file lists them."""
    if isinstance(categories, list) and categories and isinstance(categories[0], dict):
        names = categories[0].get("keypoints")
        if isinstance(names, list) and names:
            return len(names)
    return None


def _image_ids(images: list[Any], path: str | Path) -> set[int]:
    ids: set[int] = set()
    for info in images:
        if not isinstance(info, dict) or "id" not in info or "file_name" not in info:
            shown = repr(info)[:200]
            raise DataError(f"{path}: every 'images' entry needs 'id' and 'file_name', got "
                            f"{shown}")
        image_id = info["id"]
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            raise DataError(f"{path}: image id {image_id!r} is not an integer")
        if image_id in ids:
            raise DataError(f"{path}: image id {image_id} appears twice in 'images'")
        ids.add(image_id)
    return ids


def _check_annotation(ann: Any, num_keypoints: int | None, image_ids: set[int],
                      path: str | Path, segmented: bool) -> int:
    """Checks of one annotation; returns K (the given one, else this annotation's)."""
    if not isinstance(ann, dict):
        raise DataError(f"{path}: an 'annotations' entry is not an object: {ann!r}"[:300])
    where = f"{path}: annotation id {ann.get('id')}"
    keypoints = ann.get("keypoints")
    if not isinstance(keypoints, list) or not keypoints or len(keypoints) % 3:
        got = "no 'keypoints'" if keypoints is None else (
            f"{len(keypoints)} keypoint values" if isinstance(keypoints, list)
            else f"'keypoints' of type {type(keypoints).__name__}")
        raise DataError(f"{where} has {got}, expected 3 x K values [x, y, v]")
    if num_keypoints is not None and len(keypoints) != 3 * num_keypoints:
        raise DataError(f"{where} has {len(keypoints)} keypoint values, expected "
                        f"{3 * num_keypoints} (3 x K = {num_keypoints} keypoints)")
    _check_finite(keypoints, f"{where}: keypoints")
    if "bbox" in ann:
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DataError(f"{where}: bbox must be [x, y, w, h], got {bbox!r}"[:300])
        _check_finite(bbox, f"{where}: bbox")
    if ann.get("image_id") not in image_ids:
        raise DataError(f"{where} refers to image_id {ann.get('image_id')!r}, which is not in "
                        "'images'")
    if segmented and ann.get("iscrowd", 0) and not ann.get("segmentation"):
        raise DataError(f"{where} is a crowd region (iscrowd = 1) without a 'segmentation': "
                        "the ignore mask is made from it")
    return len(keypoints) // 3 if num_keypoints is None else num_keypoints


def _check_finite(values: Sequence[Any], where: str) -> None:
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"{where}[{i}] is {v!r}, not a number")
        if not math.isfinite(v):
            raise DataError(f"{where}[{i}] is {v} (not finite)")
