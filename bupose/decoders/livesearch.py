"""The live part of the refine search: exact best score and first pixel over the live tiles.

For all queries (centre c, joint k) at once (index: ``liveindex.py``, bounds: ``bounds.py``):

1. lower bound per query: exact scores at the maximum pixel of the entries that may cost no
   penalty (window of radius 0.5), of the entries nearest along the query's axis and of the
   joint's largest tiles;
2. candidates: the entries inside the window whose radius that bound allows (a pixel with
   penalty n > ``max_penalty`` scores below it) and the wide entries with a large enough
   maximum, kept when their box bound reaches the query's best score;
3. best first: a few rounds of evaluating each query's most promising candidate, which raises
   its best score and drops candidates; then the rest is evaluated: a tile whose first
   maximum costs no penalty has it as its answer, others are evaluated pixel by pixel with
   the official expression. Ties go to the smallest pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bupose.decoders.bounds import (
    NO_PIXEL,
    SHRINK,
    fold,
    groups,
    max_penalty,
    penalised_scores,
    ragged,
    tile_best,
    upper_score,
)
from bupose.decoders.liveindex import PROBE, AxisIndex, LiveIndex, live_index
from bupose.decoders.tiles import MapTiles, frame_metric, to_frame

NEAR = 2  # entries on each side of a query's key scored for the lower bounds
ROUNDS = 3  # best-first evaluations per query before the rest
CHUNK = 1 << 18  # (query, entry) pairs handled together


@dataclass
class Queries:
    """Queries of one search and their running answers.

    Attributes:
        joints: (Q,) int64; c32: (Q, L) float32 centres; frame: L float64 columns of c in the
        bound frame; best: (Q,) float32 best exact score so far (-inf: none); flat: (Q,)
        int64 global id of the first pixel reaching it.
    """

    joints: np.ndarray
    c32: np.ndarray
    frame: tuple[np.ndarray, ...]
    best: np.ndarray
    flat: np.ndarray

    @classmethod
    def make(cls, centres: np.ndarray, joints: np.ndarray) -> Queries:
        c32 = np.ascontiguousarray(centres, dtype=np.float32).reshape(len(joints), -1)
        frame = to_frame(tuple(c32[:, j].astype(np.float64) for j in range(c32.shape[1])))
        return cls(np.asarray(joints, np.int64), c32, frame,
                   np.full(len(joints), -np.inf, np.float32), np.full(len(joints), NO_PIXEL))


def _window(ax: AxisIndex, joints: np.ndarray, key: np.ndarray, reach: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts) into ``ax.narrow`` of the entries whose centre is within ``reach`` +
    half-width of ``key`` (the joint's whole segment when unbounded)."""
    starts, ends = ax.start[joints], ax.start[joints + 1]
    reach = reach + ax.hw[joints] + 1e-9 * (1.0 + np.abs(key))
    with np.errstate(invalid="ignore"):
        low, high = key - reach, key + reach
    bounded = np.flatnonzero(np.isfinite(low) & np.isfinite(high))
    first, last = starts.copy(), ends.copy()
    for k in np.unique(joints[bounded]):
        sel = bounded[joints[bounded] == k]
        seg = ax.key[ax.start[k] : ax.start[k + 1]]
        first[sel] = ax.start[k] + np.searchsorted(seg, low[sel])
        last[sel] = ax.start[k] + np.searchsorted(seg, high[sel], side="right")
    return first, last - first


def _position(ax: AxisIndex, joints: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Index in ``ax.narrow`` where each key would be inserted in its joint's segment."""
    pos = ax.start[joints].copy()
    finite = np.flatnonzero(np.isfinite(key))
    for k in np.unique(joints[finite]):
        sel = finite[joints[finite] == k]
        pos[sel] += np.searchsorted(ax.key[ax.start[k] : ax.start[k + 1]], key[sel])
    return pos


def _wide_counts(ax: AxisIndex, joints: np.ndarray, best: np.ndarray) -> np.ndarray:
    """(Q,) number of wide entries of each query's joint with max >= its best score."""
    counts = np.zeros(len(joints), np.int64)
    for k in np.unique(joints):
        sel = np.flatnonzero(joints == k)
        seg = ax.wide_neg[ax.wide_start[k] : ax.wide_start[k + 1]]
        counts[sel] = np.searchsorted(seg, -best[sel], side="right")
    return counts


@dataclass
class _Plan:
    """Per query: the axis used, and (starts, counts) of its narrow and wide entries."""

    axis: np.ndarray
    narrow: tuple[np.ndarray, np.ndarray]
    wide: tuple[np.ndarray, np.ndarray]


def _plan(index: LiveIndex, qs: Queries, radius: np.ndarray, scale: float,
          wide: bool = True) -> _Plan:
    """Choose per query the axis with the fewest candidates within tag distance ``radius``
    (narrow entries in the window, and wide entries with max >= best unless ``wide`` is
    False; the plan then lists no wide entries)."""
    options = []
    for a, ax in enumerate(index.axes):
        first, count = _window(ax, qs.joints, qs.frame[a], radius * scale)
        counts = _wide_counts(ax, qs.joints, qs.best) if wide else np.zeros_like(count)
        options.append((first, count, ax.wide_start[qs.joints], counts))
    total = np.stack([o[1] + o[3] for o in options])
    axis = np.argmin(total, axis=0)
    pick = [np.choose(axis, [o[i] for o in options]) for i in range(4)]
    return _Plan(axis, (pick[0], pick[1]), (pick[2], pick[3]))


def _fold_reps(tiles: MapTiles, qs: Queries, q: np.ndarray, gid: np.ndarray) -> None:
    """Fold the exact scores at the maximum pixels of tiles ``gid`` (q non-decreasing)."""
    pix = tiles.reps(gid)
    scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[q])
    fold(q, scores, pix, qs.best, qs.flat)


