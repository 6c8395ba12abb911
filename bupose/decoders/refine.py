"""Sub-pixel adjustment, person scores and refinement of grouped people (official semantics).

* ``adjust``: every found joint (value > 0) at integer pixel (x, y) moves 0.25 px toward the
  larger of its two horizontal neighbours (left on equality), the same vertically, then +0.5.
* ``person_scores``: mean value over all K joints (missing = 0), taken after adjust and before
  refine, as in the official ``parse``.
* ``refine``: for each person, prev_tag = float32 mean of the tag maps at its found joints
  (integer-cast positions, joint index order); for each missing joint type k the official
  picks the first (raster order) argmax over all pixels of
  ``heatmap_k - round(||tag_k - prev_tag||)`` (float32) and adds it when its heatmap value is
  > 0, at (x + 0.5, y + 0.5) plus the quarter-offset rule; refined joints keep zero tags.

The official refine evaluates full maps for every person and joint (70-99 % of its run time).
``argmax.penalised_argmax`` answers all (person, missing joint) queries of an image at once,
bit for bit, by branch and bound over 8x8 tiles grouped by their tags (compiled with numba,
``kernels.py``);
``refine(..., dense=True)`` runs the full-map reference instead.
"""

from __future__ import annotations

import numpy as np

from bupose.decoders.argmax import penalised_argmax, penalised_argmax_dense
from bupose.decoders.tiles import MapTiles


def _quarter_offsets(
    heat: np.ndarray, joint: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """+-0.25 toward the larger neighbour (official rule) at integer pixels of joint maps."""
    h, w = heat.shape[1:]
    right = heat[joint, y, np.minimum(x + 1, w - 1)] > heat[joint, y, np.maximum(x - 1, 0)]
    down = heat[joint, np.minimum(y + 1, h - 1), x] > heat[joint, np.maximum(y - 1, 0), x]
    return np.where(right, 0.25, -0.25), np.where(down, 0.25, -0.25)


def adjust(grouped: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """Quarter-pixel adjustment and +0.5 for every joint with value > 0.

    Args:
        grouped: (P, K, 3 + L) float32 people in map pixels (integer positions).
        heatmaps: (K, h, w) float32 aggregated heatmaps (before NMS).

    Returns:
        (P, K, 3 + L) float32 copy with adjusted x, y.
    """
    out = grouped.copy()
    person, joint = np.nonzero(out[:, :, 2] > 0)
    if len(person) == 0:
        return out
    xf = out[person, joint, 0].astype(np.float64)
    yf = out[person, joint, 1].astype(np.float64)
    dx, dy = _quarter_offsets(heatmaps, joint, xf.astype(np.int64), yf.astype(np.int64))
    out[person, joint, 0] = xf + dx + 0.5
    out[person, joint, 1] = yf + dy + 0.5
    return out


def person_scores(grouped: np.ndarray) -> np.ndarray:
    """(P, K, 3 + L) -> (P,) float32 mean joint value over K (missing joints count 0).

    One ``np.mean`` over axis 1: numpy reduces each row with the same pairwise summation as
    the official per-person ``np.mean`` (checked bit for bit in the tests)."""
    if len(grouped) == 0:
        return np.zeros(0, np.float32)
    return np.mean(grouped[:, :, 2], axis=1).astype(np.float32)


def person_mean_tags(grouped: np.ndarray, tags: np.ndarray) -> np.ndarray:
    """Float32 mean tag of each person's found joints, read from the tag maps.

    Args:
        grouped: (P, K, 3 + L) float32; a joint is found when its value is > 0.
        tags: (K, h, w, L) float32.

    Returns:
        (P, L) float32; NaN rows for people without found joints.
    """
    found = grouped[:, :, 2] > 0
    person, joint = np.nonzero(found)
    xy = grouped[person, joint, :2].astype(np.int32)
    picked = tags[joint, xy[:, 1], xy[:, 0]]
    out = np.full((len(grouped), tags.shape[3]), np.nan, np.float32)
    counts = found.sum(axis=1)
    starts = np.cumsum(counts) - counts
    for n in np.unique(counts[counts > 0]):
        # people with n found joints at once: (G, n, L) reduced over axis 1 sums in the same
        # order as the official np.mean of each (n, L) array over axis 0 (tested bit for bit)
        group = np.flatnonzero(counts == n)
        out[group] = np.mean(picked[starts[group][:, None] + np.arange(n)], axis=1)
    return out


def refine(
    grouped: np.ndarray,
    heatmaps: np.ndarray,
    tags: np.ndarray,
    tiles: MapTiles | None = None,
    dense: bool = False,
) -> np.ndarray:
    """Fill missing joints (value == 0) from the full maps (official ``refine``).

    Args:
        grouped: (P, K, 3 + L) float32 people after ``adjust`` (or without it).
        heatmaps: (K, h, w) float32 aggregated heatmaps.
        tags: (K, h, w, L) float32 tag maps.
        tiles: ``MapTiles`` of these maps (built when not given).
        dense: use the full-map reference search instead (slow; for tests).

    Returns:
        (P, K, 3 + L) float32 copy; added joints get x, y, val and zero tags. People without a
        found joint (impossible after grouping) are left unchanged.
    """
    out = grouped.copy()
    if len(out) == 0:
        return out
    prev = person_mean_tags(out, tags)
    missing = (out[:, :, 2] == 0) & ~np.isnan(prev[:, :1])
    person, joint = np.nonzero(missing)
    if len(person) == 0:
        return out
    if dense:
        flat, vals = penalised_argmax_dense(heatmaps, tags, prev[person], joint)
    else:
        flat, vals = penalised_argmax(tiles or MapTiles(heatmaps, tags), prev[person], joint)
    add = vals > 0
    person, joint, flat, vals = person[add], joint[add], flat[add], vals[add]
    w = heatmaps.shape[2]
    x, y = flat % w, flat // w
    dx, dy = _quarter_offsets(heatmaps, joint, x, y)
    out[person, joint, 0] = x + 0.5 + dx
    out[person, joint, 1] = y + 0.5 + dy
    out[person, joint, 2] = vals
    return out
