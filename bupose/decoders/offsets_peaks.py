"""Keypoint candidates of SimplePose V2: top-k peaks of the x``s`` bicubic-upsampled heatmaps
(ALGORITHMS.md §4.7 step 5; reference ``decoder/heatmap.py``, ``decoder/factory.py``).

Two implementations with the same result:

* ``peaks_full`` is the reference computation: ``F.interpolate(..., scale_factor=s,
  mode="bicubic", align_corners=False)`` of the whole maps, 3x3 max-pool NMS with zero padding,
  ``torch.topk`` per channel.
* ``peaks_windowed`` evaluates the upsampled maps only where a peak above the threshold can be.
  Bicubic is local (4 taps per axis), so an upsampled pixel of low-res cell (r, c) depends only
  on cells r-2..r+2, c-2..c+2 (border indices clamped, as torch does), and is at most
  P * max(v, 0) over that 5x5 window + |N| * max(-v, 0) over the channel, with P and N the
  largest sums of the positive / negative products of the 2-D weights. Cells whose bound is
  below the threshold are skipped; every other cell gets its s x s pixels plus the one-pixel
  ring NMS needs, all computed from the same 5x5 window. The values are float32 sums in
  another order than torch's (differences ~1e-7), so every decision that could flip by that
  much (NMS against a neighbour, the threshold, the order of two candidates, the top-k cut) is
  checked with a margin, and a channel with such a near tie is recomputed by ``peaks_full``.

Both return ``Peaks``: per channel the top-k (scores, flat indices, ys, xs) in the upsampled
frame, best first; slots without a candidate above the threshold have score 0 and index -1 in
``peaks_windowed`` (the reference keeps low non-peak values there, which nothing downstream
uses: they are moved off the image).

torch is imported inside ``upsample_bicubic`` / ``peaks_full`` only (the reference computation
is torch's), so that importing ``bupose.decoders`` does not import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

CUBIC_A = -0.75  # torch's bicubic coefficient
TIE_MARGIN = 4e-6  # relative: far above the float32 difference of two summation orders
FULL_FRACTION = 0.25  # windowed search only when at most this fraction of the cells can peak


@dataclass
class Peaks:
    """Top-k candidates per joint type in the upsampled (input pixel) frame.

    Attributes:
        scores: (C, k) float32 heatmap values, descending per channel.
        inds: (C, k) int64 flat index y * W + x (-1 for an empty slot).
        ys, xs: (C, k) int64 pixel rows / columns (-1 for an empty slot).
    """

    scores: np.ndarray
    inds: np.ndarray
    ys: np.ndarray
    xs: np.ndarray


def upsample_bicubic(heatmaps: np.ndarray, factor: int) -> torch.Tensor:
    """(C, h, w) -> (1, C, s*h, s*w) float32 torch tensor, exactly as the reference upsamples."""
    import torch
    import torch.nn.functional as F

    maps = torch.from_numpy(np.ascontiguousarray(heatmaps, dtype=np.float32))[None]
    return F.interpolate(maps, scale_factor=factor, mode="bicubic", align_corners=False)


def peaks_full(heatmaps: np.ndarray, factor: int, topk: int) -> Peaks:
    """Reference top-k on the whole upsampled maps.

    Reference quirk 1: the row is the integer division of the flat index (``topk_idxs / w``
    truncated on the torch 1.3.1 the reference pins; true division on modern torch).
    """
    import torch
    import torch.nn.functional as F

    hr = upsample_bicubic(heatmaps, factor)
    width = hr.shape[-1]
    hmax = F.max_pool2d(F.pad(hr, (1, 1, 1, 1)), (3, 3), stride=1)
    peaks = hr * (hmax == hr).float()
    scores, inds_t = torch.topk(peaks.view(1, hr.shape[1], -1), topk)
    inds = inds_t[0].numpy()
    return Peaks(scores[0].numpy(), inds, inds // width, inds % width)


def _cubic(x: float) -> float:
    x = abs(x)
    if x <= 1:
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1
    return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A


def window_taps(factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Taps of the s + 2 upsampled pixels s*r - 1 .. s*r + s of a cell r (its own s pixels and
    the NMS ring) inside the 5-cell window r-2..r+2.

    Returns:
        first (s+2,) int: window index of the first of the 4 taps; weights (s+2, 4) float32.
    """
    first, weights = [], []
    for rel in range(-1, factor + 1):
        src = (rel + 0.5) / factor - 0.5
        floor = int(np.floor(src))
        t = src - floor
        first.append(floor - 1 + 2)
        weights.append([_cubic(t + 1), _cubic(t), _cubic(1 - t), _cubic(2 - t)])
    return np.asarray(first), np.asarray(weights, np.float32)


