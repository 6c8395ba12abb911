"""Process-wide thread settings of the libraries bupose runs on."""

from __future__ import annotations

import os


def quiet_numba_threads() -> None:
    """Use numba's ``workqueue`` threading layer for the decoders' parallel loops.

    The default (OpenMP) layer leaves its worker threads spinning after each parallel loop of
    the decoder, which slows the next network forward on CPU about 3x (tiny HigherHRNet, one
    torch thread: 2.4 -> 0.8 images/s after the first decode), and the network's float results
    then depend on what ran before (~1e-7 px on the poses), so sharded runs would not reproduce
    a single-process file exactly; workqueue threads sleep. Nothing changes when
    NUMBA_THREADING_LAYER is set or numba has already started a layer.

    Called when the decoder kernels are imported (``bupose.decoders.tilebox``), so every path
    that decodes (infer, decode, eval, training validation, benchmarks) gets it.
    """
    if "NUMBA_THREADING_LAYER" in os.environ:
        return
    import numba

    try:
        numba.threading_layer()  # raises ValueError while no layer is running
    except ValueError:
        numba.config.THREADING_LAYER = "workqueue"
