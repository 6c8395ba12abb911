"""Pooled summaries of whole maps for ``tiles.MapTiles`` (min / max over bands and cells).

torch's strided reductions are several times faster than numpy's on these layouts; they run
on one thread (``one_thread``): memory-bound, and on a busy machine a second thread costs far
more than it brings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

CHUNK_BANDS = 16  # bands of tag frame computed and pooled together (they stay in cache)


def pad_edge(x: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """Edge-pad axes 1 and 2 of x (K, h, w, ...) to (hp, wp)."""
    if x.shape[1:3] == (hp, wp):
        return x
    pad = [(0, 0), (0, hp - x.shape[1]), (0, wp - x.shape[2])] + [(0, 0)] * (x.ndim - 3)
    return np.pad(x, pad, mode="edge")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread: these reductions are memory-bound, and on a busy machine
    a second thread costs far more than it brings."""
    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def pool_rows(x: torch.Tensor, rows: int, largest: bool, out: torch.Tensor | None = None
               ) -> torch.Tensor:
    """Max (or min) of x (N, rows * side, M) over bands of rows: (N, rows, M). torch's
    strided reductions are several times faster than numpy's on this layout."""
    n, _, m = x.shape
    reduce = torch.amax if largest else torch.amin
    view = x.reshape(n, rows, -1, m)
    return reduce(view, dim=2) if out is None else reduce(view, dim=2, out=out)


def pool_cols(x: torch.Tensor, cols: int, channels: int, largest: bool) -> torch.Tensor:
    """Max (or min) of x (N, rows, W * C) over groups of W / cols columns: (N, rows, cols, C)."""
    n, rows, _ = x.shape
    reduce = torch.amax if largest else torch.amin
    return reduce(x.reshape(n, rows, cols, -1, channels), dim=3)


def frame_bands(tags: np.ndarray, rows: int, cell: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per column, min and max of the bound-frame tags over bands of rows; and over cells of
    ``cell`` x ``cell`` bands (cell * S rows, cell * S columns).

    Args:
        tags: (K, rows * S, W, L) float32, C-contiguous.

    Returns:
        lo, hi: (K, rows, W, L) float32; cell_lo, cell_hi: (K, rows / cell, W / (cell * S), L).
        For L = 2 the frame is computed a few bands at a time (they stay in cache for pooling)
        as the complex product (t0 + i t1)(1 - i) = (t0 + t1) + i (t1 - t0), each part one
        correctly rounded float32 sum.
    """
    k, height, w, dim = tags.shape
    side = height // rows
    shape = (k, rows, w * dim)
    lo, hi = torch.empty(shape), torch.empty(shape)
    with one_thread():
        if dim != 2:
            x = torch.from_numpy(tags).reshape(k, -1, w * dim)
            pool_rows(x, rows, False, lo)
            pool_rows(x, rows, True, hi)
        else:
            frame = np.empty((CHUNK_BANDS * side, w), np.complex64)
            source = tags.view(np.complex64)[..., 0]
            for j in range(k):
                for b in range(0, rows, CHUNK_BANDS):
                    n = min(CHUNK_BANDS, rows - b)
                    part = frame[: n * side]
                    np.multiply(source[j, b * side : (b + n) * side], np.complex64(1 - 1j),
                                out=part)
                    view = torch.from_numpy(part.view(np.float32)).reshape(1, -1, w * dim)
                    pool_rows(view, n, False, lo[j : j + 1, b : b + n])
                    pool_rows(view, n, True, hi[j : j + 1, b : b + n])
        cells = [pool_cols(pool_rows(x, rows // cell, largest), w // (side * cell), dim,
                            largest) for x, largest in ((lo, False), (hi, True))]
    return (lo.numpy().reshape(k, rows, w, dim), hi.numpy().reshape(k, rows, w, dim),
            cells[0].numpy(), cells[1].numpy())


def widened(lo: np.ndarray, hi: np.ndarray, rounded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Float64 copies of float32 frame bounds, widened by 2**-22 relative when the frame
    coordinates are rounded float32 sums; empty boxes ([inf, -inf]) stay empty."""
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    if not rounded:
        return lo, hi
    slack = np.maximum(np.abs(lo), np.abs(hi))
    slack *= 2.0**-22
    slack[~(lo <= hi)] = 0.0
    return lo - slack, hi + slack
