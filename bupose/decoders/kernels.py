"""The exact refine search, compiled (numba).

The official refine gives each (person, missing joint k) query the first raster-order maximum
over the whole map of ``score = fl32(h - round(d32))``, with ``d32`` the float32 distance
between a pixel's tag and the person's mean tag c (``argmax.penalised_scores``). ``search``
returns the same pixel by branch and bound over the entries (tile halves, ``tilebox.py``) and
their groups (``taggrid.py``):

* an entry or group with maximum m and tag box B cannot score above ``fl32(m - penalty)``,
  penalty = round(lower bound of the distance from c to B, shrunk by 1e-5 relative to cover
  float32 rounding), nor can a pixel whose value is below the best score so far;
* best first over the live groups of joint k by that bound; in a group, the entry with the
  highest bound first (its tile's maximum pixels first), then the others that still reach the
  best score; a tile is evaluated with the official float32 expression (tag sums in numpy's
  order), ties to the smallest raster index as ``np.argmax``; until no group reaches it;
* refine only uses answers whose heatmap value is > 0. When the best live score is <= 0, a
  pixel of a dead entry (maximum <= 0) may beat it: the dead groups and entries that can
  reach it are evaluated until one does (the answer then has value 0), skipping pixels whose
  squared tag distance already rules them out (``_reach2``).

Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import numba
import numpy as np

from bupose.decoders.taggrid import TagGrid
from bupose.decoders.tilebox import JIT

SHRINK = 1e-5
PARALLEL_QUERIES = 256  # from this many queries on, numba's threads share them
_PAIRWISE_LIMIT = 128  # numpy sums up to 128 elements with one unrolled pairwise block
_INLINE = {**JIT, "inline": "always"}


@numba.njit(**_INLINE)
def _sum_squares(tags: np.ndarray, k: int, y: int, x: int, c: np.ndarray) -> np.float32:
    """float32 sum over l of (tags[k, y, x, l] - c[l])**2 in the order of numpy's ``sum``."""
    n = c.shape[0]
    if n < 8:
        d = tags[k, y, x, 0] - c[0]
        total = d * d
        for i in range(1, n):
            d = tags[k, y, x, i] - c[i]
            total += d * d
        return total
    r = np.empty(8, np.float32)
    for j in range(8):
        d = tags[k, y, x, j] - c[j]
        r[j] = d * d
    i = 8
    while i + 8 <= n:
        for j in range(8):
            d = tags[k, y, x, i + j] - c[i + j]
            r[j] += d * d
        i += 8
    total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    while i < n:
        d = tags[k, y, x, i] - c[i]
        total += d * d
        i += 1
    return total


@numba.njit(**_INLINE)
def _bounds(m, lo, hi, k, first, last, c, out, total) -> None:
    """out[i - first] = bound of item i in [first, last): value m[k, i], box lo[k, :, i] ..
    hi[k, :, i] (float64 distance, one vectorised loop per component; ``total``: float64
    scratch)."""
    n = last - first
    total[:n] = 0.0
    for j in range(c.shape[0]):
        cj = np.float64(c[j])
        for i in range(n):
            gap = max(np.float64(lo[k, j, first + i]) - cj, cj - np.float64(hi[k, j, first + i]),
                      0.0)
            total[i] += gap * gap
    for i in range(n):
        penalty = np.rint(np.sqrt(total[i]) * (1.0 - SHRINK))
        out[i] = np.float32(np.float64(m[k, first + i]) - penalty)


@numba.njit(**_INLINE)
def _pixels(heat, tags, k, t, tw, size, tmax, c, best, where, first) -> None:
    """Fold the pixels of tile t of joint k (raster order) into best[0] / where[0] (score /
    flat index so far); ``first``: those equal to the tile's maximum go first (to raise the
    best score early). A pixel whose value is below the best score cannot reach it
    (penalties are >= 0)."""
    h, w = heat.shape[1], heat.shape[2]
    ty, tx, m = t // tw, t % tw, tmax[k, t]
    top, at = best[0], where[0]
    for sweep in range(0 if first else 1, 2):
        for y in range(ty * size, min(ty * size + size, h)):
            for x in range(tx * size, min(tx * size + size, w)):
                v = heat[k, y, x]
                if (sweep == 0 and v != m) or (at >= 0 and v < top):
                    continue
                score = v - np.rint(np.sqrt(_sum_squares(tags, k, y, x, c)))
                flat = y * w + x
                if at < 0 or score > top or (score == top and flat < at):
                    top, at = score, flat
    best[0], where[0] = top, at


