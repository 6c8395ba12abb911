"""One reader for every COCO-format keypoint set: COCO, CrowdPose (``crowdIndex``), OCHuman, AIC,
MHP, synthetic and custom sets with any number of keypoints K (ALGORITHMS.md §1.1).

Official HigherHRNet semantics (``CocoKeypoints`` / ``CrowdPoseKeypoints``):
* people kept for targets: ``iscrowd == 0 or num_keypoints > 0``;
* ``train_filter``: only images with at least one annotation (of any kind) are listed;
* ignore mask (``get_mask``): the union of crowd regions (``iscrowd``) and of the segmentations of
  non-crowd people with ``num_keypoints == 0``, computed from ALL annotations of the image;
  ``None`` when the file has no segmentation at all (CrowdPose, AIC).
Missing fields are tolerated where the formats omit them: ``iscrowd`` -> 0, ``num_keypoints`` ->
number of labelled keypoints, ``area`` -> box area, ``bbox`` -> labelled-keypoint extent.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from bupose.data.sample import Sample
from bupose.data.validate import check_keypoint_annotations
from bupose.errors import DataError
from bupose.structures.spec import KeypointSpec
from bupose.utils.io import read_image, read_json

Annotation = dict[str, Any]


class CocoKeypoints:
    """A COCO-format keypoint annotation file plus its image folder; ``reader[i]`` -> ``Sample``.

    Args:
        ann_file: COCO-format JSON (``images``, ``annotations``; a file without ``annotations``,
            e.g. test-dev image info, gives images without people).
        image_dir: folder holding the images, joined with each image's ``file_name``.
        spec: keypoint spec; every annotation must have 3 * spec.num_keypoints keypoint values.
        train_filter: keep only images with at least one annotation (training mode).

    Raises:
        DataError: malformed file, or an annotation with a wrong keypoint count (names its id).
    """

    def __init__(
        self,
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        spec: KeypointSpec,
        train_filter: bool = False,
    ) -> None:
        self.ann_file = Path(ann_file)
        self.image_dir = Path(image_dir)
        self.spec = spec
        data = read_json(self.ann_file, "COCO annotation file")
        images, annotations, _ = check_keypoint_annotations(data, self.ann_file,
                                                            spec.num_keypoints)
        self._images: dict[int, dict[str, Any]] = {int(info["id"]): info for info in images}
        self._anns: dict[int, list[Annotation]] = {i: [] for i in self._images}
        for ann in annotations:
            self._anns[int(ann["image_id"])].append(ann)
        ids = list(self._images)
        if train_filter:
            ids = [i for i in ids if self._anns[i]]
        self.image_ids: list[int] = ids
        self.has_segmentation = any(ann.get("segmentation") for ann in annotations)

    def __len__(self) -> int:
        return len(self.image_ids)

    def __getitem__(self, index: int) -> Sample:
        image_id = self.image_ids[index]
        info = self._images[image_id]
        image = read_image(self.image_dir / info["file_name"])
        height, width = image.shape[:2]
        if (info.get("height", height), info.get("width", width)) != (height, width):
            raise DataError(
                f"{self.image_dir / info['file_name']}: image is {width}x{height} but "
                f"{self.ann_file} says {info['width']}x{info['height']}"
            )
        anns = self._anns[image_id]
        mask = None
        if self.has_segmentation:
            mask = ignore_mask(anns, height, width, source=str(self.ann_file))
        people = [a for a in anns if not a.get("iscrowd", 0) or _num_keypoints(a) > 0]
        keypoints, areas, bboxes = people_arrays(people, self.spec.num_keypoints)
        return Sample(
            image=image,
            keypoints=keypoints,
            areas=areas,
            bboxes=bboxes,
            ignore_mask=mask,
            image_id=image_id,
            file_name=str(info["file_name"]),
        )

    def annotations(self, image_id: int) -> list[Annotation]:
        """The raw annotations of one image (all of them, crowd included), in file order."""
        return list(self._anns[image_id])

    def image_info(self, image_id: int) -> dict[str, Any]:
        """The raw ``images`` entry of one image."""
        return dict(self._images[image_id])

    def crowd_index(self, image_id: int) -> float | None:
        """CrowdPose's per-image ``crowdIndex`` in [0, 1], or None when the file has none."""
        value = self._images[image_id].get("crowdIndex")
        return None if value is None else float(value)

    def __repr__(self) -> str:
        return (
            f"CocoKeypoints({str(self.ann_file)!r}, images={len(self)}, "
            f"spec={self.spec.name!r}, masks={self.has_segmentation})"
        )


