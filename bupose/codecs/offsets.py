"""SimplePose V2 (OffsetGuided) training targets at stride 4 (ALGORITHMS.md §4.4).

Frames: keypoints arrive in input pixels (e.g. the 512 x 512 crop); stride-``s`` cell (i, j)
sits at input pixel (s*j + s/2 - 0.5, s*i + s/2 - 0.5), i.e. (4j + 1.5, 4i + 1.5) at stride 4.
Everything is computed in float32 like the reference encoders, so the targets equal the official
ones to float rounding.

* heatmaps (K, h, w): Gaussian of σ input px at the cell centres, in a window of
  ``2*ceil(sqrt(2σ² ln(1/clip))/s)`` cells (12 for σ 7) from ``round(x/s - n/2)`` to
  ``round(x/s + n/2)`` (exclusive; Python's round-half-to-even, as the reference), values below
  ``clip`` set to 0, people combined by pixel-wise max;
* guiding offsets (2L, h, w): for every limb (from, to) of ``skeleton`` whose two joints are
  labelled, a ``fill_size``-cell window (7) around the from-joint gets the vector
  (to-joint - cell centre) in input px; where windows overlap the shorter vector wins; +inf
  where undefined;
* keypoint scales (K, h, w): where a limb's vector was written, the from-joint's channel gets its
  s_k (NaN when s_k < ``min_jscale``); NaN elsewhere. The channel of a from-joint is overwritten
  by every limb starting there, in limb order, each with its own shorter-vector mask (as the
  reference);
* instance scales (2L, h, w): s_k / σ_k of the from-joint where the limb's vector was written,
  1.0 elsewhere (normalises the offset loss);
* mask_miss (1, h, w) bool: the input-resolution mask (255 = supervised) resized by 1/s with cubic
  interpolation, /255, > 0.7.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Directed COCO limbs (from -> to) of the reference (``COCO_PERSON_SKELETON``), in its order.
COCO_OFFSET_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (5, 6), (4, 6), (3, 5), (5, 7), (7, 9), (6, 8),
    (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16))

# The reference's COCO keypoint sigmas (OKS sigmas), used for s_k = sqrt(area) * σ_k.
COCO_OFFSET_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
    0.087, 0.087, 0.089, 0.089)


@dataclass(frozen=True)
class OffsetTargets:
    """Targets of one image (K joints, L limbs, maps h x w at the stride).

    Attributes:
        heatmaps: (K, h, w) float32. offsets: (2L, h, w) float32 input px, +inf undefined.
        scales: (K, h, w) float32, NaN undefined. instance_scales: (2L, h, w) float32.
        mask_miss: (1, h, w) bool, True = supervised.
    """

    heatmaps: np.ndarray
    offsets: np.ndarray
    scales: np.ndarray
    instance_scales: np.ndarray
    mask_miss: np.ndarray


def _cell_centres(n: int, stride: int) -> np.ndarray:
    return (np.arange(n) * stride + stride / 2 - 0.5).astype(np.float32)


def _window(centre: float, stride: int, size: float) -> tuple[int, int] | None:
    """[lo, hi) cells of a window of ``size`` cells around ``centre`` (input px), or None when
    it lies before the map. ``round`` is Python's (half to even), as the reference."""
    lo = int(round(centre / stride - size / 2))
    hi = int(round(centre / stride + size / 2))
    if hi < 0:
        return None
    return max(lo, 0), hi


def encode_heatmaps(keypoints: np.ndarray, size_hw: tuple[int, int], stride: int = 4,
                    sigma: float = 7.0, clip: float = 0.01) -> np.ndarray:
    """Gaussian heatmaps (K, h, w) float32 of ``keypoints`` (P, K, >=3: x, y, v) in input px.

    Joints with v <= 0 are skipped; windows reaching outside the map are cropped.
    """
    h, w = size_hw[0] // stride, size_hw[1] // stride
    kps = np.asarray(keypoints, np.float32)
    k = kps.shape[1] if kps.ndim == 3 else 0
    out = np.zeros((k, h, w), np.float32)
    n = 2 * math.ceil(math.sqrt(-2 * sigma * sigma * math.log(clip)) / stride)
    gx, gy = _cell_centres(w, stride), _cell_centres(h, stride)
    two_s2 = np.float32(2 * sigma * sigma)
    for p in range(kps.shape[0] if k else 0):
        for j in range(k):
            x, y, v = kps[p, j, 0], kps[p, j, 1], kps[p, j, 2]
            if not v > 0:
                continue
            wx, wy = _window(float(x), stride, n), _window(float(y), stride, n)
            if wx is None or wy is None:
                continue
            ex = np.exp(-((gx[wx[0]:wx[1]] - x) ** 2) / two_s2)
            ey = np.exp(-((gy[wy[0]:wy[1]] - y) ** 2) / two_s2)
            g = np.outer(ey, ex)
            g[g < clip] = 0
            patch = out[j, wy[0]:wy[1], wx[0]:wx[1]]
            np.maximum(patch, g, out=patch)
    return out


