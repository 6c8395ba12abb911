"""Gaussian heatmap targets of the associative-embedding family (ALGORITHMS.md §2.2).

Official HigherHRNet semantics (``HeatmapGenerator``): for every labelled joint (v > 0) the
integer cell (int(x), int(y)) — truncation toward zero, so x in (-1, 0) lands on column 0 — must lie
inside the map; an unnormalised Gaussian patch of side 6*sigma + 3 whose peak (value 1.0) sits on
that cell is pasted, and overlapping patches of the same joint type take the pixel-wise maximum.
"""

from __future__ import annotations

import numpy as np


def gaussian_patch(sigma: float) -> np.ndarray:
    """The unnormalised Gaussian pasted at every joint.

    Args:
        sigma: standard deviation in map pixels.

    Returns:
        (S, S) float64 with S = len(arange(0, 6 * sigma + 3)); the peak 1.0 is at index
        3 * sigma + 1 on both axes (15 x 15, peak at [7, 7], for sigma = 2).
    """
    size = 6 * sigma + 3
    x = np.arange(0, size, 1, dtype=np.float64)
    y = x[:, None]
    x0 = y0 = 3 * sigma + 1
    return np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * sigma**2))


def peak_cells(keypoints: np.ndarray, size_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Integer cells the targets use, and which joints are encodable.

    Args:
        keypoints: (N, K, 3) [x, y, v] in map pixels.
        size_wh: map (w, h).

    Returns:
        cells: (N, K, 2) int64 (int(x), int(y)), truncated toward zero as the official code does.
        valid: (N, K) bool, v > 0 and the cell inside the map.
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    w, h = size_wh
    finite = np.asarray(np.isfinite(kps[..., :2]).all(axis=-1))
    cells = np.trunc(np.where(finite[..., None], kps[..., :2], -1.0)).astype(np.int64)
    x, y = cells[..., 0], cells[..., 1]
    valid = (kps[..., 2] > 0) & finite & (x >= 0) & (y >= 0) & (x < w) & (y < h)
    return cells, valid


def render_heatmaps(
    keypoints: np.ndarray, size_wh: tuple[int, int], sigma: float = 2.0
) -> np.ndarray:
    """Per-joint-type heatmaps of all people, every patch pasted at once.

    Each encodable joint's patch covers columns round(x - 3 sigma - 1) .. round(x + 3 sigma + 2)
    (exclusive; the official corners, half-to-even for fractional sigma) and the same rows,
    clipped to the map; where patches of a joint type overlap, the maximum is kept
    (``np.maximum.at``, so the result does not depend on the order of the people).

    Args:
        keypoints: (N, K, 3) [x, y, v] in map pixels (N may be 0).
        size_wh: map (w, h).
        sigma: Gaussian sigma in map pixels (2 at every resolution in the references).

    Returns:
        (K, h, w) float32 in [0, 1]; 1.0 exactly at every encodable joint's cell.
    """
    w, h = size_wh
    heatmaps = np.zeros((np.shape(keypoints)[1], h, w), dtype=np.float32)
    cells, valid = peak_cells(keypoints, size_wh)
    person, joint = np.nonzero(valid)
    if len(person) == 0:
        return heatmaps
    # float32 rounding is monotonic: the max of float32-rounded values is the float32 rounding
    # of the float64 max (the official loop maxes the float64 patch into float32 maps)
    patch = gaussian_patch(sigma).astype(np.float32)
    offsets = np.arange(len(patch))
    xy = cells[person, joint].astype(np.float64)  # (J, 2)
    start = np.round(xy - 3 * sigma - 1).astype(np.int64)
    stop = np.minimum(np.round(xy + 3 * sigma + 2).astype(np.int64), (w, h))
    cols = start[:, 0, None] + offsets  # (J, S)
    rows = start[:, 1, None] + offsets
    keep_cols = (cols >= 0) & (cols < stop[:, 0, None])
    keep_rows = (rows >= 0) & (rows < stop[:, 1, None])
    keep = keep_rows[:, :, None] & keep_cols[:, None, :]  # (J, S, S)
    j, r, c = np.nonzero(keep)
    np.maximum.at(heatmaps, (joint[j], rows[j, r], cols[j, c]), patch[r, c])
    return heatmaps