def _bound_factors(factor: int) -> tuple[float, float]:
    """Largest sums of positive and of |negative| products of the 2-D bicubic weights."""
    _, w = window_taps(factor)
    pos = float(np.clip(w, 0, None).sum(1).max())
    neg = float(-np.clip(w, None, 0).sum(1).min())
    return pos * pos + neg * neg, 2 * pos * neg


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of (C, h, w) ``mask`` by a (2r+1)^2 square, per channel."""
    out = mask.copy()
    for d in range(1, radius + 1):
        out[:, d:] |= mask[:, :-d]
        out[:, :-d] |= mask[:, d:]
    rows = out.copy()
    for d in range(1, radius + 1):
        out[:, :, d:] |= rows[:, :, :-d]
        out[:, :, :-d] |= rows[:, :, d:]
    return out


def _filter5(maps: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op`` (np.maximum / np.minimum) over each cell's 5x5 window, borders clamped."""
    out = maps.copy()
    for axis in (1, 2):
        src = out.copy()
        n = src.shape[axis]
        for d in (1, 2):
            lo = [slice(None)] * 3
            hi = [slice(None)] * 3
            lo[axis], hi[axis] = slice(d, None), slice(None, n - d)
            op(out[tuple(lo)], src[tuple(hi)], out=out[tuple(lo)])
            op(out[tuple(hi)], src[tuple(lo)], out=out[tuple(hi)])
    return out


def _candidate_cells(heatmaps: np.ndarray, factor: int, thre: float) -> np.ndarray:
    """(n, 3) [channel, row, col] of the cells whose upsampled pixels can reach ``thre``:
    P * max(v, 0) + |N| * max(-v, 0) over the 5x5 window (the negative part taken over the
    whole channel when it is small, which makes the test a dilation of a threshold mask)."""
    pos, neg = _bound_factors(factor)
    target = thre * (1 - TIE_MARGIN) - 1e-12
    lowest = np.maximum(-heatmaps.reshape(len(heatmaps), -1).min(axis=1), 0)
    if np.all(neg * lowest < 0.5 * target):
        seed = (target - neg * lowest) / pos
        return np.argwhere(_dilate(heatmaps >= seed[:, None, None], 2))
    high = np.maximum(_filter5(heatmaps, np.maximum), 0)
    low = np.maximum(-_filter5(heatmaps, np.minimum), 0)
    return np.argwhere(pos * high + neg * low >= target)


def _windows(heatmaps: np.ndarray, cells: np.ndarray, factor: int) -> np.ndarray:
    """(s+2, s+2, n) upsampled values of each cell's s x s pixels and their one-pixel ring
    (cells last: every step is a vector operation over the n cells; no BLAS, whose threads
    would spin on the shared cores)."""
    c, h, w = heatmaps.shape
    padded = np.empty((c, h + 4, w + 4), np.float32)
    padded[:, 2:-2, 2:-2] = heatmaps
    padded[:, :2, 2:-2] = heatmaps[:, :1]  # clamped borders, as torch
    padded[:, -2:, 2:-2] = heatmaps[:, -1:]
    padded[:, :, :2] = padded[:, :, 2:3]
    padded[:, :, -2:] = padded[:, :, -3:-2]
    steps = np.arange(5)[:, None] * (w + 4) + np.arange(5)[None, :]
    base = (cells[:, 0] * (h + 4) + cells[:, 1]) * (w + 4) + cells[:, 2]
    patch = padded.reshape(-1)[steps[:, :, None] + base]  # (5, 5, n)
    first, weights = window_taps(factor)
    m = factor + 2
    horiz = np.empty((5, m, len(cells)), np.float32)
    for i in range(m):
        taps = patch[:, first[i]:first[i] + 4]
        horiz[:, i] = sum(taps[:, j] * weights[i, j] for j in range(4))
    win = np.empty((m, m, len(cells)), np.float32)
    for i in range(m):
        taps = horiz[first[i]:first[i] + 4]
        win[i] = sum(taps[j] * weights[i, j] for j in range(4))
    edge = np.nonzero((cells[:, 1] == 0) | (cells[:, 1] == h - 1)
                      | (cells[:, 2] == 0) | (cells[:, 2] == w - 1))[0]
    if len(edge):  # ring pixels outside the map: the NMS pads with zeros there
        rel = np.arange(-1, factor + 1)
        ys = cells[edge, 1] * factor + rel[:, None]
        xs = cells[edge, 2] * factor + rel[:, None]
        out = ((ys < 0) | (ys >= h * factor))[:, None] | ((xs < 0) | (xs >= w * factor))[None]
        win[:, :, edge] = np.where(out, 0.0, win[:, :, edge])
    return win