def encode_offsets(keypoints: np.ndarray, size_hw: tuple[int, int], stride: int = 4,
                   skeleton: Sequence[tuple[int, int]] = COCO_OFFSET_SKELETON,
                   sigmas: Sequence[float] = COCO_OFFSET_SIGMAS, fill_size: int = 7,
                   min_jscale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Guiding offsets (2L, h, w), keypoint scales (K, h, w), instance scales (2L, h, w).

    Args:
        keypoints: (P, K, 4) x, y, v, s_k in input px (s_k = sqrt(bbox area) * σ_k, scaled).
        size_hw: input (H, W). skeleton: directed limbs. sigmas: (K,) σ_k for s_k / σ_k.
    """
    h, w = size_hw[0] // stride, size_hw[1] // stride
    kps = np.asarray(keypoints, np.float32)
    n_limbs = len(skeleton)
    k = len(sigmas)
    offsets = np.full((n_limbs, 2, h, w), np.inf, np.float32)
    scales = np.full((k, h, w), np.nan, np.float32)
    inst = np.ones((n_limbs, 2, h, w), np.float32)
    if kps.ndim != 3 or kps.shape[0] == 0:
        return offsets.reshape(-1, h, w), scales, inst.reshape(-1, h, w)
    gx, gy = _cell_centres(w, stride), _cell_centres(h, stride)
    for limb, (fr, to) in enumerate(skeleton):
        for p in np.flatnonzero((kps[:, fr, 2] > 0) & (kps[:, to, 2] > 0)):
            j1, j2 = kps[p, fr], kps[p, to]
            wx, wy = _window(float(j1[0]), stride, fill_size), _window(float(j1[1]), stride,
                                                                       fill_size)
            if wx is None or wy is None:
                continue
            ox = j2[0] - gx[wx[0]:wx[1]]
            oy = j2[1] - gy[wy[0]:wy[1]]
            mesh = np.stack(np.broadcast_arrays(ox[None, :], oy[:, None]))  # (2, wh, ww)
            length = np.sqrt((mesh * mesh).sum(0))
            patch = offsets[limb, :, wy[0]:wy[1], wx[0]:wx[1]]
            mask = length < np.sqrt((patch * patch).sum(0))  # shorter vector wins; inf < inf no
            patch[:, mask] = mesh[:, mask]
            s_k = j1[3]
            scales[fr, wy[0]:wy[1], wx[0]:wx[1]][mask] = s_k if s_k >= min_jscale else np.nan
            inst[limb, :, wy[0]:wy[1], wx[0]:wx[1]][:, mask] = s_k / sigmas[fr]
    return offsets.reshape(-1, h, w), scales, inst.reshape(-1, h, w)


def downsample_mask(mask_input: np.ndarray, stride: int = 4) -> np.ndarray:
    """(1, h, w) bool supervised-mask from the input-resolution uint8 mask (255 = supervised):
    cubic resize by 1/stride, /255, > 0.7 (the reference's rule)."""
    import cv2

    m = cv2.resize(np.ascontiguousarray(mask_input), (0, 0), fx=1 / stride, fy=1 / stride,
                   interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    return (m > 0.7)[None]


def encode_offset_targets(keypoints: np.ndarray, mask_input: np.ndarray, stride: int = 4,
                          sigma: float = 7.0, clip: float = 0.01,
                          skeleton: Sequence[tuple[int, int]] = COCO_OFFSET_SKELETON,
                          sigmas: Sequence[float] = COCO_OFFSET_SIGMAS, fill_size: int = 7,
                          min_jscale: float = 1.0) -> OffsetTargets:
    """All targets of one image: ``keypoints`` (P, K, 4) in input px and the input-resolution
    uint8 ``mask_input`` (H, W) (255 = supervised) whose shape is the input size."""
    size_hw = (int(mask_input.shape[0]), int(mask_input.shape[1]))
    heatmaps = encode_heatmaps(keypoints, size_hw, stride, sigma, clip)
    offsets, scales, inst = encode_offsets(keypoints, size_hw, stride, skeleton, sigmas,
                                           fill_size, min_jscale)
    return OffsetTargets(heatmaps, offsets, scales, inst, downsample_mask(mask_input, stride))
