"""MPII readers: multi-person samples (MPII16 spec) from either annotation form.

* mmpose JSON (``mpii_train.json`` / ``test_mpii.json``): a list of persons ``{image, joints (16,2),
  joints_vis (16,), center (2,), scale}``; unlabelled joints are ``joints_vis == 0``.
* stacked-hourglass JSON (``mpii_annotations.json[.gz]``): a list of records ``{img_paths,
  isValidation, joint_self (16,3) [x, y, visible], objpos, scale_provided, joint_others,
  objpos_other, scale_provided_other, ...}``, one record per annotated person, each also listing
  the other people of the image; unlabelled joints are (0, 0). People of an image = the records'
  ``joint_self`` plus every ``joint_others`` person not equal to one of them.

Both store MATLAB 1-based pixel coordinates; like mmpose we subtract 1 from joints and centres.
``scale`` is the MPII person scale (person height / 200 px), kept raw: mmpose's top-down pipeline
additionally moves the centre down by 15 * scale and multiplies the scale by 1.25.
Visibility: hourglass form v = 2 visible, 1 labelled but not visible, 0 unlabelled; mmpose form has
only a labelled flag, mapped to v = 2.
"""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bupose.data.coco import keypoint_extent
from bupose.data.sample import Sample
from bupose.errors import DataError
from bupose.structures.spec import MPII16, KeypointSpec
from bupose.utils.io import read_image, read_json

NUM_JOINTS = 16


@dataclass
class MpiiImage:
    """The people of one MPII image, in 0-based image pixels.

    Attributes:
        file_name: image file name.
        keypoints: (N, 16, 3) float32 [x, y, v].
        centers: (N, 2) float32 person centres.
        scales: (N,) float32 person scales (units of 200 px).
        is_validation: True for the hourglass form's validation split, None when unknown.
    """

    file_name: str
    keypoints: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    is_validation: bool | None = None


class MpiiKeypoints:
    """MPII annotations (either form, detected from the content) plus an image folder.

    Args:
        ann_file: mmpose JSON, or the hourglass JSON (optionally gzip-compressed, ``.gz``).
        image_dir: folder of the images.
        spec: keypoint spec (MPII16, or a 16-keypoint spec in MPII order).
        split: "all", "train" or "val" (hourglass form: ``isValidation``; the mmpose form has
            one file per split, so only "all" applies to it).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        spec: KeypointSpec = MPII16,
        split: str = "all",
    ) -> None:
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        if spec.num_keypoints != NUM_JOINTS:
            raise DataError(f"{self.ann_file}: MPII has 16 joints, spec {spec.name!r} has "
                            f"{spec.num_keypoints}")
        if split not in ("all", "train", "val"):
            raise DataError(f"{self.ann_file}: split must be all, train or val, got {split!r}")
        self.spec = spec
        images = read_mpii_annotations(self.ann_file)
        if split != "all":
            if any(im.is_validation is None for im in images):
                raise DataError(f"{self.ann_file}: the mmpose form has no split flag; use "
                                "split='all' with the per-split file")
            images = [im for im in images if im.is_validation == (split == "val")]
        self.images = images
        self.image_ids = [_image_id(im.file_name, i) for i, im in enumerate(images)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        entry = self.images[index]
        image = read_image(self.image_dir / entry.file_name)
        n = len(entry.keypoints)
        bboxes = np.stack([keypoint_extent(k) for k in entry.keypoints]) if n else np.zeros((0, 4))
        return Sample(
            image=image,
            keypoints=entry.keypoints.copy(),
            areas=(bboxes[:, 2] * bboxes[:, 3]).astype(np.float32),
            bboxes=bboxes.astype(np.float32),
            ignore_mask=None,
            image_id=self.image_ids[index],
            file_name=entry.file_name,
            centers=entry.centers.copy(),
            scales=entry.scales.copy(),
        )

    def __repr__(self) -> str:
        return f"MpiiKeypoints({str(self.ann_file)!r}, images={len(self)})"


def read_mpii_annotations(path: str | os.PathLike) -> list[MpiiImage]:
    """Read either MPII JSON form into per-image people (file order of first appearance)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise DataError(f"{path}: expected a non-empty list of MPII person records")
    try:
        if "joint_self" in data[0]:
            return _from_hourglass(data)
        if "joints" in data[0]:
            return _from_mmpose(data)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: malformed MPII record ({type(e).__name__}: {e})") from None
    raise DataError(f"{path}: unknown MPII form (records need 'joints' or 'joint_self')")


