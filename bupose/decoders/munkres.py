"""An assignment solver that breaks ties exactly like the official one (munkres 1.1.4).

The official HeatmapParser solves each matching step with the pure-Python ``munkres`` package
(version 1.1.4) on the cost matrix padded with 1e10 columns when there are more candidates than
people. Optimal assignments are often tied (see ``bupose.decoders.grouping``), and which of the
tied assignments that package returns decides the people. ``munkres_pairs`` runs the same
Kuhn-Munkres steps on a numpy array, with the same scan orders and the same float64
operations per element, so it returns the same assignment (compiled with numba) for
reproducing official outputs (``GroupingParams(solver="munkres")``).

Behaviour reproduced (read from munkres 1.1.4): rows are padded with zero rows to a square;
step 1 subtracts each row's minimum; step 2 stars, row by row, the first zero whose row and
column hold no star; the "find an uncovered zero" scan starts at the last primed position,
takes the first row (cyclically) holding an uncovered zero and, in it, the LAST such zero in
cyclic column order; the smallest uncovered value is added to covered rows and then subtracted
from uncovered columns; the result lists starred cells row by row.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _find_zero(c, rows, cols, i0, j0):  # noqa: ANN001, ANN202
    """Uncovered zero: first row cyclically from i0, last column cyclically from j0."""
    n = len(c)
    for di in range(n):
        i = (i0 + di) % n
        if rows[i]:
            continue
        for dj in range(n - 1, -1, -1):
            j = (j0 + dj) % n
            if not cols[j] and c[i, j] == 0:
                return i, j
    return -1, -1


@numba.njit(cache=True, nogil=True)
def _augment(marked: np.ndarray, row: int, col: int) -> None:
    """Step 5: flip stars and primes along the alternating path from the primed (row, col)."""
    n = len(marked)
    path = np.empty((2 * n + 1, 2), np.int64)
    path[0, 0], path[0, 1], count = row, col, 1
    while True:
        r = -1
        for i in range(n):
            if marked[i, path[count - 1, 1]] == 1:
                r = i
                break
        if r < 0:
            break
        path[count, 0], path[count, 1] = r, path[count - 1, 1]
        for j in range(n):
            if marked[r, j] == 2:
                path[count + 1, 0], path[count + 1, 1] = r, j
                break
        count += 2
    for p in range(count):
        r, c = path[p, 0], path[p, 1]
        marked[r, c] = 0 if marked[r, c] == 1 else 1
    for i in range(n):
        for j in range(n):
            if marked[i, j] == 2:
                marked[i, j] = 0


@numba.njit(cache=True, nogil=True)
def _smallest_uncovered(c, rows, cols) -> None:  # noqa: ANN001
    """Add the smallest uncovered value to covered rows, subtract it from uncovered columns."""
    n = len(c)
    smallest = np.inf
    for i in range(n):
        if not rows[i]:
            for j in range(n):
                if not cols[j]:
                    smallest = min(smallest, c[i, j])
    for i in range(n):
        if rows[i]:
            for j in range(n):
                c[i, j] += smallest
    for i in range(n):
        for j in range(n):
            if not cols[j]:
                c[i, j] -= smallest


@numba.njit(cache=True, nogil=True)
def _solve(c: np.ndarray) -> np.ndarray:
    """Munkres steps 1-6 on a square float64 matrix (modified in place) -> star matrix."""
    n = len(c)
    for i in range(n):
        c[i] -= c[i].min()
    marked = np.zeros((n, n), np.int8)
    col_starred = np.zeros(n, np.bool_)
    for i in range(n):
        for j in range(n):
            if c[i, j] == 0 and not col_starred[j]:
                marked[i, j], col_starred[j] = 1, True
                break
    while True:
        cols = np.zeros(n, np.bool_)
        for i in range(n):
            for j in range(n):
                if marked[i, j] == 1:
                    cols[j] = True
        if cols.sum() >= n:
            return marked
        rows = np.zeros(n, np.bool_)
        i, j = 0, 0
        while True:
            i, j = _find_zero(c, rows, cols, i, j)
            if i < 0:
                _smallest_uncovered(c, rows, cols)
                i, j = 0, 0
                continue
            marked[i, j] = 2
            star = -1
            for jj in range(n):
                if marked[i, jj] == 1:
                    star = jj
                    break
            if star < 0:
                _augment(marked, i, j)
                break
            j = star
            rows[i], cols[j] = True, False


def munkres_pairs(cost: np.ndarray) -> np.ndarray:
    """Official-compatible assignment of an (N, P) cost matrix.

    Args:
        cost: (N, P) float64 official costs (unpadded).

    Returns:
        (A, 2) int64 (candidate, person column) pairs, by candidate; candidates the official
        code assigns to a 1e10 padding column are left out.
    """
    n_rows, n_cols = cost.shape
    if cost.size == 0:
        return np.zeros((0, 2), np.int64)
    matrix = np.asarray(cost, np.float64)
    if n_rows > n_cols:
        matrix = np.concatenate([matrix, np.zeros((n_rows, n_rows - n_cols)) + 1e10], axis=1)
    size = max(matrix.shape)
    square = np.zeros((size, size))
    square[: matrix.shape[0], : matrix.shape[1]] = matrix
    marked = _solve(square)
    r, c = np.nonzero(marked[:n_rows, :n_cols] == 1)
    return np.stack([r, c], axis=1).astype(np.int64)
