"""Top-down person crops as the CAL reference makes them (ALGORITHMS.md §6.2).

Frames and units:
* image: original image pixels, x right, y down, pixel centres at integers;
* input: crop pixels (w x h, e.g. 48 x 64), same convention;
* ``center`` (2,) (x, y) image px and ``scale`` (2,) (w, h) in units of 200 image px: the person
  box after the aspect fix and the x1.25 padding, i.e. the crop spans ``S = 200 * scale`` px.

The warp is the unbiased (UDP-style) one: the output grid 0..w-1 spans exactly the box
``[c - S/2, c + S/2]``, rotated about ``c``; pixels are sampled by ``cv2.warpAffine`` with
``WARP_INVERSE_MAP | INTER_LINEAR`` and a black border, so the crop is bit-identical to the
reference's when the float32 matrix is.

Pure functions used by training (``bupose.data.topdown_dataset``) and by top-down inference:
``box_to_center_scale``, ``udp_warp_matrix``, ``crop``, ``joints_to_input``, plus the training
augmentation draw ``sample_crop`` with the reference's probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

PIXEL_STD = 200.0

# Upper-body joints used by half-body augmentation, per keypoint spec (reference datasets).
UPPER_BODY_IDS: dict[str, tuple[int, ...]] = {
    "coco17": tuple(range(11)),
    "ochuman17": tuple(range(11)),
    "mpii16": (7, 8, 9, 10, 11, 12, 13, 14, 15),
}


def clean_box(box_xywh: Sequence[float], image_wh: tuple[int, int]) -> np.ndarray | None:
    """The reference's clean-up of a ground-truth box (quirk 11: detections are used raw).

    ``x1 = max(0, x)``, ``x2 = min(W - 1, x1 + max(0, w - 1))`` (same for y); the box is
    ``[x1, y1, x2 - x1, y2 - y1]``.

    Returns:
        (4,) float64 [x, y, w, h] in image px, or None when ``x2 < x1`` or ``y2 < y1`` (the
        reference drops such boxes; it also drops annotations with ``area <= 0``, which the
        caller checks).
    """
    x, y, w, h = (float(v) for v in box_xywh[:4])
    width, height = image_wh
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(width - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(height - 1.0, y1 + max(0.0, h - 1.0))
    if x2 < x1 or y2 < y1:
        return None
    return np.array([x1, y1, x2 - x1, y2 - y1], dtype=np.float64)


def box_to_center_scale(
    box_xywh: Sequence[float],
    aspect: float,
    padding: float = 1.25,
    clean: bool = True,
    image_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Person box -> (center, scale) as the reference's ``_box2cs``.

    Args:
        box_xywh: [x, y, w, h] in image px.
        aspect: input w / h (e.g. 48 / 64); the short side of the box is enlarged to it.
        padding: enlargement of the aspect-fixed box (1.25 in the reference).
        clean: apply the ground-truth clean-up ``clean_box`` first (True for GT boxes, False
            for detection boxes, quirk 11).
        image_size: (W, H) of the image, required when ``clean``.

    Returns:
        center (2,) float32 (x, y) image px; scale (2,) float32 (w, h) / 200.

    Raises:
        ValueError: ``clean`` without ``image_size``, or a box the clean-up rejects.
    """
    if clean:
        if image_size is None:
            raise ValueError("box_to_center_scale(clean=True) needs image_size=(W, H)")
        cleaned = clean_box(box_xywh, image_size)
        if cleaned is None:
            raise ValueError(f"box {list(box_xywh)} lies outside the {image_size} image")
        box_xywh = cleaned
    x, y, w, h = (float(v) for v in box_xywh[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    if w > aspect * h:
        h = w * 1.0 / aspect
    elif w < aspect * h:
        w = h * aspect
    # float32 rounding before the padding, as the reference stores the scale
    scale = np.array([w / PIXEL_STD, h / PIXEL_STD], dtype=np.float32) * np.float32(padding)
    return center, scale


def udp_warp_matrix(
    center: np.ndarray, scale: np.ndarray, rotation: float, output_size_wh: tuple[int, int]
) -> np.ndarray:
    """The reference's ``get_warpmatrix``: OUTPUT (input px) -> IMAGE px (for WARP_INVERSE_MAP).

    For rotation 0: ``x_img = x_out * S_w / (w - 1) + c_x - S_w / 2`` (same for y).
    The arithmetic follows the dtypes of ``center`` / ``scale`` (float32 boxes give the
    reference's float32 products), so that the float32 result matches it bit for bit.

    Args:
        center: (2,) (x, y) image px. scale: (2,) (w, h) / 200. rotation: degrees.
        output_size_wh: crop (w, h) px.

    Returns:
        (2, 3) float32.
    """
    c = np.asarray(center)
    size = np.asarray(scale) * PIXEL_STD
    theta = rotation / 180.0 * math.pi
    cos_t, sin_t = math.cos(theta), math.sin(theta)
    sx = size[0] / np.float64(output_size_wh[0] - 1.0)
    sy = size[1] / np.float64(output_size_wh[1] - 1.0)
    m = np.zeros((2, 3), dtype=np.float32)
    m[0, 0] = cos_t * sx
    m[0, 1] = sin_t * sy
    m[0, 2] = -0.5 * size[0] * cos_t - 0.5 * size[1] * sin_t + c[0]
    m[1, 0] = -sin_t * sx
    m[1, 1] = cos_t * sy
    m[1, 2] = 0.5 * size[0] * sin_t - 0.5 * size[1] * cos_t + c[1]
    return m


def warp_crop(image: np.ndarray, matrix: np.ndarray, output_size_wh: tuple[int, int]) -> np.ndarray:
    """(H, W, C) image sampled through an output->image ``matrix`` (bilinear, border 0)."""
    w, h = int(output_size_wh[0]), int(output_size_wh[1])
    return cv2.warpAffine(np.ascontiguousarray(image), matrix, (w, h),
                          flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop(
    image: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    output_size_wh: tuple[int, int],
    rotation: float = 0.0,
) -> np.ndarray:
    """The person crop: (H, W, 3) uint8 image -> (h, w, 3) uint8 input (UDP warp)."""
    return warp_crop(image, udp_warp_matrix(center, scale, rotation, output_size_wh),
                     output_size_wh)


def joints_to_input(
    joints_xy: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    rotation: float,
    output_size_wh: tuple[int, int],
) -> np.ndarray:
    """Image px -> input px (the reference's ``rotate_points`` without clipping).

    ``p' = (R(r) (p - c) + S / 2) * (size - 1) / S`` per axis.

    Args:
        joints_xy: (K, 2) image px. center, scale, rotation, output_size_wh: the crop.

    Returns:
        (K, 2) float64 input px.
    """
    p = np.asarray(joints_xy, dtype=np.float64)
    size = np.asarray(scale) * PIXEL_STD
    theta = rotation / 180.0 * math.pi
    sin_n, cos_t = -math.sin(theta), math.cos(theta)
    dx = p[:, 0] - center[0]
    dy = p[:, 1] - center[1]
    out = np.empty_like(p)
    kx = np.float64(output_size_wh[0] - 1.0) / size[0]  # float64 even for a float32 scale
    ky = np.float64(output_size_wh[1] - 1.0) / size[1]
    out[:, 0] = (cos_t * dx + sin_n * dy + size[0] * 0.5) * kx
    out[:, 1] = (-sin_n * dx + cos_t * dy + size[1] * 0.5) * ky
    return out


def flip_joints(
    joints: np.ndarray, visible: np.ndarray, width: int, flip_index: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror joints of a horizontally flipped image: ``x = width - x - 1``, left/right swapped,
    invisible joints zeroed (the reference multiplies by the visibility).

    Args:
        joints: (K, 2) image px. visible: (K,) 0/1. width: image width. flip_index: (K,).

    Returns:
        joints (K, 2), visible (K,) of the flipped image.
    """
    idx = np.asarray(flip_index)
    out = np.asarray(joints, dtype=np.float64).copy()
    out[:, 0] = width - out[:, 0] - 1
    out, vis = out[idx], np.asarray(visible)[idx]
    return out * vis[:, None], vis


@dataclass(frozen=True)
class TopDownAugment:
    """Training augmentation of the CAL reference (quirks 7, 8).

    Attributes:
        half_body_prob: probability of a half-body crop (needs > ``half_body_joints`` visible).
        half_body_joints: minimum number of visible joints (exclusive) for half-body.
        scale_factor: scale ``s * clip(N(0,1) * f + 1, 1 - f, 1 + f)``.
        rotation_factor: rotation ``clip(N(0,1) * f, -2f, 2f)`` degrees ...
        rotation_prob: ... drawn with this probability (``random() <= p``), else 0.
        flip_prob: horizontal flip (``random() <= p``).
    """

    half_body_prob: float = 0.3
    half_body_joints: int = 8
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6
    flip_prob: float = 0.5


@dataclass(frozen=True)
class CropParams:
    """What one training crop used: center (2,) image px (after the flip), scale (2,),
    rotation degrees, flipped, half_body."""

    center: np.ndarray
    scale: np.ndarray
    rotation: float
    flipped: bool
    half_body: bool


def half_body_box(
    joints: np.ndarray, visible: np.ndarray, upper_ids: Sequence[int], aspect: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The reference's half-body box: the upper body when ``N(0,1) < 0.5`` (quirk 7, p≈0.69)
    and it has > 2 visible joints, else the lower one (if > 2, else the upper); None when the
    chosen part has < 2 joints. Box: joint extent, aspect fixed, x1.5, centre = joint mean.

    Returns:
        (center (2,) float32, scale (2,) float32) or None.
    """
    upper_set = set(int(i) for i in upper_ids)
    vis = np.asarray(visible) > 0
    upper = [joints[k] for k in range(len(joints)) if vis[k] and k in upper_set]
    lower = [joints[k] for k in range(len(joints)) if vis[k] and k not in upper_set]
    if rng.standard_normal() < 0.5 and len(upper) > 2:
        chosen = upper
    else:
        chosen = lower if len(lower) > 2 else upper
    if len(chosen) < 2:
        return None
    pts = np.array(chosen, dtype=np.float32)
    center = pts.mean(axis=0)[:2]
    w, h = pts[:, 0].max() - pts[:, 0].min(), pts[:, 1].max() - pts[:, 1].min()
    if w > aspect * h:
        h = w * 1.0 / aspect
    elif w < aspect * h:
        w = h * aspect
    scale = np.array([w * 1.0 / PIXEL_STD, h * 1.0 / PIXEL_STD], dtype=np.float32) * 1.5
    return center, scale


def sample_crop(
    rng: np.random.Generator,
    joints: np.ndarray,
    visible: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    aug: TopDownAugment,
    aspect: float,
    upper_ids: Sequence[int],
    image_width: int,
) -> CropParams:
    """Draw one training crop in the reference's order: half-body, scale, rotation, flip.

    Args:
        rng: the only source of randomness.
        joints: (K, 2) image px; visible: (K,) 0/1. center, scale: the person's box.
        aug: probabilities and factors. aspect: input w / h. upper_ids: half-body upper joints
            (empty = no half-body). image_width: for the flipped centre ``W - c_x - 1``.

    Returns:
        CropParams; ``center`` is already mirrored when ``flipped`` (the caller mirrors the
        image and the joints with ``flip_joints``).
    """
    c = np.asarray(center, dtype=np.float32).copy()
    s: Any = np.asarray(scale, dtype=np.float32)
    half = False
    if (upper_ids and float(np.sum(visible)) > aug.half_body_joints
            and rng.random() < aug.half_body_prob):
        box = half_body_box(joints, visible, upper_ids, aspect, rng)
        if box is not None:
            c, s = box
            half = True
    sf, rf = aug.scale_factor, aug.rotation_factor
    s = s * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
    r = 0.0
    if rng.random() <= aug.rotation_prob:
        r = float(np.clip(rng.standard_normal() * rf, -rf * 2, rf * 2))
    flipped = bool(rng.random() <= aug.flip_prob)
    if flipped:
        c[0] = image_width - c[0] - 1
    return CropParams(center=c, scale=s, rotation=r, flipped=flipped, half_body=half)
