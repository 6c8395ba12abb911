"""Heatmap targets: the official generator's patch, integer cell and max-over-overlaps rules."""

import numpy as np
import pytest

from bupose.codecs.gaussian import gaussian_patch, peak_cells, render_heatmaps


def expected_single(cell_xy: tuple[int, int], size_wh: tuple[int, int], sigma: float = 2.0):
    """By hand: exp(-d^2 / (2 sigma^2)) within the 15 x 15 patch around the cell, else 0."""
    w, h = size_wh
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    dx, dy = u - cell_xy[0], v - cell_xy[1]
    inside = (np.abs(dx) <= 3 * sigma + 1) & (np.abs(dy) <= 3 * sigma + 1)
    return np.where(inside, np.exp(-(dx**2 + dy**2) / (2 * sigma**2)), 0.0)


def test_patch_is_15x15_with_unit_peak_at_7():
    g = gaussian_patch(2.0)
    assert g.shape == (15, 15)
    assert g[7, 7] == 1.0 and g.max() == 1.0
    np.testing.assert_allclose(g[7, 8], np.exp(-1 / 8))
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, ::-1])


def test_single_joint_matches_hand_formula_on_integer_cell():
    kps = np.array([[[10.7, 20.2, 2.0]]], dtype=np.float32)
    hm = render_heatmaps(kps, (40, 30), sigma=2.0)
    assert hm.shape == (1, 30, 40) and hm.dtype == np.float32
    # The peak sits on (int(10.7), int(20.2)) = (10, 20), not on the rounded cell (11, 20).
    assert hm[0, 20, 10] == 1.0 and hm[0, 20, 11] < 1.0
    np.testing.assert_allclose(hm[0], expected_single((10, 20), (40, 30)), rtol=1e-6)


def test_patch_clipped_at_borders():
    kps = np.array([[[0.0, 0.0, 2.0], [39.9, 29.5, 1.0]]], dtype=np.float32)
    hm = render_heatmaps(kps, (40, 30))
    np.testing.assert_allclose(hm[0], expected_single((0, 0), (40, 30)), rtol=1e-6)
    np.testing.assert_allclose(hm[1], expected_single((39, 29), (40, 30)), rtol=1e-6)


def test_truncation_toward_zero_and_outside_points():
    # int(-0.5) = 0: kept on column 0 (official behaviour); -1.2 -> -1 and 40.0 -> 40 are outside.
    kps = np.array([[[-0.5, 5.0, 2], [-1.2, 5.0, 2], [40.0, 5.0, 2], [5.0, 5.0, 0]]], np.float32)
    hm = render_heatmaps(kps, (40, 30))
    assert hm[0, 5, 0] == 1.0
    assert not hm[1:].any()
    cells, valid = peak_cells(kps, (40, 30))
    assert valid.tolist() == [[True, False, False, False]]
    assert cells[0, 0].tolist() == [0, 5]


def test_overlaps_take_the_maximum_not_the_sum():
    kps = np.array([[[10.0, 10.0, 2]], [[13.0, 10.0, 2]]], dtype=np.float32)
    hm = render_heatmaps(kps, (32, 24))
    expected = np.maximum(expected_single((10, 10), (32, 24)), expected_single((13, 10), (32, 24)))
    np.testing.assert_allclose(hm[0], expected, rtol=1e-6)
    assert hm.max() == 1.0


def test_no_people_gives_empty_maps():
    hm = render_heatmaps(np.zeros((0, 17, 3), np.float32), (16, 8))
    assert hm.shape == (17, 8, 16) and not hm.any()


def pasted_one_by_one(kps: np.ndarray, size_wh: tuple[int, int], sigma: float) -> np.ndarray:
    """The official ``HeatmapGenerator`` loop: person by person, joint by joint, one patch each
    (corners rounded as it rounds them), np.maximum into the map region."""
    w, h = size_wh
    out = np.zeros((kps.shape[1], h, w), np.float32)
    patch = gaussian_patch(sigma)
    for person in kps:
        for k, (x_, y_, v) in enumerate(person):
            x, y = int(x_), int(y_)
            if v <= 0 or x < 0 or y < 0 or x >= w or y >= h:
                continue
            ul = int(np.round(x - 3 * sigma - 1)), int(np.round(y - 3 * sigma - 1))
            br = int(np.round(x + 3 * sigma + 2)), int(np.round(y + 3 * sigma + 2))
            c, d = max(0, -ul[0]), min(br[0], w) - ul[0]
            a, b = max(0, -ul[1]), min(br[1], h) - ul[1]
            cc, dd, aa, bb = max(0, ul[0]), min(br[0], w), max(0, ul[1]), min(br[1], h)
            out[k, aa:bb, cc:dd] = np.maximum(out[k, aa:bb, cc:dd], patch[a:b, c:d])
    return out


@pytest.mark.parametrize("sigma", [2.0, 1.5, 3.0])
def test_all_patches_at_once_equal_the_official_loop(sigma):
    """Crowds with overlaps, joints on and past every border, unlabelled joints: bit-equal."""
    rng = np.random.default_rng(int(sigma * 10))
    for people, (w, h) in [(1, (16, 12)), (8, (64, 48)), (30, (128, 128)), (5, (7, 5))]:
        kps = np.concatenate([rng.uniform(-4, [w + 4, h + 4], (people, 17, 2)),
                              rng.integers(0, 3, (people, 17, 1))], axis=2).astype(np.float32)
        np.testing.assert_array_equal(render_heatmaps(kps, (w, h), sigma),
                                      pasted_one_by_one(kps, (w, h), sigma))
