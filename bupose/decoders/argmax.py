"""Exact, fast search for the official refine's maximum: ``heatmap_k - round(||tag_k - c||)``.

The official refine evaluates this float32 score on the full maps of every joint type for every
person and takes the first maximum in raster order; only its heatmap value and, when that value
is > 0, its position are used. ``penalised_argmax`` returns the same answers by branch and bound
over the tiles of ``MapTiles``, vectorised over queries:

* a tile's scores are at most ``tile max - round(lower bound of the tag distance)``, the bound
  being the distance from c to the tile's tag box (shrunk by 1e-5 relative to cover float32
  rounding; float32 subtraction and rounding are monotone, so it bounds the float32 scores);
* tiles whose bound is below a score already achieved are skipped, the rest are evaluated with
  the official expression, and ties go to the smallest raster index;
* the search runs over blocks of tiles first (block max, block tag box), then over the tiles of
  the surviving blocks, then over the pixels of the surviving tiles;
* "live" tiles contain a value > 0. The best pixel of the live tiles is the answer unless a pixel
  of the other ("dead") tiles scores higher or ties earlier in raster order; dead pixels have
  values <= 0, so the answer then has a value <= 0 and refine ignores it. Such queries get
  value 0 and an unspecified position.
"""

from __future__ import annotations

import numpy as np

from bupose.decoders.tiles import (
    MapTiles,
    bound_frame,
    frame_metric,
    row_sum_sq,
    tag_distance_bound,
)

PROBE = 32
TIGHTEN = 1 << 12  # (query, tile) pairs above which block boxes are recomputed tighter
CHUNK = 1 << 20
_NO_PIXEL = np.iinfo(np.int64).max


def penalised_scores(heat: np.ndarray, tags: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The official refine score ``heat - round(||tags - centre||)``, float32 throughout.

    Args:
        heat: (...,) float32 heatmap values.
        tags: (..., L) float32 tag vectors at the same pixels.
        centre: (..., L) float32 mean tags, broadcast against ``tags``.
    """
    sq = (tags - centre) ** 2
    if sq.shape[-1] == 1:
        total = sq[..., 0]
    elif sq.shape[-1] == 2:  # what numpy's sum over a length-2 axis computes, minus its overhead
        total = sq[..., 0] + sq[..., 1]
    else:
        total = sq.sum(axis=-1)
    return heat - np.round(total**0.5)


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


def _rep_scores(tiles: MapTiles, k: int, ids: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Exact scores at the maxima of tiles ``ids`` (broadcast with ``centres``)."""
    return penalised_scores(tiles.max[k][ids], tiles.tags[k][tiles.rep[k][ids]], centres)


def _penalty(dist: np.ndarray) -> np.ndarray:
    """round() of a distance lower bound shrunk by 1e-5 relative, as float32.

    The shrink covers the float32 evaluation of the official distance; float32 subtraction and
    rounding are monotone, so ``max value - penalty`` bounds the float32 scores.
    """
    return np.round(dist * (1.0 - 1e-5)).astype(np.float32)


def _reaches(tiles: MapTiles, k: int, ids: np.ndarray, centres: np.ndarray,
             lower: np.ndarray) -> np.ndarray:
    """(E,) False where tile ``ids[e]`` provably has no score >= ``lower[e]`` for ``centres[e]``.

    Bound-frame tag boxes first; survivors with a wide box (a tile across a boundary between
    people) are checked again with the boxes of its two halves.
    """
    tile_max = tiles.max[k][ids]
    keep = tile_max - _penalty(tiles.distance_bound(k, ids, centres)) >= lower
    lo, hi = tiles.tile_boxes(k, ids)
    wide = keep & (np.sqrt(row_sum_sq(hi - lo) * frame_metric(tiles.dim)) > 1.0)
    if wide.any():
        sel = np.flatnonzero(wide)
        keep[sel] = tiles.split_bound(k, ids[sel], centres[sel], _penalty) >= lower[sel]
    return keep


def _fold(q: np.ndarray, scores: np.ndarray, pix: np.ndarray, best: np.ndarray,
          flat: np.ndarray) -> None:
    """Merge candidate (query, score, pixel) triples (q sorted) into the per-query best score
    and smallest raster index reaching it, in place."""
    if len(q) == 0:
        return
    starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
    uq = q[starts]
    seg_best = np.maximum.reduceat(scores, starts)
    seg = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(q)]))
    seg_flat = np.minimum.reduceat(np.where(scores == seg_best[seg], pix, _NO_PIXEL), starts)
    old_best, old_flat = best[uq], flat[uq]
    tie = np.where(seg_best == old_best, np.minimum(old_flat, seg_flat), old_flat)
    flat[uq] = np.where(seg_best > old_best, seg_flat, tie)
    best[uq] = np.maximum(old_best, seg_best)


