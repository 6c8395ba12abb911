"""Joint read-outs of top-down heatmaps: CAL's offsets and the baselines it is compared with.

All take fused heatmaps (N, K, h, w) float32 and return coords (N, K, 2) float32 (x, y) in
heatmap pixels (cell centres at integers, the unbiased/UDP frame that ``back_project`` maps to
the image) and maxvals (N, K, 1). Every read-out starts from the same integer argmax (first
maximum in row-major order; (0, 0) when the maximum is <= 0, the reference's rule):

* ``"offset"``: CAL, argmax + LOCREF_STDEV x the offset branch at that cell (the default);
* ``"argmax"``: the integer cell only;
* ``"quarter"``: the classic HRNet shift of 0.25 cell towards the larger neighbour per axis;
* ``"dark"``: DARK-style sub-pixel refinement: the map is smoothed by a Gaussian (kernel
  ``dark_kernel``), log-transformed, and the argmax moved by one Newton step of its second-order
  Taylor expansion (``-H^-1 g``, skipped where the Hessian is not negative definite).

With the UDP frame of bupose's crops, "argmax", "quarter" and "dark" are the UDP variants of
those baselines (no half-pixel bias to correct).
"""

from __future__ import annotations

import numpy as np

READOUTS = ("offset", "argmax", "quarter", "dark")


def argmax_cells(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First maximal cell: xs, ys (N, K) int64 ((0, 0) where the max is <= 0), maxvals (N,K,1)."""
    hm = np.asarray(heatmaps, np.float32)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)
    positive = maxvals[..., 0] > 0.0
    return np.where(positive, idx % w, 0), np.where(positive, idx // w, 0), maxvals


def quarter_shift(heatmaps: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(N, K, 2) shifts of +-0.25 towards the larger neighbour (0 at the border or a tie)."""
    hm = np.asarray(heatmaps, np.float32)
    _, _, h, w = hm.shape
    b, j = np.meshgrid(np.arange(hm.shape[0]), np.arange(hm.shape[1]), indexing="ij")
    inner_x = (xs > 0) & (xs < w - 1)
    inner_y = (ys > 0) & (ys < h - 1)
    cx = np.clip(xs, 1, max(w - 2, 1))
    cy = np.clip(ys, 1, max(h - 2, 1))
    dx = np.sign(hm[b, j, ys, np.minimum(cx + 1, w - 1)] - hm[b, j, ys, cx - 1]) * inner_x
    dy = np.sign(hm[b, j, np.minimum(cy + 1, h - 1), xs] - hm[b, j, cy - 1, xs]) * inner_y
    return 0.25 * np.stack([dx, dy], axis=-1).astype(np.float32)


def dark_shift(heatmaps: np.ndarray, xs: np.ndarray, ys: np.ndarray,
               kernel: int = 3) -> np.ndarray:
    """(N, K, 2) DARK Newton steps at the argmax cells (0 at the border or a flat Hessian)."""
    import cv2

    hm = np.asarray(heatmaps, np.float64)
    n, k, h, w = hm.shape
    smooth = np.empty_like(hm)
    for i in range(n):
        for j in range(k):
            m = hm[i, j]
            blurred = cv2.GaussianBlur(m, (kernel, kernel), 0)
            peak = m.max()
            smooth[i, j] = blurred * (peak / blurred.max() if blurred.max() > 0 else 1.0)
    logm = np.log(np.maximum(smooth, 1e-10))
    shift = np.zeros((n, k, 2), np.float64)
    inner = (xs > 1) & (xs < w - 2) & (ys > 1) & (ys < h - 2)
    for i, j in zip(*np.nonzero(inner)):
        x, y, m = xs[i, j], ys[i, j], logm[i, j]
        dx = 0.5 * (m[y, x + 1] - m[y, x - 1])
        dy = 0.5 * (m[y + 1, x] - m[y - 1, x])
        dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
        dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
        dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
        det = dxx * dyy - dxy * dxy
        if dxx < 0 and det > 0:
            shift[i, j] = -np.linalg.solve([[dxx, dxy], [dxy, dyy]], [dx, dy])
    return shift.astype(np.float32)


def read_out(heatmaps: np.ndarray, offsets: np.ndarray | None, method: str = "offset",
             locref_stdev: float = 1.5, dark_kernel: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """coords (N, K, 2) float32 heatmap px and maxvals (N, K, 1) by ``method`` (module doc)."""
    if method not in READOUTS:
        raise ValueError(f"unknown read-out {method!r} (known: {', '.join(READOUTS)})")
    xs, ys, maxvals = argmax_cells(heatmaps)
    cells = np.stack([xs, ys], axis=-1).astype(np.float32)
    if method == "offset":
        if offsets is None:
            raise ValueError("the offset read-out needs the offset maps")
        n, k = xs.shape
        off = np.asarray(offsets, np.float32).reshape(n, k, 2, *np.shape(heatmaps)[2:])
        b, j = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
        coords = cells + off[b, j, :, ys, xs] * np.float32(locref_stdev)
    elif method == "argmax":
        coords = cells
    elif method == "quarter":
        coords = cells + quarter_shift(heatmaps, xs, ys)
    else:
        coords = cells + dark_shift(heatmaps, xs, ys, dark_kernel)
    return coords.astype(np.float32), maxvals.astype(np.float32)