def _load_json(path: Path) -> Any:
    if path.suffix != ".gz":
        return read_json(path, "MPII annotation file")
    if not path.is_file():
        raise DataError(f"{path}: MPII annotation file not found")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: malformed gzip MPII annotation file: {e}") from None


def _from_mmpose(records: list[dict[str, Any]]) -> list[MpiiImage]:
    groups: dict[str, list[tuple[np.ndarray, np.ndarray, float]]] = {}
    for rec in records:
        joints = np.asarray(rec["joints"], dtype=np.float32).reshape(NUM_JOINTS, 2) - 1.0
        vis = np.asarray(rec["joints_vis"], dtype=np.float32).reshape(NUM_JOINTS)
        kps = np.concatenate([joints, np.where(vis > 0, 2.0, 0.0)[:, None]], axis=1)
        center = np.asarray(rec["center"], dtype=np.float32).reshape(2) - 1.0
        groups.setdefault(str(rec["image"]), []).append((kps, center, float(rec["scale"])))
    return [_make_image(name, people, None) for name, people in groups.items()]


def _from_hourglass(records: list[dict[str, Any]]) -> list[MpiiImage]:
    by_image: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        by_image.setdefault(str(rec["img_paths"]), []).append(rec)
    images = []
    for name, recs in by_image.items():
        raw = [(np.asarray(r["joint_self"], np.float32).reshape(NUM_JOINTS, 3),
                np.asarray(r["objpos"], np.float32).reshape(2), float(r["scale_provided"]))
               for r in recs]
        for rec in recs:
            for person in _others(rec):
                known = np.stack([p[0] for p in raw])
                if np.abs(known - person[0]).max(axis=(1, 2)).min() > 1e-3:
                    raw.append(person)
        people = [(_hourglass_visibility(j), c - 1.0, s) for j, c, s in raw]
        images.append(_make_image(name, people, bool(recs[0].get("isValidation", 0))))
    return images


def _others(rec: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """The ``joint_others`` people of a record (an empty MATLAB array is stored as a dict)."""
    if isinstance(rec.get("joint_others"), dict) or not rec.get("joint_others"):
        return []
    joints = np.asarray(rec["joint_others"], np.float32).reshape(-1, NUM_JOINTS, 3)
    centers = np.asarray(rec["objpos_other"], np.float32).reshape(-1, 2)
    scales = np.asarray(rec["scale_provided_other"], np.float32).reshape(-1)
    return [(joints[i], centers[i], float(scales[i])) for i in range(len(joints))]


def _hourglass_visibility(joints: np.ndarray) -> np.ndarray:
    """(16, 3) [x, y, visible] 1-based -> [x, y, v] 0-based; (0, 0) means unlabelled."""
    labelled = ~((joints[:, 0] == 0) & (joints[:, 1] == 0))
    v = np.where(labelled, np.where(joints[:, 2] > 0, 2.0, 1.0), 0.0)
    return np.concatenate([joints[:, :2] - 1.0, v[:, None]], axis=1).astype(np.float32)


def _make_image(
    name: str, people: list[tuple[np.ndarray, np.ndarray, float]], is_val: bool | None
) -> MpiiImage:
    return MpiiImage(
        file_name=name,
        keypoints=np.stack([p[0] for p in people]).astype(np.float32),
        centers=np.stack([p[1] for p in people]).astype(np.float32),
        scales=np.array([p[2] for p in people], dtype=np.float32),
        is_validation=is_val,
    )


def _image_id(file_name: str, index: int) -> int:
    """MPII images are named by a 9-digit number: use it; otherwise the position in the file."""
    stem = Path(file_name).stem
    return int(stem) if stem.isdigit() else index
