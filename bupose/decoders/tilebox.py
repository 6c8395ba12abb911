"""Tag boxes of the tiles of one image's maps (compiled, numba), for the refine search.

Tiles are S x S pixels. A tile's tags get a box (per component min and max) and, when its
diameter exceeds one tag unit (a tile across the boundary between two people), two: the
pixels on either side of the middle of its widest component, each with its own box and
heatmap maximum. These "entries" (tile halves) bound the refine score of their pixels
(``kernels.py``).
"""

from __future__ import annotations

import numba
import numpy as np

from bupose.utils.threads import quiet_numba_threads

quiet_numba_threads()  # before the first parallel loop starts a threading layer (see there)

SPLIT = 1.0  # tiles whose tag box is wider than this (tag units) are split in two halves
JIT = {"cache": True, "nogil": True}
INLINE = {**JIT, "inline": "always"}


@numba.njit(**JIT)
def _band(rows, k, y0, y1, blo, bhi, poison) -> None:
    """Column-wise min and max of rows y0..y1 of joint k into blo / bhi (W * L,); NaN or inf
    anywhere turns ``poison`` (which stays 0 otherwise) into NaN."""
    blo[:] = rows[k, y0]
    bhi[:] = rows[k, y0]
    for y in range(y0, y1):
        row = rows[k, y]
        for i in range(len(blo)):
            blo[i] = min(blo[i], row[i])
            bhi[i] = max(bhi[i], row[i])
            poison[i] += row[i] * np.float32(0)


@numba.njit(**INLINE)
def _split(heat, tags, k, y0, y1, x0, x1, lo, hi, vmax, e, box) -> None:
    """Replace entry e's whole-tile box by two halves (entries e and e + 1): the pixels whose
    widest component is at most / above the middle of the box, each with its box and
    heatmap maximum. ``box``: (2, 2, L) scratch."""
    dim = tags.shape[3]
    axis, widest = 0, -1.0
    for j in range(dim):
        if np.float64(hi[k, e, j]) - np.float64(lo[k, e, j]) > widest:
            axis, widest = j, np.float64(hi[k, e, j]) - np.float64(lo[k, e, j])
    mid = np.float32((np.float64(lo[k, e, axis]) + np.float64(hi[k, e, axis])) / 2)
    if dim == 2:
        top0, top1 = _halves2(heat, tags, k, y0, y1, x0, x1, axis, mid, box)
    else:
        box[:, 0, :], box[:, 1, :] = np.inf, -np.inf
        top0 = top1 = np.float32(-np.inf)
        for y in range(y0, y1):
            for x in range(x0, x1):
                if tags[k, y, x, axis] <= mid:
                    half, top0 = 0, max(top0, heat[k, y, x])
                else:
                    half, top1 = 1, max(top1, heat[k, y, x])
                for j in range(dim):
                    box[half, 0, j] = min(box[half, 0, j], tags[k, y, x, j])
                    box[half, 1, j] = max(box[half, 1, j], tags[k, y, x, j])
    vmax[k, e], vmax[k, e + 1] = top0, top1
    for half in range(2):
        for j in range(dim):
            lo[k, e + half, j], hi[k, e + half, j] = box[half, 0, j], box[half, 1, j]


@numba.njit(**INLINE)
def _halves2(heat, tags, k, y0, y1, x0, x1, axis, mid, box):  # noqa: ANN001, ANN202
    """``_split``'s boxes for L = 2, in registers; returns the halves' maxima."""
    inf = np.float32(np.inf)
    a0 = a1 = b0 = b1 = inf  # half 0 / 1 minima of components 0 and 1
    c0 = c1 = d0 = d1 = top0 = top1 = -inf  # maxima, and heatmap maxima
    for y in range(y0, y1):
        for x in range(x0, x1):
            t0, t1, v = tags[k, y, x, 0], tags[k, y, x, 1], heat[k, y, x]
            if (t0 if axis == 0 else t1) <= mid:
                a0, a1, c0, c1 = min(a0, t0), min(a1, t1), max(c0, t0), max(c1, t1)
                top0 = max(top0, v)
            else:
                b0, b1, d0, d1 = min(b0, t0), min(b1, t1), max(d0, t0), max(d1, t1)
                top1 = max(top1, v)
    box[0, 0, 0], box[0, 0, 1], box[0, 1, 0], box[0, 1, 1] = a0, a1, c0, c1
    box[1, 0, 0], box[1, 0, 1], box[1, 1, 0], box[1, 1, 1] = b0, b1, d0, d1
    return top0, top1


