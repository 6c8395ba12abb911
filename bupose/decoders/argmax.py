"""Exact, fast search for the official refine's maximum: ``heatmap_k - round(||tag_k - c||)``.

The official refine evaluates this float32 score on the full map of joint type k for every
person (centre c = the person's mean tag) and takes the first maximum in raster order; only its
heatmap value and, when that value is > 0, its position are used. ``penalised_argmax`` returns
the same answers for all queries (c, k) of an image at once, by branch and bound over the tiles
of ``MapTiles`` (bounds: ``bounds.py``):

1. live tiles (max > 0) are indexed by the centre u = sum_j (lo_j + hi_j) / 2 of their tag box
   (narrow boxes, sorted per joint) or by their maximum (wide boxes). As |u(t) - u(c)| <=
   sqrt(L) ||t - c||, the tiles whose tags may lie within a distance r of c form one
   ``searchsorted`` window of the sorted u;
2. a lower bound per query: the exact scores at the maximum pixel of the tiles in the window
   r = 0.5 (tags that may cost no penalty) and of the joint's largest tiles;
3. the tiles that can still reach that score: inside the window whose radius the bound allows,
   value and box bound (and, for wide tiles, the bounds of two tag halves) at least the bound;
   tiles whose whole box is within 0.5 of c score exactly their values (their first maximum
   is their answer), the others are evaluated pixel by pixel with the official expression;
4. the best pixel (ties to the smallest raster index) is the official answer unless a pixel of
   a dead tile (max <= 0) scores higher or ties earlier (``deadcheck.py``); dead pixels have
   values <= 0, so such an answer is not used by refine: those queries get value 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bupose.decoders.bounds import (
    NO_PIXEL,
    SHRINK,
    all_zero_penalty,
    fold,
    groups,
    max_penalty,
    penalised_scores,
    ragged,
    upper_score,
)
from bupose.decoders.deadcheck import dead_beats
from bupose.decoders.tiles import MapTiles

HALF_WIDTH = 0.5  # tiles whose box spans at most 2 * HALF_WIDTH in u are indexed by u
PROBE = 4  # largest tiles per joint scored for the lower bounds
CHUNK = 1 << 18  # (query, tile) pairs handled together


def penalised_argmax_dense(
    heatmaps: np.ndarray, tags: np.ndarray, centres: np.ndarray, joints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reference full-map search: the official expression and ``np.argmax``, one query at a time.

    Returns:
        flat: (Q,) int64 raster index y * w + x of the first maximum; vals: (Q,) float32 there.
    """
    flat = np.zeros(len(joints), np.int64)
    for q, (c, k) in enumerate(zip(centres, joints)):
        flat[q] = np.argmax(penalised_scores(heatmaps[k], tags[k], c[None, None, :]))
    return flat, heatmaps.reshape(len(heatmaps), -1)[joints, flat]


@dataclass(frozen=True)
class LiveIndex:
    """The live tiles (max > 0) of every joint, arranged for range queries in tag space.

    Attributes:
        narrow: (E,) global tile ids with box half-width <= HALF_WIDTH in u, sorted by
            (joint, u centre); narrow_u: (E,) float64 their u centres; narrow_start: (K + 1,)
            joint segments; narrow_hw: (K,) float64 largest u half-width per joint.
        wide: (W,) the other live tiles sorted by (joint, -max); wide_neg: (W,) float32 -max;
            wide_start: (K + 1,).
        top: (K, PROBE) global ids of each joint's largest tiles (-1 pad).
        joint_max: (K,) float32 largest heatmap value per joint.
    """

    narrow: np.ndarray
    narrow_u: np.ndarray
    narrow_start: np.ndarray
    narrow_hw: np.ndarray
    wide: np.ndarray
    wide_neg: np.ndarray
    wide_start: np.ndarray
    top: np.ndarray
    joint_max: np.ndarray


