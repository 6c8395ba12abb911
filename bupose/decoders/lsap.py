"""scipy's ``linear_sum_assignment`` without the import of all of ``scipy.optimize``.

``scipy.optimize.linear_sum_assignment`` is the function of the compiled module
``scipy.optimize._lsap`` (the public name is that very object). Importing it the usual way runs
``scipy/optimize/__init__.py``, which loads every optimiser, linprog and scipy.linalg, and parses
hundreds of docstrings: 0.35-0.55 s on the 2-core benchmark machine, about a third of a one-image
``bupose infer --backend onnxruntime`` outside the network. ``load`` therefore loads that one
extension module from scipy's installed files, without its package; when the layout differs
(another scipy version), when it fails to load, or when ``scipy.optimize`` is already imported,
it returns the public function instead. A test checks that both give the same assignments.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

Solver = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@functools.cache
def load() -> Solver:
    """``linear_sum_assignment``: from ``scipy/optimize/_lsap*.so`` alone when possible."""
    if "scipy.optimize" not in sys.modules:
        solver = _extension_function()
        if solver is not None:
            return solver
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment


def _extension_function() -> Solver | None:
    """The function of scipy's ``_lsap`` extension module loaded by itself, or None."""
    scipy_spec = importlib.util.find_spec("scipy")
    if scipy_spec is None or scipy_spec.origin is None:
        return None
    folder = Path(scipy_spec.origin).parent / "optimize"
    found = [p for s in importlib.machinery.EXTENSION_SUFFIXES for p in folder.glob(f"_lsap{s}")]
    if not found:
        return None
    spec = importlib.util.spec_from_file_location("scipy.optimize._lsap", found[0])
    if spec is None or spec.loader is None:
        return None
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError):
        return None
    solver = getattr(module, "linear_sum_assignment", None)
    return solver if callable(solver) else None


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``scipy.optimize.linear_sum_assignment(cost)``: row and column indices (see ``load``)."""
    return load()(cost)