def people_arrays(
    anns: Sequence[Annotation], num_keypoints: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack annotations into arrays.

    Returns:
        keypoints (N, K, 3) float32 [x, y, v], areas (N,) float32, bboxes (N, 4) float32
        [x, y, w, h], all in image pixels.
    """
    n = len(anns)
    keypoints = np.zeros((n, num_keypoints, 3), dtype=np.float32)
    areas = np.zeros((n,), dtype=np.float32)
    bboxes = np.zeros((n, 4), dtype=np.float32)
    for i, ann in enumerate(anns):
        keypoints[i] = np.asarray(ann["keypoints"], dtype=np.float32).reshape(num_keypoints, 3)
        bboxes[i] = ann["bbox"] if ann.get("bbox") else keypoint_extent(keypoints[i])
        areas[i] = ann["area"] if ann.get("area") is not None else bboxes[i, 2] * bboxes[i, 3]
    return keypoints, areas, bboxes


def keypoint_extent(keypoints: np.ndarray) -> np.ndarray:
    """(4,) float32 [x, y, w, h] box around the labelled (v > 0) keypoints of one person (K, 3)."""
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    if len(labelled) == 0:
        return np.zeros(4, dtype=np.float32)
    lo, hi = labelled.min(axis=0), labelled.max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], dtype=np.float32)


def ignore_mask(
    anns: Sequence[Annotation], height: int, width: int, source: str = "annotations"
) -> np.ndarray:
    """Official ignore mask of one image (HigherHRNet ``get_mask``).

    Args:
        anns: all annotations of the image (crowd and people without keypoints included).
        height, width: image size in pixels.
        source: file name for error messages.

    Returns:
        (H, W) bool, True where ignored: crowd regions and the segmentations of non-crowd people
        with ``num_keypoints == 0``. Annotations without a segmentation add nothing.
    """
    mask = np.zeros((height, width), dtype=bool)
    for ann in anns:
        if not (ann.get("iscrowd", 0) or _num_keypoints(ann) == 0):
            continue
        seg = ann.get("segmentation")
        if seg:
            mask |= segmentation_mask(seg, height, width, where=f"{source}: annotation id "
                                      f"{ann.get('id')}")
    return mask


def segmentation_mask(seg: Any, height: int, width: int, where: str = "segmentation") -> np.ndarray:
    """Decode a COCO segmentation (polygons, uncompressed or compressed RLE) to (H, W) bool."""
    try:
        with warnings.catch_warnings():  # pycocotools' numpy-2 DeprecationWarning on every decode
            warnings.simplefilter("ignore", DeprecationWarning)
            return _decode(seg, height, width, where)
    except DataError:
        raise
    except Exception as e:  # pycocotools raises bare exceptions on malformed input
        raise DataError(f"{where}: cannot decode segmentation ({type(e).__name__}: {e})") from None


def _decode(seg: Any, height: int, width: int, where: str) -> np.ndarray:
    if isinstance(seg, list):
        rles = mask_utils.frPyObjects(seg, height, width)
        decoded = mask_utils.decode(rles)
        return decoded.reshape(height, width, -1).any(axis=2)
    if isinstance(seg, dict):
        if isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            counts = seg["counts"]
            rle = {"size": list(seg["size"]),
                   "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        decoded = mask_utils.decode(rle)
        if decoded.shape[:2] != (height, width):
            raise DataError(f"{where}: RLE size {decoded.shape[:2]} is not the image size "
                            f"{(height, width)}")
        return decoded.astype(bool)
    raise DataError(f"{where}: segmentation must be polygons (list) or RLE (dict)")


def _num_keypoints(ann: Annotation) -> int:
    if "num_keypoints" in ann:
        return int(ann["num_keypoints"])
    v = np.asarray(ann.get("keypoints", []), dtype=np.float32)[2::3]
    return int((v > 0).sum())
