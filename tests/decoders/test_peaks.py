"""Peak finding: equal to the official NMS + torch.topk above the detection threshold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.decoders.peaks import as_maps, find_peaks, nms, top_k_dense
from bupose.decoders.tiles import MapTiles
from bupose.errors import DataError
from tests.decoders.helpers import SOLVER_INDEPENDENT, load_fixture, synthetic_maps


def _official_nms(heat: np.ndarray, kernel: int) -> np.ndarray:
    det = torch.from_numpy(heat)[None]
    pooled = torch.nn.functional.max_pool2d(det, kernel, 1, kernel // 2)
    return (det * torch.eq(pooled, det).float())[0].numpy()


def _above(peaks, thr):
    keep = peaks.vals > thr
    return peaks.vals[keep], peaks.locs[keep], peaks.tags[keep], keep.sum(axis=1)


def test_nms_equals_torch_max_pool(rng):
    heat, _ = synthetic_maps(rng, k=2, h=33, w=50)
    np.testing.assert_array_equal(nms(heat, 5), _official_nms(heat, 5))


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (4, 9), (7, 5)])
def test_nms_small_and_negative_maps(rng, shape):
    # maps narrower than the window, negative values (-0.0 where suppressed) and plateaus
    heat = np.round(rng.normal(0, 1, (2, *shape)), 1).astype(np.float32)
    ours, ref = nms(heat, 5), _official_nms(heat, 5)
    np.testing.assert_array_equal(ours, ref)
    np.testing.assert_array_equal(np.signbit(ours), np.signbit(ref))


@pytest.mark.parametrize("seed", range(4))
def test_find_peaks_equals_dense_above_threshold(seed):
    rng = np.random.default_rng(seed)
    heat, tags = synthetic_maps(rng, k=3, h=41, w=53, people=12)
    ours = find_peaks(heat, tags, MapTiles(heat, tags), 5, 5, 0.1)
    ref = top_k_dense(heat, tags, 5, 5)
    for a, b in zip(_above(ours, 0.1), _above(ref, 0.1)):
        np.testing.assert_array_equal(a, b)


def test_exact_ties_fall_back_to_torch_topk_order():
    heat = np.zeros((1, 20, 20), np.float32)
    for y, x in [(2, 2), (10, 15), (17, 4)]:  # three equal isolated peaks
        heat[0, y, x] = 0.6
    tags = np.random.default_rng(0).normal(size=(1, 20, 20, 2)).astype(np.float32)
    ours = find_peaks(heat, tags, MapTiles(heat, tags), 30, 5, 0.1)
    np.testing.assert_array_equal(ours.locs, top_k_dense(heat, tags, 30, 5).locs)


@pytest.mark.parametrize("name", SOLVER_INDEPENDENT[:2])
def test_fixture_top_k(name):
    data = load_fixture(name)
    heat, tags = as_maps(data["det"], data["tag"])
    peaks = find_peaks(heat, tags, MapTiles(heat, tags), 30, 5, 0.1)
    keep = data["topk_val_k"][0] > 0.1
    np.testing.assert_array_equal(peaks.vals > 0.1, keep)
    np.testing.assert_array_equal(peaks.vals[keep], data["topk_val_k"][0][keep])
    np.testing.assert_array_equal(peaks.locs[keep], data["topk_loc_k"][0][keep])
    np.testing.assert_array_equal(peaks.tags[keep], data["topk_tag_k"][0][keep])


def test_map_smaller_than_k_and_row_index():
    heat = np.zeros((1, 3, 5), np.float32)
    heat[0, 2, 4] = 0.9  # last pixel: y = 14 // 5 = 2
    peaks = top_k_dense(heat, np.zeros((1, 3, 5, 1), np.float32), 30, 5)
    assert peaks.vals.shape == (1, 15) and tuple(peaks.locs[0, 0]) == (4, 2)


def test_input_checks():
    with pytest.raises(DataError, match="shape"):
        as_maps(np.zeros((3, 4)), np.zeros((3, 4, 1)))
    with pytest.raises(DataError, match="matching"):
        as_maps(np.zeros((2, 4, 4)), np.zeros((2, 4, 5, 1)))
    heat, tags = as_maps(torch.zeros(2, 4, 4, dtype=torch.float64), np.zeros((2, 4, 4)))
    assert heat.dtype == np.float32 and tags.shape == (2, 4, 4, 1)
    heat = np.zeros((1, 8, 8), np.float32)
    heat[0, 4, 4] = 1.0
    tags = np.zeros((1, 8, 8, 1), np.float32)
    tags[0, 4, 4, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        find_peaks(heat, tags, MapTiles(heat, tags), 30, 5, 0.1)


@pytest.mark.parametrize("name", ["000000197388_ambiguous", "crowd40"])
def test_fixture_with_tied_peaks_equals_dense(name):
    data = load_fixture(name)
    heat, tags = as_maps(data["det"], data["tag"])
    ours = find_peaks(heat, tags, MapTiles(heat, tags), 30, 5, 0.1)
    for a, b in zip(_above(ours, 0.1), _above(top_k_dense(heat, tags, 30, 5), 0.1)):
        np.testing.assert_array_equal(a, b)
