"""Offset-guided targets against the official encoders' outputs (fixtures README, targets/)."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.codecs.offsets import encode_offset_targets
from tests.conftest import SHARED, require

TARGETS = SHARED / "fixtures" / "official_offsetguided" / "targets"
CASES = ["40083_fixed", "196141_fixed", "197388_fixed", "196141_seeded"]


def _close_where_finite(ours: np.ndarray, ref: np.ndarray, atol: float) -> None:
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(np.isposinf(ours), np.isposinf(ref))
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=1e-6, atol=atol)


@pytest.mark.parametrize("case", CASES)
def test_targets_equal_official(case: str) -> None:
    ref = np.load(require(TARGETS / f"targets_{case}.npz"))
    t = encode_offset_targets(ref["keypoints"], ref["mask_miss_input"])
    np.testing.assert_array_equal(t.mask_miss, ref["mask_miss"])
    np.testing.assert_array_equal(t.heatmaps > 0, ref["heatmaps"] > 0)  # window extents
    np.testing.assert_allclose(t.heatmaps, ref["heatmaps"], rtol=1e-6, atol=1e-7)
    _close_where_finite(t.offsets, ref["offsets"], atol=1e-5)
    _close_where_finite(t.scales, ref["scales"], atol=1e-6)
    np.testing.assert_allclose(t.instance_scales, ref["instance_scales"], rtol=1e-6)


def test_no_people_gives_empty_targets() -> None:
    t = encode_offset_targets(np.zeros((0, 17, 4), np.float32), np.full((64, 64), 255, np.uint8))
    assert t.heatmaps.shape == (17, 16, 16) and not t.heatmaps.any()
    assert t.offsets.shape == (38, 16, 16) and np.isposinf(t.offsets).all()
    assert np.isnan(t.scales).all() and (t.instance_scales == 1).all() and t.mask_miss.all()


def test_shorter_vector_wins() -> None:
    kps = np.zeros((2, 17, 4), np.float32)
    kps[0, 0] = (32, 32, 2, 5)
    kps[0, 1] = (60, 32, 2, 5)  # far partner
    kps[1, 0] = (36, 32, 2, 9)
    kps[1, 1] = (40, 32, 2, 9)  # near partner
    t = encode_offset_targets(kps, np.full((64, 64), 255, np.uint8))
    cell_x = (np.arange(16) * 4 + 1.5).astype(np.float32)
    row = 7
    both = np.zeros(16, bool)
    both[6:12] = True  # windows [round(8 - 3.5), 12) = [4, 12) and [round(9 - 3.5), 12) = [6, 12)
    got = t.offsets[0, row][both]
    np.testing.assert_allclose(got, (40 - cell_x)[both])  # the near partner wins everywhere
    np.testing.assert_allclose(t.instance_scales[0, row][both], 9 / 0.026, rtol=1e-6)
    assert np.isfinite(t.offsets[0, row][4]) and t.offsets[0, row][4] == 60 - cell_x[4]