def live_index(tiles: MapTiles) -> LiveIndex:
    """Build (once per MapTiles) the LiveIndex."""
    cached = tiles.cache.get("live_index")
    if cached is not None:
        return cached
    k, t = tiles.max.shape
    live = np.flatnonzero(tiles.max_flat > 0)
    joint = live // t
    boxes = tiles.boxes().take(live)
    u_lo, u_hi = sum(boxes.lo), sum(boxes.hi)
    mid, hw = (u_lo + u_hi) / 2, (u_hi - u_lo) / 2
    narrow = hw <= HALF_WIDTH
    order = np.lexsort((mid[narrow], joint[narrow]))
    n_joint = joint[narrow][order]
    n_start = np.searchsorted(n_joint, np.arange(k + 1))
    n_hw = np.zeros(k)
    np.maximum.at(n_hw, n_joint, hw[narrow][order])
    vmax = tiles.max_flat[live]
    w_order = np.lexsort((-vmax[~narrow], joint[~narrow]))
    w_joint = joint[~narrow][w_order]
    by_max = np.lexsort((-vmax, joint))
    start = np.searchsorted(joint[by_max], np.arange(k + 1))
    rank = np.arange(len(live)) - start[joint[by_max]]
    top = np.full((k, PROBE), -1, np.int64)
    keep = rank < PROBE
    top[joint[by_max][keep], rank[keep]] = live[by_max][keep]
    index = LiveIndex(
        live[narrow][order], mid[narrow][order], n_start, n_hw,
        live[~narrow][w_order], -vmax[~narrow][w_order], np.searchsorted(w_joint, np.arange(k + 1)),
        top, tiles.max.max(axis=1),
    )
    tiles.cache["live_index"] = index
    return index


@dataclass
class _Queries:
    """Queries of one search: joints (Q,), centres (Q, L) float32 and as float64 columns,
    their u = sum of components, and the running best score / first pixel (global id)."""

    joints: np.ndarray
    c32: np.ndarray
    cols: tuple[np.ndarray, ...]
    u: np.ndarray
    best: np.ndarray
    flat: np.ndarray

    def cols_at(self, q: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(c[q] for c in self.cols)


def _window(index: LiveIndex, qs: _Queries, radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) into ``index.narrow`` of the tiles whose u centre is within
    ``radius + half-width`` of each query's u (whole joint segment when unbounded)."""
    starts = np.zeros(len(qs.joints), np.int64)
    ends = np.zeros(len(qs.joints), np.int64)
    reach = radius + index.narrow_hw[qs.joints] + 1e-9 * (1.0 + np.abs(qs.u))
    with np.errstate(invalid="ignore"):
        low, high = qs.u - reach, qs.u + reach
    bounded = np.isfinite(low) & np.isfinite(high)
    for k in np.unique(qs.joints):
        sel = np.flatnonzero(qs.joints == k)
        s, e = index.narrow_start[k], index.narrow_start[k + 1]
        seg = index.narrow_u[s:e]
        fin = bounded[sel]
        starts[sel] = np.where(fin, s + np.searchsorted(seg, np.where(fin, low[sel], 0)), s)
        ends[sel] = np.where(
            fin, s + np.searchsorted(seg, np.where(fin, high[sel], 0), side="right"), e
        )
    return starts, ends - starts


def _wide_counts(index: LiveIndex, qs: _Queries) -> np.ndarray:
    """(Q,) number of wide tiles of each query's joint with max >= its best score."""
    counts = np.zeros(len(qs.joints), np.int64)
    for k in np.unique(qs.joints):
        sel = np.flatnonzero(qs.joints == k)
        s, e = index.wide_start[k], index.wide_start[k + 1]
        counts[sel] = np.searchsorted(index.wide_neg[s:e], -qs.best[sel], side="right")
    return counts


def _fold_reps(tiles: MapTiles, qs: _Queries, q: np.ndarray, gid: np.ndarray) -> None:
    """Fold the exact scores at the maximum pixels of tiles ``gid`` (q non-decreasing)."""
    pix = tiles.reps(gid)
    scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[q])
    fold(q, scores, pix, qs.best, qs.flat)


def _fold_pixels(tiles: MapTiles, qs: _Queries, q: np.ndarray, gid: np.ndarray) -> None:
    """Fold every pixel of tiles ``gid``; tiles whose penalty is 0 throughout fold their
    first maximum directly (their scores are their heatmap values)."""
    direct = all_zero_penalty(tiles.boxes().take(gid), qs.cols_at(q))
    if direct.any():
        pix = tiles.reps(gid[direct])
        fold(q[direct], tiles.heat_flat[pix], pix, qs.best, qs.flat)
    q, gid = q[~direct], gid[~direct]
    step = max(1, CHUNK // tiles.size**2)
    for s in range(0, len(q), step):
        pix = tiles.pixels(gid[s : s + step]).ravel()
        qq = np.repeat(q[s : s + step], tiles.size**2)
        scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[qq])
        fold(qq, scores, pix, qs.best, qs.flat)