def _local_peaks(win: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre pixels (s, s, n) of each window that are >= their 8 neighbours, and those within
    the tie margin of their largest neighbour."""
    s = win.shape[0] - 2
    centre = win[1:-1, 1:-1]
    across = np.maximum(np.maximum(win[:, :-2], win[:, 1:-1]), win[:, 2:])  # (s+2, s, n)
    nb = np.maximum(np.maximum(across[:s], across[2:]),
                    np.maximum(win[1:-1, :-2], win[1:-1, 2:]))
    margin = TIE_MARGIN * np.maximum(np.abs(centre), 1.0)
    return centre >= nb, np.abs(centre - nb) < margin


def peaks_windowed(heatmaps: np.ndarray, factor: int, topk: int, thre: float) -> Peaks:
    """``peaks_full``'s candidates with score >= ``thre`` (module docstring), same order.

    Args:
        heatmaps: (C, h, w) float32 low-res heatmaps.
        factor: upsampling factor s (4).
        topk: k.
        thre: candidate threshold (> 0).
    """
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    cells = _candidate_cells(heatmaps, factor, thre)
    if len(cells) > FULL_FRACTION * heatmaps.size:  # e.g. noisy maps: the whole maps are cheaper
        return peaks_full(heatmaps, factor, topk)
    win = _windows(heatmaps, cells, factor)
    is_peak, near_tie = _local_peaks(win)
    centre = win[1:-1, 1:-1]
    margin = TIE_MARGIN * max(1.0, abs(thre))
    above = centre >= thre - margin
    keep = is_peak & above
    # a near tie with a neighbour of a pixel near/above the threshold, or a kept value near it
    doubtful = (near_tie & above) | (keep & (centre < thre + margin))
    suspicious = np.zeros(len(heatmaps), bool)
    suspicious[cells[doubtful.any(axis=(0, 1)), 0]] = True
    py, px, n_idx = np.nonzero(keep)
    chan = cells[n_idx, 0]
    ys = cells[n_idx, 1] * factor + py
    xs = cells[n_idx, 2] * factor + px
    vals = centre[py, px, n_idx]
    return _select(heatmaps, factor, topk, thre, (chan, ys, xs, vals), suspicious)


def _select(
    heatmaps: np.ndarray, factor: int, topk: int, thre: float,
    found: tuple[np.ndarray, ...], suspicious: np.ndarray,
) -> Peaks:
    """Per channel the best ``topk`` of the found peaks; channels with a near tie in the order
    or at the cut (or flagged before) are recomputed with ``peaks_full``."""
    c, _, w = heatmaps.shape
    width = w * factor
    chan, ys, xs, vals = found
    order = np.lexsort((ys * width + xs, -vals, chan))
    chan, ys, xs, vals = chan[order], ys[order], xs[order], vals[order]
    out = Peaks(np.zeros((c, topk), np.float32), np.full((c, topk), -1, np.int64),
                np.full((c, topk), -1, np.int64), np.full((c, topk), -1, np.int64))
    starts = np.searchsorted(chan, np.arange(c + 1))
    for j in range(c):
        v = vals[starts[j]:starts[j + 1]][: topk + 1]
        if len(v) > 1 and np.any(-np.diff(v) < TIE_MARGIN * np.maximum(np.abs(v[1:]), 1.0)):
            suspicious[j] = True
        sl = slice(starts[j], min(starts[j + 1], starts[j] + topk))
        n = sl.stop - sl.start
        out.scores[j, :n] = vals[sl]
        out.ys[j, :n], out.xs[j, :n] = ys[sl], xs[sl]
        out.inds[j, :n] = ys[sl] * width + xs[sl]
    redo = np.nonzero(suspicious)[0]
    if len(redo):
        full = peaks_full(heatmaps[redo], factor, topk)
        for name in ("scores", "inds", "ys", "xs"):
            getattr(out, name)[redo] = getattr(full, name)
    return out
