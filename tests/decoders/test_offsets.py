"""SimplePose V2 decoding against the official ``PostProcess.generate_poses`` recordings
(fixtures ``official_offsetguided/decoding``) and hand-worked grouping cases."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders import DECODERS
from bupose.decoders.offsets import (
    COCO_OFFSET_SKELETON,
    OffsetParams,
    back_project,
    decode_offsets,
    limb_flip_index,
)
from bupose.decoders.offsets_group import delete_reconnections, delete_sort, group_limbs
from bupose.decoders.offsets_peaks import peaks_full, peaks_windowed
from bupose.structures.spec import get_spec
from tests.conftest import SHARED, require

DECODING = SHARED / "fixtures" / "official_offsetguided" / "decoding"
CASES = ["coco_40083", "coco_196141", "coco_197388", "mini_217285_13p", "crowd_composite"]


def _case(name: str) -> dict[str, np.ndarray]:
    with np.load(require(DECODING / f"{name}.npz")) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("peaks", ["windowed", "full"])
@pytest.mark.parametrize("name", CASES)
def test_decoding_equals_official(name: str, peaks: str) -> None:
    z = _case(name)
    out = decode_offsets(z["heatmaps"][0], z["offsets"][0], OffsetParams(peaks=peaks))
    # top-k: candidates above the threshold exactly (the others are moved off the image)
    valid = z["topk_scores"][0] >= 0.04
    for key in ("inds", "ys", "xs"):
        np.testing.assert_array_equal(getattr(out.peaks, key)[valid], z[f"topk_{key}"][0][valid])
    np.testing.assert_allclose(out.peaks.scores[valid], z["topk_scores"][0][valid], atol=1e-6)
    # limbs whose start and matched end are candidates
    ref = z["limbs"]
    rows = (ref[..., 2] >= 0.04) & (ref[..., 5] >= 0.04)
    exact = [0, 1, 3, 4, 6, 7, 11, 12]
    np.testing.assert_array_equal(out.limbs[rows][:, exact], ref[rows][:, exact])
    np.testing.assert_allclose(out.limbs[rows][:, [2, 5, 10]], ref[rows][:, [2, 5, 10]], atol=1e-6)
    np.testing.assert_allclose(out.limbs[rows][:, [8, 9]], ref[rows][:, [8, 9]], rtol=1e-5,
                               atol=1e-5)
    # a start candidate whose nearest end is off the image stays an invalid limb
    lost = (ref[..., 2] >= 0.04) & (ref[..., 5] < 0.04)
    assert np.all(out.limbs[lost][:, 3] <= 0)
    # people: count, ids and coordinates exactly; values ~1e-6
    assert out.poses.shape == z["poses"].shape
    np.testing.assert_array_equal(out.poses[..., [0, 1, 3, 5]], z["poses"][..., [0, 1, 3, 5]])
    np.testing.assert_allclose(out.poses[..., [2, 4]], z["poses"][..., [2, 4]], atol=1e-6)
    image = back_project(out.poses, z["meta_offset"], z["meta_scale"])
    np.testing.assert_allclose(image[..., :2], z["poses_image"][..., :2], atol=1e-4)


def test_registered() -> None:
    assert DECODERS.get("offsets") is decode_offsets


def test_windowed_peaks_equal_full_on_hard_maps(rng: np.random.Generator) -> None:
    """Negative values, peaks on the borders and corners, plateaus and near-threshold values."""
    maps = rng.normal(0, 0.02, (6, 24, 20)).astype(np.float32)
    yy, xx = np.mgrid[:24, :20]
    for c, (y, x) in enumerate([(0, 0), (23, 19), (0, 10), (12, 4), (11.5, 9.5), (5, 19)]):
        maps[c] += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.5**2)).astype(np.float32)
    maps[5, 15:18, 3:6] = 0.5  # plateau
    maps[3, :, 10:] = maps[3, :, :10]  # two equal halves: exact ties between candidates
    maps[4, 20, 15] = 0.0401
    full = peaks_full(maps, 4, 16)
    fast = peaks_windowed(maps, 4, 16, 0.04)
    valid = full.scores >= 0.04
    np.testing.assert_array_equal(fast.inds[valid], full.inds[valid])
    np.testing.assert_allclose(fast.scores[valid], full.scores[valid], atol=1e-6)
    np.testing.assert_array_equal(fast.scores[3], full.scores[3])  # ties: the reference path
    assert np.all(fast.scores[~valid] < 0.04)


def test_limb_flip_index_matches_fixture() -> None:
    z = _case("flip_fusion")
    flip, reverse = limb_flip_index(COCO_OFFSET_SKELETON, get_spec("coco17").flip_index)
    np.testing.assert_array_equal(flip, z["limb_flip_index"])
    np.testing.assert_array_equal(reverse, z["limb_reverse_index"])


def _limb(a_id: int, b_id: int, score: float) -> list[float]:
    """A valid limb record [x1, y1, v1, x2, y2, v2, id1, id2, d, len, score, s1, s2]."""
    return [a_id, 5.0, 0.5, b_id, 6.0, 0.5, a_id, b_id, 1.0, 3.0, score, 4.0, 4.0]


def _limbs(*types: list[list[float]]) -> np.ndarray:
    k = max(len(t) for t in types)
    out = np.zeros((len(types), k, 13), np.float32)
    out[..., 8] = 1e9  # padding rows: invalid (d too large)
    for i, rows in enumerate(types):
        out[i, :len(rows)] = rows
    return out


def test_column_sum_quirk_starts_a_person() -> None:
    """Quirk 3: a limb solved for one person (both ids shared, -1) and matching another by one
    id without beating its scores (+1) sums to 0 over people and starts a third person."""
    limbs = _limbs([_limb(10, 11, 0.5), _limb(10, 12, 0.8)], [_limb(10, 11, 0.7)])
    people = group_limbs(limbs, [(0, 1), (0, 1)], 2)
    assert len(people) == 3
    # limbs of a type are taken best first: (10, 12) then (10, 11)
    np.testing.assert_array_equal(people[:, :, 5], [[10, 12], [10, 11], [10, 11]])
    np.testing.assert_allclose(people[1, :, 4], 0.7)  # raised by the "2 shared" step
    fixed = group_limbs(limbs, [(0, 1), (0, 1)], 2, matched_limbs_start_people=False)
    np.testing.assert_array_equal(fixed[:, :, 5], [[10, 12], [10, 11]])


def test_merge_only_on_exactly_two_shared_ids() -> None:
    two = _limbs([_limb(10, 11, 0.5)], [_limb(30, 31, 0.6)], [_limb(11, 30, 0.9)])
    merged = group_limbs(two, [(0, 1), (2, 3), (1, 2)], 4)
    assert len(merged) == 1
    np.testing.assert_array_equal(merged[0, :, 5], [10, 11, 30, 31])
    # the column-sum quirk leaves two people with ids (10, 11); the next limb type merges them
    pair = [_limb(10, 11, 0.5), _limb(10, 12, 0.8)], [_limb(10, 11, 0.7)]
    after = group_limbs(_limbs(*pair, [_limb(20, 21, 0.9)]), [(0, 1), (0, 1), (2, 3)], 4)
    np.testing.assert_array_equal(after[:, :, 5], [[10, 12, -1, -1], [10, 11, -1, -1],
                                                   [-1, -1, 20, 21]])
    # ... unless the limb also gives both the same third joint: 3 shared ids are ignored
    kept = group_limbs(_limbs(*pair, [_limb(11, 40, 0.9)]), [(0, 1), (0, 1), (1, 2)], 3)
    np.testing.assert_array_equal(kept[:, :, 5], [[10, 12, -1], [10, 11, 40], [10, 11, 40]])


def test_delete_reconnections_keeps_best_per_end_id() -> None:
    conns = np.asarray([_limb(1, 7, 0.2), _limb(2, 7, 0.9), _limb(1, 8, 0.5)], np.float32)
    out = delete_reconnections(conns)
    np.testing.assert_array_equal(out[:, 6:8], [[2, 7], [1, 8]])  # start 1 may be reused


def test_delete_sort_threshold_and_order() -> None:
    people = np.full((3, 2, 6), -1, np.float32)
    people[0, 0, 2], people[1, :, 2], people[2, 1, 2] = 0.03, [0.5, 0.7], 0.9
    out = delete_sort(people, 0.04)
    np.testing.assert_allclose(out[:, :, 2], [[0, 0.9], [0.5, 0.7]])
    assert not np.any(out == -1)
