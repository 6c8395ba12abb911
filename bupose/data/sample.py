"""``Sample``: one image with its people, in one coordinate frame.

Readers return samples in the original image frame (``affine`` = identity); transforms return new
samples in a new frame and compose ``affine`` (original image -> current frame).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

IDENTITY_AFFINE = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@dataclass
class Sample:
    """One image and its annotated people.

    Attributes:
        image: (H, W, 3) uint8 RGB.
        keypoints: (N, K, 3) float32 [x, y, v] in the current frame; v: 0 unlabelled,
            1 labelled but occluded, 2 visible.
        areas: (N,) float32 person areas (segmentation area when the format has one, else box area)
            in ORIGINAL image pixels (not rescaled by transforms; they only serve evaluation).
        bboxes: (N, 4) float32 [x, y, w, h] boxes in the original image frame.
        ignore_mask: (H, W) bool, True = ignored (crowd regions, people without keypoints), in the
            current frame; None when the format has no segmentation.
        image_id: dataset image id.
        file_name: image file name as written in the annotation file.
        affine: (2, 3) float64, original image pixels -> current frame pixels.
        centers: (N, 2) float32 per-person box centres (x, y) in the current frame, or None
            (MPII's centre/scale annotation, kept for top-down use).
        scales: (N,) float32 per-person box sizes in units of 200 current-frame pixels, or None.
    """

    image: np.ndarray
    keypoints: np.ndarray
    areas: np.ndarray
    bboxes: np.ndarray
    ignore_mask: np.ndarray | None
    image_id: int
    file_name: str
    affine: np.ndarray = dataclasses.field(default_factory=lambda: IDENTITY_AFFINE.copy())
    centers: np.ndarray | None = None
    scales: np.ndarray | None = None

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[1])

    @property
    def size_wh(self) -> tuple[int, int]:
        """(W, H) of the image in the current frame."""
        return int(self.image.shape[1]), int(self.image.shape[0])

    def replace(self, **changes: object) -> Sample:
        """A copy with some fields replaced (arrays not listed are shared, not copied)."""
        return dataclasses.replace(self, **changes)


def empty_keypoints(num_keypoints: int) -> np.ndarray:
    """(0, K, 3) float32: the keypoints of an image without people."""
    return np.zeros((0, num_keypoints, 3), dtype=np.float32)
