"""The munkres-compatible solver: official tie-breaking, hence official people on every
fixture, including the tie-ambiguous ones and crowd40."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from bupose.decoders.ae import decode_ae
from bupose.decoders.munkres import munkres_pairs
from bupose.decoders.params import GroupingParams
from bupose.inference.project import back_project
from bupose.structures.spec import get_spec
from tests.decoders.helpers import SOLVER_DEPENDENT, load_fixture

COCO_ORDER = get_spec("coco17").joint_order


def _tied_costs(rng, n_rows, n_cols):
    """Official-style costs: round(distance) * 100 - value, with many equal rounded distances."""
    vals = rng.uniform(0.1, 1.0, n_rows)
    return rng.integers(0, 3, (n_rows, n_cols)) * 100.0 - vals[:, None]


@pytest.mark.parametrize("seed", range(30))
def test_same_pairs_as_munkres_1_1_4(seed):
    munkres = pytest.importorskip("munkres")
    rng = np.random.default_rng(seed)
    cost = _tied_costs(rng, int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    n_rows, n_cols = cost.shape
    padded = cost
    if n_rows > n_cols:  # what the official code passes
        padded = np.concatenate([cost, np.zeros((n_rows, n_rows - n_cols)) + 1e10], axis=1)
    expected = [(r, c) for r, c in munkres.Munkres().compute(padded.copy()) if c < n_cols]
    assert [tuple(p) for p in munkres_pairs(cost)] == expected


@pytest.mark.parametrize("seed", range(10))
def test_optimal(seed):
    rng = np.random.default_rng(100 + seed)
    cost = _tied_costs(rng, 12, 9)
    pairs = munkres_pairs(cost)
    r, c = linear_sum_assignment(cost)
    assert cost[pairs[:, 0], pairs[:, 1]].sum() == pytest.approx(cost[r, c].sum())


@pytest.mark.parametrize("name", SOLVER_DEPENDENT)
def test_tied_fixtures_reproduced_exactly(name):
    data = load_fixture(name)
    grouped, scores = decode_ae(data["det"], data["tag"], GroupingParams(solver="munkres"),
                                COCO_ORDER)
    assert len(grouped) == len(data["grouped"])
    np.testing.assert_array_equal(grouped, data["grouped"])
    np.testing.assert_array_equal(scores, data["scores"])
    final = back_project(grouped, data["center"], data["scale"], data["base_size"])
    np.testing.assert_allclose(final, data["final"], atol=1e-4, rtol=0)