@numba.njit(**_INLINE)
def _reach2(m: np.float32, best: np.float32) -> float:
    """Squared tag distance beyond which a pixel with value <= m scores below ``best``
    (inf when that cannot be bounded): (n + 0.5)**2, widened by 1e-5 relative, for the
    largest penalty n with fl32(m - n) >= best."""
    gap = np.float64(m) - np.float64(best)
    if not gap < 2.0**20:
        return np.inf
    n = max(np.floor(gap), 0.0)
    if np.float32(m - np.float32(n + 1.0)) >= best:
        n += 1.0
    return ((n + 0.5) * (1.0 + SHRINK)) ** 2


@numba.njit(**_INLINE)
def _beats(heat, tags, k, t, tw, size, tmax, c, best, where) -> bool:
    """Whether a pixel of tile t of joint k beats best[0] / where[0] (a higher score, or an
    equal one earlier in raster order); pixels too far in tag space (``_reach2``) or below
    the best score are not scored."""
    h, w = heat.shape[1], heat.shape[2]
    ty, tx = t // tw, t % tw
    far = _reach2(tmax[k, t], best[0])
    for y in range(ty * size, min(ty * size + size, h)):
        for x in range(tx * size, min(tx * size + size, w)):
            v = heat[k, y, x]
            if v < best[0]:
                continue
            total = _sum_squares(tags, k, y, x, c)
            if total > far:
                continue
            score = v - np.rint(np.sqrt(total))
            if score > best[0] or (score == best[0] and y * w + x < where[0]):
                return True
    return False


@numba.njit(**JIT)
def _group(heat, tags, k, g, grid, tw, size, c, best, where, bound, total) -> None:
    """Evaluate the entries of live group g that reach the best score, the one with the
    highest bound first."""
    first, last = grid.start[k, g], grid.start[k, g + 1]
    _bounds(grid.vmax, grid.lo, grid.hi, k, first, last, c, bound, total)
    top = -1
    for i in range(last - first):
        if top < 0 or bound[i] > bound[top]:
            top = i
    if where[0] >= 0 and bound[top] < best[0]:
        top = -1
    if top < 0:
        return
    _pixels(heat, tags, k, grid.tile[k, first + top], tw, size, grid.tmax, c, best, where,
            True)
    for i in range(last - first):
        if i != top and bound[i] >= best[0] and grid.vmax[k, first + i] >= best[0]:
            _pixels(heat, tags, k, grid.tile[k, first + i], tw, size, grid.tmax, c, best,
                    where, False)


@numba.njit(**JIT)
def _dead_group(heat, tags, k, g, grid, tw, size, c, best, where, bound, total) -> bool:
    """Whether a pixel of an entry of dead group g beats the best (see ``_beats``)."""
    first, last = grid.start[k, g], grid.start[k, g + 1]
    _bounds(grid.vmax, grid.lo, grid.hi, k, first, last, c, bound, total)
    for i in range(last - first):
        if bound[i] >= best[0] and _beats(heat, tags, k, grid.tile[k, first + i], tw, size,
                                          grid.tmax, c, best, where):
            return True
    return False


