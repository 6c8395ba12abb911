"""Pooled maxima of whole maps for ``tiles.MapTiles`` (max / min over bands of rows and columns).

torch's strided reductions are several times faster than numpy's on these layouts; they run
on one thread (``one_thread``): memory-bound, and on a busy machine a second thread costs far
more than it brings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


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