@numba.njit(**INLINE)
def _whole_box(blo, bhi, x0, x1, lo, hi, k, e) -> float:  # noqa: ANN001
    """Entry e's box from the band's column boxes x0..x1 (entry e + 1 left empty); returns
    its squared diameter."""
    dim, diameter = lo.shape[2], 0.0
    for j in range(dim):
        low, high = np.float32(np.inf), np.float32(-np.inf)
        for x in range(x0, x1):
            low, high = min(low, blo[x * dim + j]), max(high, bhi[x * dim + j])
        lo[k, e, j], hi[k, e, j] = low, high
        lo[k, e + 1, j], hi[k, e + 1, j] = np.inf, -np.inf
        diameter += (np.float64(high) - np.float64(low)) ** 2
    return diameter


@numba.njit(**JIT)
def tile_halves(heat: np.ndarray, tags: np.ndarray, tmax: np.ndarray, size: int,
                chunks: int = 1):  # noqa: ANN201
    """Entries (tile halves) of every tile.

    Args:
        heat: (K, h, w), tags: (K, h, w, L) float32; tmax: (K, T) float32 tile maxima
            (tiles in raster order); size: tile side S; chunks: parts the tiles to split
            are cut into for numba's threads.

    Returns:
        lo, hi: (K, 2T, L) float32 boxes and vmax: (K, 2T) float32 maxima of entries 2t
        and 2t + 1 of tile t (a tile that is not split has one entry: 2t + 1 has vmax -inf
        and an empty box, lo > hi); and whether every tag is finite. The whole-tile boxes
        come from one pass over the maps; the tiles to split are then shared by numba's
        threads (their number grows with the number of people).
    """
    k_, h, w, dim = tags.shape
    tw = (w + size - 1) // size
    t_ = tmax.shape[1]
    lo = np.empty((k_, 2 * t_, dim), np.float32)
    hi = np.empty((k_, 2 * t_, dim), np.float32)
    vmax = np.full((k_, 2 * t_), -np.inf, np.float32)
    rows = tags.reshape(k_, h, w * dim)
    blo, bhi = np.empty(w * dim, np.float32), np.empty(w * dim, np.float32)
    poison = np.zeros(w * dim, np.float32)
    todo = np.empty(k_ * t_, np.int64)
    n = 0
    for k in range(k_):
        for t in range(t_):
            y0, x0 = (t // tw) * size, (t % tw) * size
            if x0 == 0:
                _band(rows, k, y0, min(y0 + size, h), blo, bhi, poison)
            vmax[k, 2 * t] = tmax[k, t]
            if _whole_box(blo, bhi, x0, min(x0 + size, w), lo, hi, k, 2 * t) > SPLIT * SPLIT:
                todo[n] = k * t_ + t
                n += 1
    _split_all(heat, tags, todo[:n], tw, size, lo, hi, vmax, chunks)
    return lo, hi, vmax, bool(np.isfinite(poison.sum()))


@numba.njit(**JIT)
def _split_part(heat, tags, todo, tw, size, lo, hi, vmax, first, last) -> None:
    """Split tiles todo[first:last] (global ids k * T + t) into their two halves."""
    h, w, t_ = tags.shape[1], tags.shape[2], lo.shape[1] // 2
    box = np.empty((2, 2, tags.shape[3]), np.float32)
    for i in range(first, last):
        k, t = todo[i] // t_, todo[i] % t_
        y0, x0 = (t // tw) * size, (t % tw) * size
        _split(heat, tags, k, y0, min(y0 + size, h), x0, min(x0 + size, w), lo, hi, vmax,
               2 * t, box)


@numba.njit(cache=True, nogil=True, parallel=True)
def _split_all(heat, tags, todo, tw, size, lo, hi, vmax, chunks) -> None:
    """``_split_part`` over ``chunks`` parts of ``todo``, shared by numba's threads."""
    step = (len(todo) + chunks - 1) // chunks
    for part in numba.prange(chunks):
        _split_part(heat, tags, todo, tw, size, lo, hi, vmax, part * step,
                    min(part * step + step, len(todo)))
