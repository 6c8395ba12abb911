"""draw_poses draws along limbs and nowhere for unlabelled joints; make_grid tiles images."""

from __future__ import annotations

import numpy as np

from bupose.structures.spec import COCO17
from bupose.viz import draw_poses, make_grid
from bupose.viz.draw import limb_sides

L_SHO, R_SHO, L_ELB, L_WRI, NOSE = 5, 6, 7, 9, 0


def _person() -> np.ndarray:
    """Shoulders and the left elbow labelled; the left wrist and nose are v=0 at known spots."""
    kps = np.zeros((1, 17, 3))
    kps[0, L_SHO] = (60, 40, 2)
    kps[0, R_SHO] = (20, 40, 1)
    kps[0, L_ELB] = (60, 80, 2)
    kps[0, L_WRI] = (90, 90, 0)
    kps[0, NOSE] = (40, 10, 0)
    return kps


def test_draws_along_limbs_and_not_at_unlabelled_joints():
    blank = np.zeros((100, 120, 3), np.uint8)
    out = draw_poses(blank, _person(), COCO17, thickness=2)
    assert blank.sum() == 0  # input untouched
    assert out[40, 40].any()  # middle of the shoulder line
    assert out[60, 60].any()  # middle of the upper arm (left shoulder -> left elbow)
    assert not out[5:16, 35:46].any()  # nose (v=0): no dot, no limbs
    assert not out[84:97, 84:97].any()  # left wrist (v=0): no dot
    assert not out[86, 75].any()  # middle of the forearm towards the v=0 wrist: no line
    assert out.reshape(-1, 3).any(axis=1).sum() < 0.2 * 100 * 120  # only the skeleton


def test_threshold_hides_low_confidence_joints():
    kps = _person()
    kps[0, L_ELB, 2] = 0.3
    out = draw_poses(np.zeros((100, 120, 3), np.uint8), kps, COCO17, threshold=0.5, thickness=2)
    assert out[40, 40].any() and not out[60, 60].any() and not out[80, 60].any()


def test_left_and_right_limbs_have_different_colours():
    kps = np.zeros((1, 17, 3))
    kps[0, [L_SHO, L_ELB, R_SHO, 8]] = [(30, 20, 2), (30, 80, 2), (90, 20, 2), (90, 80, 2)]
    out = draw_poses(np.zeros((100, 120, 3), np.uint8), kps, COCO17, thickness=3)
    assert not np.array_equal(out[50, 30], out[50, 90])
    sides = limb_sides(COCO17)
    assert sides[COCO17.skeleton.index((5, 7))] == 1
    assert sides[COCO17.skeleton.index((6, 8))] == -1
    assert sides[COCO17.skeleton.index((5, 6))] == 0


def test_make_grid_tiles_row_by_row():
    images = [np.full((20, 30, 3), 10 * (i + 1), np.uint8) for i in range(5)]
    grid = make_grid(images, cols=2, pad=4)
    assert grid.shape == (3 * 20 + 4 * 4, 2 * 30 + 3 * 4, 3)
    assert grid[4, 4, 0] == 10 and grid[4, 38, 0] == 20  # row 0: images 0, 1
    assert grid[28, 4, 0] == 30 and grid[52, 4, 0] == 50  # rows 1, 2 start with images 2, 4
    assert grid[52, 38, 0] == 24  # empty last cell keeps the background
    small = make_grid(images, cols=3, cell_size=(15, 15), pad=0)
    assert small.shape == (30, 45, 3)