@numba.njit(**JIT)
def _answer(heat, tags, k, c, grid, tw, size, gbound, done, ebound, total, best, where
            ) -> bool:
    """Best live score and pixel of one query, best first over the live groups; then whether
    it stands against the dead groups (False: the answer has a value <= 0)."""
    nlive, ngroups = grid.nlive[k], grid.ngroups[k]
    _bounds(grid.gmax, grid.glo, grid.ghi, k, 0, nlive, c, gbound, total)
    done[:nlive] = False
    best[0], where[0] = -np.inf, -1
    while True:
        g = -1
        for i in range(nlive):
            if not done[i] and (g < 0 or gbound[i] > gbound[g]):
                g = i
        if g < 0 or (where[0] >= 0 and gbound[g] < best[0]):
            break
        done[g] = True
        _group(heat, tags, k, g, grid, tw, size, c, best, where, ebound, total)
    if where[0] < 0 or heat[k, where[0] // heat.shape[2], where[0] % heat.shape[2]] <= 0:
        return False
    if best[0] > 0:
        return True
    _bounds(grid.gmax, grid.glo, grid.ghi, k, nlive, ngroups, c, gbound, total)
    for g in range(ngroups - nlive):
        if gbound[g] >= best[0] and _dead_group(heat, tags, k, nlive + g, grid, tw, size, c,
                                                best, where, ebound, total):
            return False
    return True


@numba.njit(**_INLINE)
def _has_nan(c: np.ndarray) -> bool:
    """Whether c holds a NaN (a loop: numba allocates for np.isnan(c).any())."""
    found = False
    for j in range(len(c)):
        found |= np.isnan(c[j])
    return found


@numba.njit(**JIT)
def _queries(heat, tags, size, grid, centres, joints, first, last, flat, val) -> None:
    """Answers of queries first..last into flat / val (own scratch arrays)."""
    w = heat.shape[2]
    tw = (w + size - 1) // size
    best, where = np.empty(1, np.float32), np.empty(1, np.int64)
    slots = grid.vmax.shape[1]
    gbound, ebound = np.empty(slots, np.float32), np.empty(slots, np.float32)
    done, total = np.empty(slots, np.bool_), np.empty(slots)
    for q in range(first, last):
        k, c = joints[q], centres[q]
        if _has_nan(c):  # every score is NaN: np.argmax gives the first pixel
            flat[q], val[q] = 0, max(heat[k, 0, 0], np.float32(0))
        elif _answer(heat, tags, k, c, grid, tw, size, gbound, done, ebound, total, best, where):
            flat[q], val[q] = where[0], heat[k, where[0] // w, where[0] % w]


@numba.njit(**JIT)
def _search(heat, tags, size, grid, centres, joints):  # noqa: ANN001, ANN202
    flat = np.zeros(len(joints), np.int64)
    val = np.zeros(len(joints), np.float32)
    _queries(heat, tags, size, grid, centres, joints, 0, len(joints), flat, val)
    return flat, val


@numba.njit(cache=True, nogil=True, parallel=True)
def _search_parallel(heat, tags, size, grid, centres, joints, chunks):  # noqa: ANN001, ANN202
    flat = np.zeros(len(joints), np.int64)
    val = np.zeros(len(joints), np.float32)
    step = (len(joints) + chunks - 1) // chunks
    for i in numba.prange(chunks):
        _queries(heat, tags, size, grid, centres, joints, i * step,
                 min(i * step + step, len(joints)), flat, val)
    return flat, val


def search(heat: np.ndarray, tags: np.ndarray, size: int, grid: TagGrid, centres: np.ndarray,
           joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Official refine answers of queries (centres (Q, L) float32, joints (Q,) int64).

    Args:
        heat: (K, h, w), tags: (K, h, w, L) float32 C-contiguous; size: tile side; grid:
            ``taggrid.build_grid`` of the maps' ``tilebox.tile_halves``.

    Returns:
        flat: (Q,) int64 raster index of the first maximum (unspecified when val is 0);
        val: (Q,) float32 heatmap value there when > 0, else 0.
    """
    threads = numba.get_num_threads()
    if threads > 1 and len(joints) >= PARALLEL_QUERIES:
        return _search_parallel(heat, tags, size, grid, centres, joints, 16 * threads)
    return _search(heat, tags, size, grid, centres, joints)


def supported(dim: int) -> bool:
    """Whether ``search`` reproduces numpy's float32 tag sum for tag dimension ``dim``."""
    return 1 <= dim <= _PAIRWISE_LIMIT
