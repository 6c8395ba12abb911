"""Groups of tile entries by their tags (compiled, numba), for the refine search.

Per joint, the entries of ``tilebox.tile_halves`` are binned by their box centre on a grid
over tag components 0 and 1 (cells at least one tag unit wide, a counting sort; entries wider
than a cell go to a group of their own), live entries (maximum > 0) and dead ones apart, live
groups first. The entries are copied in group order (components as rows, so that bounds over
a group's entries are one vectorised loop), and each group has the maximum and the box of its
entries.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from bupose.decoders.tilebox import JIT


class TagGrid(NamedTuple):
    """Entries and groups of one image (E = 2T entry slots, G <= E groups per joint).

    Attributes:
        tile: (K, E) int32 tile id of each entry, in group order; vmax: (K, E) float32;
        lo, hi: (K, L, E) float32 entry boxes (components as rows);
        start: (K, E + 1) int64 group g holds entries start[k, g] .. start[k, g + 1];
        gmax: (K, E) float32, glo, ghi: (K, L, E) float32 group maxima and boxes;
        nlive, ngroups: (K,) int64 live groups (the first ones) and all groups per joint;
        tmax: (K, T) float32 tile maxima.
    """

    tile: np.ndarray
    vmax: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    start: np.ndarray
    gmax: np.ndarray
    glo: np.ndarray
    ghi: np.ndarray
    nlive: np.ndarray
    ngroups: np.ndarray
    tmax: np.ndarray


@numba.njit(**JIT)
def _keys(lo, hi, vmax):  # noqa: ANN001, ANN202
    """Sort key of each entry of one joint and the numbers of keys (all, live): grid cells
    0..C-1, then C for the entries wider than a cell, for live entries; the same plus C + 1
    for dead ones; -1 for empty entries."""
    n, dim = lo.shape
    axes = min(dim, 2)
    low, high = np.full(2, np.inf), np.full(2, -np.inf)
    centre = np.zeros((n, 2))
    for e in range(n):
        if lo[e, 0] <= hi[e, 0]:
            for a in range(axes):
                centre[e, a] = (np.float64(lo[e, a]) + np.float64(hi[e, a])) / 2
                low[a], high[a] = min(low[a], centre[e, a]), max(high[a], centre[e, a])
    span = np.maximum(high - low, 0.0)
    cell = 1.0
    while (np.floor(span[0] / cell) + 1) * (np.floor(span[1] / cell) + 1 if axes == 2
                                             else 1.0) > 2 * n:
        cell *= 2.0
    nx = int(np.floor(span[0] / cell)) + 1
    ny = int(np.floor(span[1] / cell)) + 1 if axes == 2 else 1
    cells = nx * ny + 1
    key = np.full(n, -1, np.int64)
    for e in range(n):
        if lo[e, 0] > hi[e, 0]:
            continue
        width = 0.0
        for j in range(dim):
            width = max(width, np.float64(hi[e, j]) - np.float64(lo[e, j]))
        if width > cell:
            key[e] = cells - 1
        else:
            ix = min(int((centre[e, 0] - low[0]) / cell), nx - 1)
            iy = min(int((centre[e, 1] - low[1]) / cell), ny - 1) if axes == 2 else 0
            key[e] = ix + nx * iy
        if vmax[e] <= 0:
            key[e] += cells
    return key, 2 * cells, cells


@numba.njit(**JIT)
def _fill(grid, k, key, nkeys, nlive_keys, lo, hi, vmax) -> None:
    """Counting sort of joint k's entries by key into ``grid`` (arrays of a TagGrid)."""
    tile, e_vmax, e_lo, e_hi, start, gmax, glo, ghi, nlive, ngroups = grid
    n, dim = lo.shape
    counts = np.zeros(nkeys + 1, np.int64)
    for e in range(n):
        if key[e] >= 0:
            counts[key[e] + 1] += 1
    for b in range(nkeys):
        counts[b + 1] += counts[b]
    fill = counts[:nkeys].copy()
    for e in range(n):
        if key[e] >= 0:
            i = fill[key[e]]
            fill[key[e]] += 1
            tile[k, i], e_vmax[k, i] = e // 2, vmax[e]
            for j in range(dim):
                e_lo[k, j, i], e_hi[k, j, i] = lo[e, j], hi[e, j]
    g = 0
    for b in range(nkeys):
        if counts[b + 1] == counts[b]:
            continue
        start[k, g], start[k, g + 1] = counts[b], counts[b + 1]
        gmax[k, g] = e_vmax[k, counts[b] : counts[b + 1]].max()
        for j in range(dim):
            glo[k, j, g] = e_lo[k, j, counts[b] : counts[b + 1]].min()
            ghi[k, j, g] = e_hi[k, j, counts[b] : counts[b + 1]].max()
        g += 1
        if b < nlive_keys:
            nlive[k] = g
    ngroups[k] = g


@numba.njit(**JIT)
def _build(lo, hi, vmax):  # noqa: ANN001, ANN202
    k_, n, dim = lo.shape
    grid = (np.empty((k_, n), np.int32), np.empty((k_, n), np.float32),
            np.empty((k_, dim, n), np.float32), np.empty((k_, dim, n), np.float32),
            np.zeros((k_, n + 1), np.int64), np.empty((k_, n), np.float32),
            np.empty((k_, dim, n), np.float32), np.empty((k_, dim, n), np.float32),
            np.zeros(k_, np.int64), np.zeros(k_, np.int64))
    for k in range(k_):
        key, nkeys, nlive_keys = _keys(lo[k], hi[k], vmax[k])
        _fill(grid, k, key, nkeys, nlive_keys, lo[k], hi[k], vmax[k])
    return grid


def build_grid(lo: np.ndarray, hi: np.ndarray, vmax: np.ndarray, tmax: np.ndarray) -> TagGrid:
    """TagGrid of the entries (lo, hi (K, E, L), vmax (K, E)) of ``tile_halves`` of tiles
    with maxima tmax (K, T)."""
    return TagGrid._make((*_build(lo, hi, vmax), np.ascontiguousarray(tmax, dtype=np.float32)))