def _lower_bounds(tiles: MapTiles, index: LiveIndex, qs: _Queries) -> None:
    """Scores at the maxima of the r = 0.5 window's tiles and of each joint's largest tiles."""
    radius = np.full(len(qs.joints), 0.5 * (1.0 + SHRINK) * np.sqrt(tiles.dim))
    starts, counts = _window(index, qs, radius)
    for sel in groups(counts, CHUNK):
        q, e = ragged(starts[sel], counts[sel])
        _fold_reps(tiles, qs, sel[q], index.narrow[e])
    open_ = np.flatnonzero(max_penalty(index.joint_max[qs.joints], qs.best) > 0)
    top = index.top[qs.joints[open_]]
    q = np.repeat(open_, PROBE)[top.ravel() >= 0]
    _fold_reps(tiles, qs, q, top.ravel()[top.ravel() >= 0])


def _survivors(tiles: MapTiles, qs: _Queries, q: np.ndarray, gid: np.ndarray,
               halves: bool) -> tuple[np.ndarray, np.ndarray]:
    """The (query, tile) pairs whose bounds reach the query's best score."""
    vmax = tiles.max_flat[gid]
    keep = vmax >= qs.best[q]
    q, gid = q[keep], gid[keep]
    low = qs.best[q]
    keep = upper_score(tiles.max_flat[gid], tiles.boxes().take(gid), qs.cols_at(q)) >= low
    q, gid, low = q[keep], gid[keep], low[keep]
    if halves and len(q):
        box_a, box_b, vh = tiles.halves(gid)
        cols = qs.cols_at(q)
        keep = (upper_score(vh[:, 0], box_a, cols) >= low) | (
            upper_score(vh[:, 1], box_b, cols) >= low)
        q, gid = q[keep], gid[keep]
    return q, gid


def _search_live(tiles: MapTiles, index: LiveIndex, qs: _Queries) -> None:
    """Exact best score and first pixel over the live tiles, in place in ``qs``."""
    _lower_bounds(tiles, index, qs)
    n = max_penalty(index.joint_max[qs.joints], qs.best)
    radius = (n + 0.5) * (1.0 + SHRINK) * np.sqrt(tiles.dim)
    starts, counts = _window(index, qs, radius)
    wide = _wide_counts(index, qs)
    w_starts = index.wide_start[qs.joints]
    for sel in groups(counts + wide, CHUNK):
        q, e = ragged(starts[sel], counts[sel])
        q, gid = _survivors(tiles, qs, sel[q], index.narrow[e], halves=False)
        _fold_pixels(tiles, qs, q, gid)
        q, e = ragged(w_starts[sel], wide[sel])
        q, gid = _survivors(tiles, qs, sel[q], index.wide[e], halves=True)
        _fold_pixels(tiles, qs, q, gid)


def penalised_argmax(
    tiles: MapTiles, centres: np.ndarray, joints: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """First raster-order maximum of ``heatmap_k - round(||tag_k - c||)`` for many (c, k).

    Args:
        tiles: ``MapTiles`` of the (K, h, w) heatmaps and (K, h, w, L) tags.
        centres: (Q, L) float32 mean tags c.
        joints: (Q,) int joint type k of each query.

    Returns:
        flat: (Q,) int64 raster index y * w + x; vals: (Q,) float32 heatmap value there.
        Equal to ``penalised_argmax_dense`` wherever its value is > 0; elsewhere vals is 0 and
        flat unspecified.
    """
    joints = np.asarray(joints, np.int64)
    c32 = np.ascontiguousarray(centres, dtype=np.float32).reshape(len(joints), tiles.dim)
    cols = tuple(c32[:, j].astype(np.float64) for j in range(tiles.dim))
    qs = _Queries(joints, c32, cols, sum(cols) if cols else np.zeros(len(joints)),
                  np.full(len(joints), -np.inf, np.float32), np.full(len(joints), NO_PIXEL))
    if len(joints) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    index = live_index(tiles)
    _search_live(tiles, index, qs)
    found = qs.flat != NO_PIXEL
    vals = np.where(found, tiles.heat_flat[np.where(found, qs.flat, 0)], np.float32(0))
    check = np.flatnonzero((vals > 0) & (qs.best <= 0))
    if len(check):
        beaten = dead_beats(tiles, qs.c32[check], joints[check], qs.best[check], qs.flat[check])
        vals[check[beaten]] = 0
    pixels = tiles.h * tiles.w
    flat = np.where(found, qs.flat - joints * pixels, 0)
    return flat, np.maximum(vals, np.float32(0)).astype(np.float32)
