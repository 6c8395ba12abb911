"""Folder inference with image loading and decoding overlapping the network (issue 12).

    reader thread:   read(item 0) read(item 1) read(item 2) ...        (``depth`` ahead)
    caller's thread:              network(0)   network(1)   ...        (the only serial part)
    finisher thread:                           finish(0)    finish(1)  (decode, files)

PyTorch and OpenCV release the GIL in their kernels and the numba decoders run compiled
loops, so on a multi-core CPU the three stages run side by side and images/s approaches
1 / (network time per image). The reader and finisher threads run their PyTorch operations on
one thread (``torch.set_num_threads`` is per thread): a second OpenMP team would spin beside the
network's and slow it down. Results come out in input order and equal a serial loop's: each
stage is a pure function of its item (``tests/inference/test_pipeline.py``).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
X = TypeVar("X")
Y = TypeVar("Y")
R = TypeVar("R")


def overlapped(items: Iterable[T], read: Callable[[T], X | None],
               network: Callable[[X], Y], finish: Callable[[T, X, Y], R],
               depth: int = 2) -> Iterator[tuple[T, R | None]]:
    """(item, finish(item, read(item), network(read(item)))) for each item, in order.

    Args:
        items: the work list (e.g. image paths).
        read: loads one item in the reader thread; None skips it (yielded as (item, None)).
        network: runs in the caller's thread (one model call at a time).
        finish: decodes / writes in the finisher thread.
        depth: items read ahead of the network, and finishes allowed to queue behind it.

    An exception of any stage is raised in the caller at that item's turn; work not yet
    started is cancelled.
    """
    todo = list(items)
    with ThreadPoolExecutor(1, "bupose-read", initializer=_one_torch_thread) as reader, \
            ThreadPoolExecutor(1, "bupose-finish", initializer=_one_torch_thread) as finisher:
        reads: deque[Future] = deque(reader.submit(read, it) for it in todo[:depth])
        finishes: deque[tuple[T, Future | None]] = deque()
        try:
            for i, item in enumerate(todo):
                if i + depth < len(todo):
                    reads.append(reader.submit(read, todo[i + depth]))
                x = reads.popleft().result()
                finishes.append((item, None if x is None
                                 else finisher.submit(finish, item, x, network(x))))
                while len(finishes) > depth or (finishes and _ready(finishes[0][1])):
                    yield _take(finishes)
            while finishes:
                yield _take(finishes)
        finally:
            for read_future in reads:
                read_future.cancel()
            for _, future in finishes:
                if future is not None:
                    future.cancel()


def _one_torch_thread() -> None:
    """PyTorch operations of the calling (helper) thread on one thread, when torch is in use."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _ready(future: Future | None) -> bool:
    return future is None or future.done()


def _take(queue: deque) -> tuple:
    item, future = queue.popleft()
    return item, None if future is None else future.result()
