"""Tag-space index of the live tiles (max > 0) of one image, for the refine search.

Entries are live tiles, or the two halves of a live tile whose tag box is wider than one
penalty unit (a tile on the boundary between two people: each half then holds one person's
tags). An entry has a tag box in the bound frame and the maximum heatmap value of its pixels;
the pixels of a tile are those of its entries (a half of a live tile may have values <= 0: it
stays an entry, as the live search must cover every pixel of the live tiles).

Along each bound-frame axis a, |t_a - c_a| <= distance(t, c) / sqrt(frame metric), so the
entries whose tags may lie within a distance r of c are, among the entries narrow along a
(half-width <= HALF_WIDTH) sorted per joint by their box centre on a, one ``searchsorted``
window; the entries wide along a are listed per joint by decreasing maximum. Each query uses
the axis that gives it the fewest candidates (for L = 2: t0 + t1 separates people along the
diagonal of the tag plane, t1 - t0 separates tags far from it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bupose.decoders.bounds import diameter
from bupose.decoders.tiles import Boxes, MapTiles

HALF_WIDTH = 0.5
PROBE = 4  # largest tiles per joint kept for the lower bounds


@dataclass(frozen=True)
class Entries:
    """Index entries: tile (E,) global ids, vmax (E,) float32 maximum value, boxes (E,)."""

    gid: np.ndarray
    vmax: np.ndarray
    boxes: Boxes

    def take(self, idx: np.ndarray) -> Entries:
        return Entries(self.gid[idx], self.vmax[idx], self.boxes.take(idx))


@dataclass(frozen=True)
class AxisIndex:
    """The entries arranged along one bound-frame axis.

    Attributes:
        narrow: (N,) entry ids narrow along the axis, sorted by (joint, centre); key: (N,)
            float64 their centres; start: (K + 1,) joint segments; hw: (K,) float64 largest
            half-width per joint.
        wide: (W,) the other entry ids sorted by (joint, -vmax); wide_neg: (W,) float32 -vmax;
            wide_start: (K + 1,) joint segments.
    """

    narrow: np.ndarray
    key: np.ndarray
    start: np.ndarray
    hw: np.ndarray
    wide: np.ndarray
    wide_neg: np.ndarray
    wide_start: np.ndarray


@dataclass(frozen=True)
class LiveIndex:
    """Attributes:
        entries: all entries; axes: one AxisIndex per bound-frame axis;
        top: (K, PROBE) global ids of each joint's largest tiles (-1 pad);
        joint_max: (K,) float32 largest heatmap value per joint.
    """

    entries: Entries
    axes: tuple[AxisIndex, ...]
    top: np.ndarray
    joint_max: np.ndarray


def _concat(parts: list[Entries]) -> Entries:
    boxes = Boxes(
        tuple(np.concatenate(cols) for cols in zip(*(p.boxes.lo for p in parts))),
        tuple(np.concatenate(cols) for cols in zip(*(p.boxes.hi for p in parts))),
        parts[0].boxes.metric,
    )
    return Entries(np.concatenate([p.gid for p in parts]),
                   np.concatenate([p.vmax for p in parts]), boxes)


def _entries(tiles: MapTiles, live: np.ndarray) -> Entries:
    """Whole live tiles, except that a tile whose box has a diameter > 1 (tag units) gives its
    two halves instead (empty halves dropped)."""
    whole = Entries(live, tiles.max_flat[live], tiles.boxes(live))
    wide = diameter(whole.boxes) > 1.0
    if not wide.any():
        return whole
    split = live[wide]
    first, second, vh = tiles.halves(split)
    parts = [whole.take(np.flatnonzero(~wide))]
    for half, boxes in enumerate((first, second)):
        keep = np.flatnonzero(vh[:, half] > -np.inf)
        parts.append(Entries(split[keep], vh[keep, half], boxes.take(keep)))
    return _concat(parts)


def _axis(entries: Entries, joint: np.ndarray, axis: int, k: int) -> AxisIndex:
    lo, hi = entries.boxes.lo[axis], entries.boxes.hi[axis]
    key, hw = (lo + hi) / 2, (hi - lo) / 2
    narrow = np.flatnonzero(hw <= HALF_WIDTH)
    narrow = narrow[np.lexsort((key[narrow], joint[narrow]))]
    n_hw = np.zeros(k)
    np.maximum.at(n_hw, joint[narrow], hw[narrow])
    wide = np.flatnonzero(hw > HALF_WIDTH)
    wide = wide[np.lexsort((-entries.vmax[wide], joint[wide]))]
    return AxisIndex(narrow, key[narrow], np.searchsorted(joint[narrow], np.arange(k + 1)),
                     n_hw, wide, -entries.vmax[wide],
                     np.searchsorted(joint[wide], np.arange(k + 1)))


def _top_tiles(tiles: MapTiles, live: np.ndarray) -> np.ndarray:
    """(K, PROBE) global ids of each joint's largest live tiles, -1 padded."""
    k, t = tiles.max.shape
    joint, vmax = live // t, tiles.max_flat[live]
    order = np.lexsort((-vmax, joint))
    start = np.searchsorted(joint[order], np.arange(k + 1))
    rank = np.arange(len(live)) - start[joint[order]]
    top = np.full((k, PROBE), -1, np.int64)
    keep = rank < PROBE
    top[joint[order][keep], rank[keep]] = live[order][keep]
    return top


def live_index(tiles: MapTiles) -> LiveIndex:
    """Build (once per MapTiles) the LiveIndex of its live tiles."""
    cached = tiles.cache.get("live_index")
    if isinstance(cached, LiveIndex):
        return cached
    k, t = tiles.max.shape
    live = np.flatnonzero(tiles.max_flat > 0)
    tiles.keep(live)
    entries = _entries(tiles, live)
    joint = entries.gid // t
    axes = tuple(_axis(entries, joint, a, k) for a in range(tiles.dim))
    index = LiveIndex(entries, axes, _top_tiles(tiles, live), tiles.max.max(axis=1))
    tiles.cache["live_index"] = index
    return index
