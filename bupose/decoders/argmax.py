"""Exact, fast search for the official refine's maximum: ``heatmap_k - round(||tag_k - c||)``.

The official refine evaluates this float32 score on the full map of joint type k for every
person (centre c = the person's mean tag) and takes the first maximum in raster order; only its
heatmap value and, when that value is > 0, its position are used. ``penalised_argmax`` returns
the same answers for all queries (c, k) of an image at once, branch and bound over tiles grouped by
their tags (compiled: ``tilebox.py``, ``taggrid.py``, ``kernels.py``), evaluating pixels
with the official float32 expression.
"""

from __future__ import annotations

import numba
import numpy as np

from bupose.decoders import kernels
from bupose.decoders.taggrid import TagGrid, build_grid
from bupose.decoders.tilebox import tile_halves
from bupose.decoders.tiles import MapTiles
from bupose.errors import DataError

__all__ = ["penalised_argmax", "penalised_argmax_dense", "penalised_scores"]

def penalised_scores(heat: np.ndarray, tags: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The official refine score ``heat - round(||tags - centre||)``, float32 throughout.

    Args:
        heat: (...,) float32 heatmap values.
        tags: (..., L) float32 tag vectors at the same pixels.
        centre: (..., L) float32 mean tags, broadcast against ``tags``.

    The same float32 operations as the official numpy expression (difference, square, sum
    over L, square root, round half to even, subtraction).
    """
    sq = tags - centre
    sq *= sq
    total = sq.sum(axis=-1)
    np.sqrt(total, out=total)
    np.round(total, out=total)
    return heat - total


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


def tag_grid(tiles: MapTiles) -> TagGrid:
    """The refine search's TagGrid of these maps (computed once, cached in ``tiles.cache``).

    Raises:
        DataError: NaN or inf in the tags.
    """
    grid = tiles.cache.get("tag_grid")
    if grid is None:
        heat = np.ascontiguousarray(tiles.heatmaps, dtype=np.float32)
        tags = np.ascontiguousarray(tiles.tagmaps, dtype=np.float32)
        lo, hi, vmax, finite = tile_halves(heat, tags, tiles.max, tiles.size,
                                           16 * numba.get_num_threads())
        if not finite:
            raise DataError("tags contain NaN/inf values; cannot decode")
        grid = tiles.cache["tag_grid"] = build_grid(lo, hi, vmax, tiles.max)
    return grid  # type: ignore[return-value]


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

    Raises:
        DataError: NaN or inf in the tags.
    """
    centres = np.ascontiguousarray(centres, dtype=np.float32).reshape(len(joints), -1)
    joints = np.asarray(joints, np.int64)
    if len(joints) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    heat = np.ascontiguousarray(tiles.heatmaps, dtype=np.float32)
    tags = np.ascontiguousarray(tiles.tagmaps, dtype=np.float32)
    if not kernels.supported(tiles.dim):
        flat, vals = penalised_argmax_dense(heat, tags, centres, joints)
        return flat, np.maximum(vals, np.float32(0))
    order = np.argsort(joints, kind="stable")  # one joint's maps and grid at a time (cache)
    flat, vals = kernels.search(heat, tags, tiles.size, tag_grid(tiles), centres[order],
                                joints[order])
    out_flat, out_vals = np.empty_like(flat), np.empty_like(vals)
    out_flat[order], out_vals[order] = flat, vals
    return out_flat, out_vals
