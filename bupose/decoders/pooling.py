"""Pooled maxima of whole maps for ``tiles.MapTiles`` (max / min over bands of rows and columns).

The reductions run in torch when torch is already imported (``"torch" in sys.modules``, as on
every path that runs a torch model) and in numpy otherwise, so that the decoders never import
torch themselves (a torch-free onnxruntime path saves its 1.6 s import). A max or min is exact
in either library, so both give the same values; only the speed differs: torch's strided
reductions are faster on these layouts, and run on one thread (``one_thread``): memory-bound,
and on a busy machine a second thread costs far more than it brings. The numpy path reduces by
elementwise ``np.maximum`` / ``np.minimum`` over the strided slices of a band, which is close
to torch's speed (a plain ``ndarray.max(axis=...)`` is ~2.5x slower here).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

Array = TypeVar("Array", np.ndarray, "Tensor")


def torch_loaded() -> bool:
    """Whether torch is already imported (then the decoders use it; they never import it)."""
    return "torch" in sys.modules


def pad_edge(x: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """Edge-pad axes 1 and 2 of x (K, h, w, ...) to (hp, wp)."""
    if x.shape[1:3] == (hp, wp):
        return x
    pad = [(0, 0), (0, hp - x.shape[1]), (0, wp - x.shape[2])] + [(0, 0)] * (x.ndim - 3)
    return np.pad(x, pad, mode="edge")


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch ops on one thread: these reductions are memory-bound, and on a busy machine
    a second thread costs far more than it brings. A no-op when torch is not loaded (numpy's
    reductions are single-threaded); it never imports torch."""
    if not torch_loaded():
        yield
        return
    import torch

    threads = torch.get_num_threads()
    if threads != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if threads != 1:
            torch.set_num_threads(threads)


def _reduce_numpy(view: np.ndarray, axis: int, largest: bool,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Max (or min) of ``view`` over ``axis`` as elementwise ops over its slices: exact, and
    NaN propagates as in torch.amax / amin."""
    op = np.maximum if largest else np.minimum
    index: list[slice | int] = [slice(None)] * view.ndim
    index[axis] = 0
    if out is None:
        acc = view[tuple(index)].copy()
    else:
        acc = out
        acc[...] = view[tuple(index)]
    for i in range(1, view.shape[axis]):
        index[axis] = i
        op(acc, view[tuple(index)], out=acc)
    return acc


def pool_rows(x: Array, rows: int, largest: bool, out: Array | None = None) -> Array:
    """Max (or min) of x (N, rows * side, M) over bands of rows: (N, rows, M), of x's kind
    (numpy array or torch tensor; ``out`` of the same kind)."""
    n, _, m = x.shape
    view = x.reshape(n, rows, -1, m)
    if isinstance(x, np.ndarray):
        return _reduce_numpy(view, 2, largest, out)
    import torch

    reduce = torch.amax if largest else torch.amin
    return reduce(view, dim=2) if out is None else reduce(view, dim=2, out=out)


def pool_cols(x: Array, cols: int, channels: int, largest: bool) -> Array:
    """Max (or min) of x (N, rows, W * C) over groups of W / cols columns: (N, rows, cols, C),
    of x's kind (numpy array or torch tensor)."""
    n, rows, _ = x.shape
    view = x.reshape(n, rows, cols, -1, channels)
    if isinstance(x, np.ndarray):
        return _reduce_numpy(view, 3, largest)
    import torch

    reduce = torch.amax if largest else torch.amin
    return reduce(view, dim=3)


def pool_grid(x: np.ndarray, rows: int, cols: int, channels: int, largest: bool) -> np.ndarray:
    """Max (or min) of x (N, rows * S, cols * S * C) over S x S cells: (N, rows, cols, C).

    In torch when it is loaded (one thread), else in numpy: the same values either way.
    """
    if not torch_loaded():
        return pool_cols(pool_rows(x, rows, largest), cols, channels, largest)
    import torch

    with one_thread():
        bands = pool_rows(torch.from_numpy(np.ascontiguousarray(x)), rows, largest)
        return pool_cols(bands, cols, channels, largest).numpy()
