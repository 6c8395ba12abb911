"""An assignment solver that breaks ties exactly like the official one (munkres 1.1.4).

The official HeatmapParser solves each matching step with the pure-Python ``munkres`` package
(version 1.1.4) on the cost matrix padded with 1e10 columns when there are more candidates than
people. Optimal assignments are often tied (see ``bupose.decoders.grouping``), and which of the
tied assignments that package returns decides the people. ``munkres_pairs`` runs the same
Kuhn-Munkres steps on a numpy array, with the same scan orders and the same float64
operations per element, so it returns the same assignment; it is for reproducing official
outputs (``GroupingParams(solver="munkres")``), not for speed.

Behaviour reproduced (read from munkres 1.1.4): rows are padded with zero rows to a square;
step 1 subtracts each row's minimum; step 2 stars, row by row, the first zero whose row and
column hold no star; the "find an uncovered zero" scan starts at the last primed position,
takes the first row (cyclically) holding an uncovered zero and, in it, the LAST such zero in
cyclic column order; the smallest uncovered value is added to covered rows and then subtracted
from uncovered columns; the result lists starred cells row by row.
"""

from __future__ import annotations

import numpy as np


def _find_zero(c: np.ndarray, rows: np.ndarray, cols: np.ndarray, i0: int, j0: int
               ) -> tuple[int, int]:
    """Uncovered zero: first row cyclically from i0, last column cyclically from j0."""
    n = len(c)
    zero = (c == 0) & ~rows[:, None] & ~cols[None, :]
    row_order = (np.arange(n) + i0) % n
    hits = np.flatnonzero(zero[row_order].any(axis=1))
    if len(hits) == 0:
        return -1, -1
    i = int(row_order[hits[0]])
    col_order = (np.arange(n) + j0) % n
    return i, int(col_order[np.flatnonzero(zero[i, col_order])[-1]])


def _augment(marked: np.ndarray, row: int, col: int) -> None:
    """Step 5: flip stars and primes along the alternating path from the primed (row, col)."""
    path = [(row, col)]
    while True:
        stars = np.flatnonzero(marked[:, path[-1][1]] == 1)
        if len(stars) == 0:
            break
        r = int(stars[0])
        path.append((r, path[-1][1]))
        path.append((r, int(np.flatnonzero(marked[r] == 2)[0])))
    for r, c in path:
        marked[r, c] = 0 if marked[r, c] == 1 else 1
    marked[marked == 2] = 0


def _solve(c: np.ndarray) -> np.ndarray:
    """Munkres steps 1-6 on a square float64 matrix (modified in place) -> star matrix."""
    n = len(c)
    c -= c.min(axis=1, keepdims=True)
    marked = np.zeros((n, n), np.int8)
    col_starred = np.zeros(n, bool)
    for i in range(n):
        free = np.flatnonzero((c[i] == 0) & ~col_starred)
        if len(free):
            marked[i, free[0]], col_starred[free[0]] = 1, True
    while True:
        cols = (marked == 1).any(axis=0)
        if cols.sum() >= n:
            return marked
        rows = np.zeros(n, bool)
        i, j = 0, 0
        while True:
            i, j = _find_zero(c, rows, cols, i, j)
            if i < 0:
                smallest = c[~rows][:, ~cols].min()
                c[rows] += smallest
                c[:, ~cols] -= smallest
                i, j = 0, 0
                continue
            marked[i, j] = 2
            star = np.flatnonzero(marked[i] == 1)
            if len(star) == 0:
                _augment(marked, i, j)
                break
            j = int(star[0])
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
