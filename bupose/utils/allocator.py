"""Keep freed memory in the process: glibc ``malloc`` settings for large tensors (issue 12).

By default glibc serves every allocation above its mmap threshold (128 KiB, raised dynamically up
to 32 MiB) with a fresh ``mmap`` and unmaps it again on ``free``, and it gives the top of its heap
back to the kernel once more than the trim threshold is free. A pose network's activations are
tens to hundreds of MiB each (W32-512, batch 12, 512x512: the stride-4 branch alone is
12 x 64 x 128 x 128 floats = 50 MiB per tensor), so every forward and backward pass faults all of
its memory back in, page by page, and the kernel zeroes each page. On the 2-core EPYC VM of the
README (where page faults are expensive), a W32-512 training step took 14.6-19.3 s at batch 4
with the defaults and 9.8-14.2 s with freed memory kept (interleaved runs), 47.1 s and 27.7 s at
batch 12 (the README's table); inference of one image 5-12% less (minor page faults per run
1.1-1.25 million -> 0.23 million).

``tune_malloc()`` sets ``M_MMAP_MAX = 0`` (large blocks come from the heap and are reused) and
``M_TRIM_THRESHOLD = -1`` (the heap is never trimmed), the settings documented in ``mallopt(3)``
and the ones PyTorch's CPU performance guides reach with jemalloc or tcmalloc. The price: a
process keeps its heap until it exits, and peak RSS grows by 5-18% (an aligned request needs a
little more than a freed block of its own size, so the heap grows by a few blocks before freed
neighbours coalesce; the README's memory rows). ``bupose``'s command line calls it before every
command; Python users may call it once at start-up. It does nothing (and returns False) off
glibc, when the user has set a ``MALLOC_*`` variable or preloads another allocator, or with
``BUPOSE_MALLOC=system``.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1  # mallopt(3) parameter numbers (malloc.h)
M_MMAP_MAX = -4
_STATE = {"tuned": False}


def tune_malloc() -> bool:
    """Apply the settings above to this process (idempotent); True when they are in effect."""
    if _STATE["tuned"]:
        return True
    if not sys.platform.startswith("linux") or _user_chose_allocator(os.environ):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # glibc only: other C libraries have other knobs  # noqa: B018
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _STATE["tuned"] = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
    return _STATE["tuned"]


def malloc_state() -> str:
    """``"tuned"`` when ``tune_malloc`` took effect in this process, else ``"default"``."""
    return "tuned" if _STATE["tuned"] else "default"


def _user_chose_allocator(environ: Mapping[str, str]) -> bool:
    """The user's own choice wins: MALLOC_* variables, a preloaded allocator, or
    BUPOSE_MALLOC=system."""
    if environ.get("BUPOSE_MALLOC", "").lower() == "system":
        return True
    if any(key.startswith("MALLOC_") for key in environ):
        return True
    return "malloc" in environ.get("LD_PRELOAD", "")