def _evaluate(tiles: MapTiles, qs: Queries, q: np.ndarray, gid: np.ndarray) -> None:
    """Fold the exact best pixel of each (query, tile) pair (q non-decreasing).

    When the score at a tile's first maximum equals the tile's maximum m, that pixel is the
    tile's answer: no score exceeds the value (penalties are >= 0), and a score of m needs a
    value of m and penalty 0, first reached there. Other tiles are evaluated pixel by pixel.
    """
    pix = tiles.reps(gid)
    scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[q])
    done = scores == tiles.max_flat[gid]
    fold(q[done], scores[done], pix[done], qs.best, qs.flat)
    q, gid = q[~done], gid[~done]
    step = max(1, CHUNK // tiles.size**2)
    for s in range(0, len(q), step):
        scores, pix = tile_best(tiles, gid[s : s + step], qs.c32[q[s : s + step]])
        fold(q[s : s + step], scores, pix, qs.best, qs.flat)


def _entry_ids(index: LiveIndex, plan: _Plan, sel: np.ndarray, wide: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    """(query, entry id) pairs of queries ``sel`` from their axis's narrow or wide list."""
    starts, counts = plan.wide if wide else plan.narrow
    qs_, es = [], []
    for a, ax in enumerate(index.axes):
        part = sel[plan.axis[sel] == a]
        q, pos = ragged(starts[part], counts[part])
        qs_.append(part[q])
        es.append((ax.wide if wide else ax.narrow)[pos])
    return np.concatenate(qs_), np.concatenate(es)


def _lower_bounds(tiles: MapTiles, index: LiveIndex, qs: Queries, scale: float) -> None:
    """Scores at the maxima of the entries that may cost no penalty, of the entries nearest
    along the query's axis and of each joint's largest tiles."""
    plan = _plan(index, qs, np.full(len(qs.joints), 0.5 * (1.0 + SHRINK)), scale, wide=False)
    first, count = np.zeros(len(qs.joints), np.int64), np.zeros(len(qs.joints), np.int64)
    for a, ax in enumerate(index.axes):
        part = np.flatnonzero(plan.axis == a)
        pos = _position(ax, qs.joints[part], qs.frame[a][part])
        first[part] = np.maximum(pos - NEAR, ax.start[qs.joints[part]])
        count[part] = np.minimum(pos + NEAR, ax.start[qs.joints[part] + 1]) - first[part]
    near = _Plan(plan.axis, (first, count), plan.wide)
    for sel in groups(plan.narrow[1] + count, CHUNK):
        q1, e1 = _entry_ids(index, plan, sel, wide=False)
        q2, e2 = _entry_ids(index, near, sel, wide=False)
        q, e = np.concatenate([q1, q2]), np.concatenate([e1, e2])
        order = np.argsort(q, kind="stable")
        _fold_reps(tiles, qs, q[order], index.entries.gid[e[order]])
    open_ = np.flatnonzero(max_penalty(index.joint_max[qs.joints], qs.best) > 0)
    top = index.top[qs.joints[open_]].ravel()
    q = np.repeat(open_, PROBE)[top >= 0]
    _fold_reps(tiles, qs, q, top[top >= 0])


def _reaching(index: LiveIndex, qs: Queries, q: np.ndarray, e: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, entry) pairs -> (query, tile, upper bound) of those reaching the best score."""
    keep = index.entries.vmax[e] >= qs.best[q]
    q, e = q[keep], e[keep]
    entries = index.entries.take(e)
    ub = upper_score(entries.vmax, entries.boxes, tuple(c[q] for c in qs.frame))
    keep = ub >= qs.best[q]
    return q[keep], entries.gid[keep], ub[keep]


def _best_first(tiles: MapTiles, qs: Queries, q: np.ndarray, gid: np.ndarray,
                ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A few rounds of: evaluate each query's candidate with the highest bound (raising its
    best score), drop the candidates that can no longer reach it. Returns the rest."""
    for _ in range(ROUNDS):
        keep = ub >= qs.best[q]
        q, gid, ub = q[keep], gid[keep], ub[keep]
        if len(q) == 0:
            break
        starts = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        top = np.maximum.reduceat(ub, starts)
        is_top = ub == np.repeat(top, np.diff(np.r_[starts, len(q)]))
        pick = np.minimum.reduceat(np.where(is_top, np.arange(len(q)), len(q)), starts)
        _evaluate(tiles, qs, q[pick], gid[pick])
        rest = np.ones(len(q), bool)
        rest[pick] = False
        q, gid, ub = q[rest], gid[rest], ub[rest]
    keep = ub >= qs.best[q]
    return q[keep], gid[keep]


def search_live(tiles: MapTiles, qs: Queries) -> None:
    """Exact best score and first pixel over the live tiles, in place in ``qs``."""
    index = live_index(tiles)
    scale = 1.0 / np.sqrt(frame_metric(tiles.dim))
    _lower_bounds(tiles, index, qs, scale)
    n = max_penalty(index.joint_max[qs.joints], qs.best)
    plan = _plan(index, qs, (n + 0.5) * (1.0 + SHRINK), scale)
    for sel in groups(plan.narrow[1] + plan.wide[1], CHUNK):
        parts = [_reaching(index, qs, *_entry_ids(index, plan, sel, wide))
                 for wide in (False, True)]
        q, gid, ub = (np.concatenate(x) for x in zip(*parts))
        order = np.argsort(q, kind="stable")
        q, gid = _best_first(tiles, qs, q[order], gid[order], ub[order])
        _evaluate(tiles, qs, q, gid)
