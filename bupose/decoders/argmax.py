"""Exact, fast search for the official refine's maximum: ``heatmap_k - round(||tag_k - c||)``.

The official refine evaluates this float32 score on the full map of joint type k for every
person (centre c = the person's mean tag) and takes the first maximum in raster order; only its
heatmap value and, when that value is > 0, its position are used. ``penalised_argmax`` returns
the same answers for all queries (c, k) of an image at once, by branch and bound over the tiles
of ``MapTiles``:

1. the best score and its first pixel over the live tiles (max > 0), ``livesearch.py``;
2. that is the official answer unless a pixel of a dead tile (max <= 0) scores higher or ties
   earlier (``lowtiles.py``, only needed when the best is <= 0); dead pixels have values
   <= 0, so such an answer is not used by refine: those queries get value 0.

Bounds (``bounds.py``): a tile or box of tags cannot score above ``max value - round(lower
bound of the tag distance)``, the distance bound shrunk by 1e-5 relative to cover float32
rounding; the scores that decide are always computed with the official float32 expression.
"""

from __future__ import annotations

import numpy as np

from bupose.decoders.bounds import NO_PIXEL, penalised_scores
from bupose.decoders.livesearch import Queries, search_live
from bupose.decoders.lowtiles import dead_beats
from bupose.decoders.tiles import MapTiles

__all__ = ["penalised_argmax", "penalised_argmax_dense", "penalised_scores"]


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
    qs = Queries.make(centres, joints)
    if len(qs.joints) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    search_live(tiles, qs)
    found = qs.flat != NO_PIXEL
    vals = np.where(found, tiles.heat_flat[np.where(found, qs.flat, 0)], np.float32(0))
    check = np.flatnonzero((vals > 0) & (qs.best <= 0))
    if len(check):
        vals[check[dead_beats(tiles, qs, check)]] = 0
    flat = np.where(found, qs.flat - qs.joints * (tiles.h * tiles.w), 0)
    return flat, np.maximum(vals, np.float32(0)).astype(np.float32)
