"""Bounds and bookkeeping for the exact refine search (``livesearch.py``, ``lowtiles.py``).

The official refine score of a pixel is ``s = fl32(h - round(d32))`` with ``d32`` the float32
distance between its tag and the person's mean tag c. For a tile (or cell, block, half tile)
with heatmap maximum m and a tag box (``tiles.Boxes``, bound frame), ``fl32(m - penalty(d_lb))``
bounds every such score from above when ``d_lb`` is a lower bound of the exact distance from c
to the box: ``d32`` is within a few float32 ulps of the exact distance, ``penalty`` shrinks
``d_lb`` by 1e-5 relative before rounding, and float32 subtraction and rounding are monotone.

Queries and candidates travel as flat "pair" arrays (query id q, item id) with q
non-decreasing, built from per-query ranges with ``ragged``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bupose.decoders.tiles import Boxes, MapTiles

NO_PIXEL = np.iinfo(np.int64).max
SHRINK = 1e-5
_EXACT_LIMIT = 2.0**22  # below this, float32 steps of scores are <= 0.25


def penalised_scores(heat: np.ndarray, tags: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The official refine score ``heat - round(||tags - centre||)``, float32 throughout.

    Args:
        heat: (...,) float32 heatmap values.
        tags: (..., L) float32 tag vectors at the same pixels.
        centre: (..., L) float32 mean tags, broadcast against ``tags``.

    The same float32 operations as the official numpy expression (difference, square, sum
    over L, square root, round half to even, subtraction), done in place.
    """
    sq = tags - centre
    sq *= sq
    if sq.shape[-1] == 1:
        total = np.ascontiguousarray(sq[..., 0])
    elif sq.shape[-1] == 2:  # what numpy's sum over a length-2 axis computes, minus its overhead
        total = sq[..., 0] + sq[..., 1]
    else:
        total = sq.sum(axis=-1)
    np.sqrt(total, out=total)
    np.round(total, out=total)
    return np.subtract(heat, total, out=total) if total.shape == np.shape(heat) else heat - total


def penalty(dist: np.ndarray) -> np.ndarray:
    """Lower bound (float32, integer valued) of round(d32) for distances >= ``dist``."""
    return np.round(dist * (1.0 - SHRINK)).astype(np.float32)


def dist_lower(boxes: Boxes, centres: tuple[np.ndarray, ...]) -> np.ndarray:
    """(E,) float64 lower bound of the tag distance from centres (coordinate columns (E,) in the
    boxes' frame) to the boxes (E,)."""
    total = np.zeros(len(centres[0]))
    for lo, hi, c in zip(boxes.lo, boxes.hi, centres):
        gap = np.maximum(np.maximum(lo - c, c - hi), 0.0)
        total += gap * gap
    return np.sqrt(total * boxes.metric)


def upper_score(vmax: np.ndarray, boxes: Boxes, centres: tuple[np.ndarray, ...]) -> np.ndarray:
    """(E,) float32 upper bound of the scores of pixels with value <= vmax in the boxes."""
    with np.errstate(invalid="ignore"):  # empty boxes: -inf - inf
        return vmax - penalty(dist_lower(boxes, centres))


def diameter(boxes: Boxes) -> np.ndarray:
    """(E,) float64 tag-distance diameter of the boxes."""
    total = np.zeros(len(boxes.lo[0]))
    for lo, hi in zip(boxes.lo, boxes.hi):
        total += (hi - lo) ** 2
    return np.sqrt(total * boxes.metric)


def max_penalty(top: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """(Q,) largest integer penalty n with fl32(top - n) >= lower (float64; inf when the
    values are too large or infinite to bound): a pixel with value <= top and penalty > n
    scores below ``lower``."""
    top64, low64 = top.astype(np.float64), lower.astype(np.float64)
    with np.errstate(invalid="ignore"):
        n = np.floor(top64 - low64)
        ok = np.isfinite(n) & (np.abs(top64) < _EXACT_LIMIT) & (np.abs(low64) < _EXACT_LIMIT)
    n = np.where(ok, n, 0.0)
    nxt = top.astype(np.float32) - (n + 1).astype(np.float32)
    n = np.where(nxt >= lower, n + 1, n)
    return np.where(ok, n, np.inf)


def ragged(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (q, starts[q] + i) for i < counts[q], q ascending: (qid, idx) int64."""
    qid = np.repeat(np.arange(len(counts)), counts)
    offsets = np.cumsum(counts) - counts
    return qid, np.arange(len(qid)) - np.repeat(offsets - starts, counts)


def groups(counts: np.ndarray, cap: int) -> Iterator[np.ndarray]:
    """Split queries (ids 0..Q-1) into consecutive runs whose summed counts exceed ``cap`` by
    at most their last query's count."""
    if len(counts) == 0:
        return
    before = np.cumsum(counts) - counts
    if before[-1] + counts[-1] <= cap:
        yield np.arange(len(counts))
        return
    label = before // max(cap, 1)
    bounds = np.r_[0, np.flatnonzero(label[1:] != label[:-1]) + 1, len(counts)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        yield np.arange(a, b)


def fold(q: np.ndarray, scores: np.ndarray, pix: np.ndarray, best: np.ndarray,
         flat: np.ndarray) -> None:
    """Merge candidates (q non-decreasing, exact score, pixel id) into the per-query best
    score and the smallest pixel id reaching it, in place."""
    if len(q) == 0:
        return
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    uq = q[starts]
    seg_best = np.maximum.reduceat(scores, starts)
    lengths = np.diff(np.r_[starts, len(q)])
    hit = scores == np.repeat(seg_best, lengths)
    seg_flat = np.minimum.reduceat(np.where(hit, pix, NO_PIXEL), starts)
    old_best, old_flat = best[uq], flat[uq]
    tie = np.where(seg_best == old_best, np.minimum(old_flat, seg_flat), old_flat)
    flat[uq] = np.where(seg_best > old_best, seg_flat, tie)
    best[uq] = np.maximum(old_best, seg_best)


def tile_best(tiles: MapTiles, gid: np.ndarray, centres: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """Exact best score of each tile for its centre (E, L) float32 and the global id of the
    first pixel (raster order) reaching it: (E,) float32, (E,) int64."""
    heat, tags = tiles.values(gid)
    scores = penalised_scores(heat, tags, centres[:, None, :])
    pos = np.argmax(scores, axis=1)
    return scores[np.arange(len(gid)), pos], tiles.pixel_id(gid, pos)
