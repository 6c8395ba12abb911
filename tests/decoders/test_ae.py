"""decode_ae against the official HeatmapParser outputs, and degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.decoders import DECODERS, GroupingParams
from bupose.decoders.ae import decode_ae
from bupose.errors import ConfigError, DataError
from bupose.inference.project import back_project
from bupose.structures.spec import get_spec
from tests.decoders.helpers import (
    FLAG_VARIANTS,
    SOLVER_DEPENDENT,
    SOLVER_INDEPENDENT,
    load_fixture,
    official,
)

COCO_ORDER = get_spec("coco17").joint_order


@pytest.mark.parametrize("name", SOLVER_INDEPENDENT)
def test_fixture_default_flags_and_final(name):
    data = load_fixture(name)
    grouped, scores = decode_ae(data["det"], data["tag"], GroupingParams(), COCO_ORDER)
    np.testing.assert_array_equal(grouped, data["grouped"])
    np.testing.assert_array_equal(scores, data["scores"])
    final = back_project(grouped, data["center"], data["scale"], data["base_size"])
    np.testing.assert_allclose(final, data["final"], atol=1e-4, rtol=0)


@pytest.mark.parametrize("variant", [v for v in FLAG_VARIANTS if v != "adjust1_refine1"])
@pytest.mark.parametrize("name", SOLVER_INDEPENDENT[:2])
def test_fixture_flag_variants(name, variant):
    data = load_fixture(name)
    adjust, refine = FLAG_VARIANTS[variant]
    params = GroupingParams(adjust=adjust, refine=refine)
    grouped, scores = decode_ae(data["det"], data["tag"], params, COCO_ORDER)
    np.testing.assert_array_equal(grouped, official(data, "grouped", variant))
    np.testing.assert_array_equal(scores, official(data, "scores", variant))


@pytest.mark.parametrize("name", SOLVER_DEPENDENT[:4])
def test_tied_fixtures_run_and_stay_close(name):
    """With scipy, ties break differently from munkres 1.1.4 and the people may differ (every
    step is still optimal: test_grouping; solver="munkres" reproduces them: test_munkres)."""
    data = load_fixture(name)
    grouped, scores = decode_ae(data["det"], data["tag"], GroupingParams(), COCO_ORDER)
    assert abs(len(grouped) - len(data["grouped"])) <= 2
    assert grouped.shape[1:] == (17, 5) and scores.shape == (len(grouped),)


def test_registry_and_torch_inputs():
    assert set(DECODERS.names()) >= {"ae", "hae"}
    heat = torch.zeros(2, 16, 16)
    heat[0, 4, 4] = heat[1, 6, 5] = 1.0
    tags = torch.zeros(2, 16, 16, 1)
    grouped, scores = DECODERS.get("ae")(heat, tags, GroupingParams(), None)
    assert grouped.shape == (1, 2, 4) and scores[0] == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="joint_order"):
        decode_ae(heat, tags, GroupingParams(), [0, 0])


def _blank(k=4, h=24, w=32, dim=2):
    return np.zeros((k, h, w), np.float32), np.zeros((k, h, w, dim), np.float32)


def test_no_detections_gives_empty_result():
    heat, tags = _blank()
    heat[:] = 0.05  # everything below the detection threshold
    grouped, scores = decode_ae(heat, tags)
    assert grouped.shape == (0, 4, 5) and scores.shape == (0,)
    grouped, _ = decode_ae(*_blank())
    assert grouped.shape == (0, 4, 5)


def test_one_joint_type_only():
    heat, tags = _blank()
    heat[2, 5, 5], heat[2, 15, 25] = 0.8, 0.6
    tags[2, 15, 25] = 3.0
    grouped, scores = decode_ae(heat, tags)
    assert grouped.shape == (2, 4, 5)
    assert (grouped[:, 2, 2] > 0).all() and not (grouped[:, [0, 1, 3], 2] > 0).any()
    np.testing.assert_allclose(scores, np.float32([0.8, 0.6]) / 4)


def test_more_than_max_people():
    rng = np.random.default_rng(0)
    k, h, w = 2, 64, 96
    heat, tags = np.zeros((k, h, w), np.float32), np.zeros((k, h, w, 1), np.float32)
    ys, xs = np.divmod(rng.choice(48, 40, replace=False), 8)
    for p in range(40):
        y, x = 4 + 8 * ys[p], 4 + 11 * xs[p]
        for j in range(k):
            heat[j, y + j, x] = 0.2 + 0.01 * p
            tags[j, y + j - 2 : y + j + 3, x - 2 : x + 3] = 3.0 * p
    grouped, scores = decode_ae(heat, tags)
    # top 30 per joint; the 30 strongest people get both joints
    assert len(grouped) == 30 and (grouped[:, :, 2] > 0).all()
    # only the first 10 people are candidates: 20 joint-1 detections start new people ...
    few = decode_ae(heat, tags, GroupingParams(max_people=10, tag_key_collisions=False))[0]
    assert len(few) == 50
    # ... unless, as in the official code, their tag value equals their own person's key
    assert len(decode_ae(heat, tags, GroupingParams(max_people=10))[0]) == 30


def test_nan_in_maps_is_an_error():
    heat, tags = _blank()
    heat[1, 3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        decode_ae(heat, tags)
    heat, tags = _blank()
    heat[1, 3, 3] = 0.9
    tags[1, 3, 3, 0] = np.inf
    with pytest.raises(DataError, match="NaN/inf"):
        decode_ae(heat, tags)