def _fold_pixels(tiles: MapTiles, k: int, qid: np.ndarray, ids: np.ndarray,
                 centres: np.ndarray, best: np.ndarray, flat: np.ndarray) -> None:
    """Evaluate every pixel of (query, tile) pairs (qid sorted) into best / flat in place."""
    step = max(1, CHUNK // tiles.size**2)
    for s in range(0, len(qid), step):
        pix = tiles.pixels(ids[s : s + step]).ravel()
        q = np.repeat(qid[s : s + step], tiles.size**2)
        scores = penalised_scores(tiles.heat[k][pix], tiles.tags[k][pix], centres[q])
        _fold(q, scores, pix, best, flat)


def _fold_tiles(tiles: MapTiles, k: int, qid: np.ndarray, ids: np.ndarray,
                centres: np.ndarray, best: np.ndarray, flat: np.ndarray) -> None:
    """Fold (query, tile) pairs: tiles whose every tag is within 0.5 of the centre (penalty 0
    at every pixel, scores = heatmap values exactly) contribute their first maximum directly;
    the others are evaluated pixel by pixel."""
    lo, hi = tiles.tile_boxes(k, ids)
    c = bound_frame(centres[qid])
    reach = np.maximum(np.abs(c - lo), np.abs(c - hi))
    direct = np.sqrt(row_sum_sq(reach) * frame_metric(tiles.dim)) * (1.0 + 1e-5) < 0.5
    _fold(qid[direct], tiles.max[k][ids[direct]], tiles.rep[k][ids[direct]], best, flat)
    _fold_pixels(tiles, k, qid[~direct], ids[~direct], centres, best, flat)


def _raise(lower: np.ndarray, qid: np.ndarray, values: np.ndarray, beaten: np.ndarray,
           stop_above: np.ndarray | None) -> np.ndarray:
    """Raise per-query lower bounds to achieved scores; mark and drop queries above stop."""
    np.maximum.at(lower, qid, values)
    if stop_above is None:
        return np.ones(len(qid), bool)
    beaten |= lower > stop_above
    return ~beaten[qid]


def _best_over(
    tiles: MapTiles, k: int, centres: np.ndarray, lower: np.ndarray, live: bool,
    stop_above: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best score >= ``lower`` and its first raster index over the live or dead tiles of k.

    Returns:
        best: (Q,) float32, -inf where no pixel reaches ``lower``; flat: (Q,) int64;
        beaten: (Q,) bool, True where a score above ``stop_above`` was seen (those queries
        are dropped early and their best / flat are incomplete).
    """
    blocks = tiles.blocks(live)
    lower, beaten = lower.copy(), np.zeros(len(centres), bool)
    block_max = blocks.max[k]
    order = np.argsort(-block_max, kind="stable")
    count = np.searchsorted(-block_max[order], -lower, side="right")
    qid = np.repeat(np.arange(len(centres)), count)
    ids = order[np.arange(len(qid)) - (np.cumsum(count) - count)[qid]]
    reps = penalised_scores(block_max[ids], tiles.tags[k][blocks.rep[k][ids]], centres[qid])
    go = _raise(lower, qid, reps, beaten, stop_above)
    frames, metric = bound_frame(centres[qid]), frame_metric(tiles.dim)
    dist = tag_distance_bound(blocks.lo[k][ids], blocks.hi[k][ids], frames, metric)
    go &= block_max[ids] - _penalty(dist) >= lower[qid]
    if tiles.dim == 2 and go.sum() * blocks.members.shape[1] > TIGHTEN:
        lo, hi = tiles.tight_block_boxes()
        sel = np.flatnonzero(go)
        dist = tag_distance_bound(lo[k][ids[sel]], hi[k][ids[sel]], frames[sel], metric)
        go[sel] = block_max[ids[sel]] - _penalty(dist) >= lower[qid[sel]]
    qid = np.repeat(qid[go], blocks.members.shape[1])
    ids = blocks.members[ids[go]].ravel()
    ids_safe = np.maximum(ids, 0)
    tile_max = tiles.max[k][ids_safe]
    go = (ids >= 0) & ((tile_max > 0) == live) & (tile_max >= lower[qid])
    qid, ids = qid[go], ids[go]
    go = _raise(lower, qid, _rep_scores(tiles, k, ids, centres[qid]), beaten, stop_above)
    if stop_above is not None:  # dead tiles: values are flat, their tags decide; sample more
        pix = tiles.witness(ids)
        scores = penalised_scores(tiles.heat[k][pix], tiles.tags[k][pix], centres[qid])
        go &= _raise(lower, qid, scores, beaten, stop_above)
    go &= tiles.max[k][ids] >= lower[qid]
    qid, ids = qid[go], ids[go]
    go = _reaches(tiles, k, ids, centres[qid], lower[qid])
    best = np.full(len(centres), -np.inf, np.float32)
    flat = np.full(len(centres), _NO_PIXEL, np.int64)
    _fold_tiles(tiles, k, qid[go], ids[go], centres, best, flat)
    return best, flat, beaten


def _search_joint(tiles: MapTiles, k: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat index, value) answers for the queries of joint type k; value 0 = nothing to add."""
    live = np.flatnonzero(tiles.max[k] > 0)
    if len(live) == 0:
        return np.zeros(len(centres), np.int64), np.zeros(len(centres), np.float32)
    probe = live[np.argsort(-tiles.max[k][live], kind="stable")[:PROBE]]
    lower = _rep_scores(tiles, k, probe[None, :], centres[:, None, :]).max(axis=1)
    best, flat, _ = _best_over(tiles, k, centres, lower, live=True)
    vals = tiles.heat[k][flat]
    check = np.flatnonzero((vals > 0) & (best <= 0))
    if len(check) and len(live) < tiles.max.shape[1]:
        sub_best, sub_flat = best[check], flat[check]
        dead_best, dead_flat, beaten = _best_over(
            tiles, k, centres[check], sub_best, live=False, stop_above=sub_best
        )
        beaten |= (dead_best > sub_best) | ((dead_best == sub_best) & (dead_flat < sub_flat))
        vals[check[beaten]] = 0.0
    return flat, np.maximum(vals, np.float32(0.0))


def penalised_argmax(
    tiles: MapTiles, centres: np.ndarray, joints: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """First raster-order maximum of ``heatmap_k - round(||tag_k - c||)`` for many (c, k).

    Args:
        tiles: ``MapTiles`` of the (K, h, w) heatmaps and (K, h, w, L) tags.
        centres: (Q, L) float32 mean tags c.
        joints: (Q,) int joint type k of each query.
        chunk: queries searched together (bounds memory).

    Returns:
        flat: (Q,) int64 raster index y * w + x; vals: (Q,) float32 heatmap value there.
        Equal to ``penalised_argmax_dense`` wherever its value is > 0; elsewhere vals is 0 and
        flat unspecified.
    """
    flat = np.zeros(len(joints), np.int64)
    vals = np.zeros(len(joints), np.float32)
    centres = np.ascontiguousarray(centres, dtype=np.float32)
    for k in np.unique(joints):
        sel = np.flatnonzero(joints == k)
        for s in range(0, len(sel), chunk):
            part = sel[s : s + chunk]
            flat[part], vals[part] = _search_joint(tiles, int(k), centres[part])
    return flat, vals
