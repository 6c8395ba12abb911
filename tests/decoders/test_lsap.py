"""bupose.decoders.lsap: scipy's assignment solver loaded without scipy.optimize gives the
public function's assignments (ties included), and the public function is used whenever the
extension cannot be loaded by itself."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as public

from bupose.decoders import lsap

# A fresh interpreter: the extension's function solves the matrices pickled in argv[1] without
# importing scipy.optimize; its (2, A) index arrays are pickled to argv[2].
LOAD_ALONE = """import pickle, sys
import numpy as np
from bupose.decoders import lsap
solve = lsap.load()
with open(sys.argv[1], 'rb') as f:
    pairs = [np.stack(solve(c)) for c in pickle.load(f)]
assert 'scipy.optimize' not in sys.modules, 'scipy.optimize was imported'
import scipy.optimize
print(type(solve).__name__, getattr(solve, '__module__', None),
      scipy.optimize.linear_sum_assignment is solve)
with open(sys.argv[2], 'wb') as f:
    pickle.dump(pairs, f)
"""


def _costs(rng: np.random.Generator) -> list[np.ndarray]:
    """Square and rectangular (both ways) matrices, many with tied optima (small integers, the
    rounded tag distances of the AE cost), plus empty ones."""
    costs = [np.zeros((0, 3)), np.zeros((3, 0))]
    for n, p in [(1, 1), (3, 3), (4, 7), (7, 4), (12, 30), (30, 12), (25, 25)]:
        costs.append(rng.integers(0, 3, (n, p)).astype(np.float64) * 100 - rng.random((n, 1)))
        costs.append(rng.integers(0, 2, (n, p)).astype(np.float64))
        costs.append(rng.random((n, p)))
    return costs


def test_loaded_alone_equals_scipy_optimize(tmp_path):
    costs = _costs(np.random.default_rng(0))
    src, out = tmp_path / "costs.pkl", tmp_path / "pairs.pkl"
    src.write_bytes(pickle.dumps(costs))
    done = subprocess.run([sys.executable, "-c", LOAD_ALONE, str(src), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # the function loaded alone, the very object that scipy.optimize exports once imported
    assert done.stdout.split() == ["builtin_function_or_method", "scipy.optimize._lsap", "True"]
    solved = pickle.loads(out.read_bytes())
    assert len(solved) == len(costs)
    for cost, pairs in zip(costs, solved):
        np.testing.assert_array_equal(pairs, np.stack(public(cost)), err_msg=str(cost.shape))


def test_public_function_once_scipy_optimize_is_imported():
    lsap.load.cache_clear()
    try:
        assert lsap.load() is public  # this module imported scipy.optimize
    finally:
        lsap.load.cache_clear()


@pytest.mark.parametrize("spec", [None, "no-file"])
def test_no_extension_without_scipy_or_its_file(monkeypatch, spec):
    """No scipy spec, or another scipy layout (no ``optimize/_lsap*`` file): None, and ``load``
    then imports the public name."""
    import importlib.util
    from types import SimpleNamespace

    fake = None if spec is None else SimpleNamespace(origin="/nonexistent/scipy/__init__.py")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: fake)
    assert lsap._extension_function() is None
