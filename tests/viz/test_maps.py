"""Map pictures line up with the image (the official back-projection), tag hues separate people,
the grouping picture marks each person's joints in its colour; ``Poses.draw`` honours min_score."""

from __future__ import annotations

import numpy as np

from bupose.data.transforms import resize_align
from bupose.inference.poses import Poses
from bupose.inference.project import back_project
from bupose.structures.spec import COCO17
from bupose.viz.draw import person_colour
from bupose.viz.maps import (
    grouping_picture,
    heatmap_grid,
    heatmap_overlay,
    tag_colouring,
    to_image_frame,
    write_map_pictures,
)


def _frame(h: int = 150, w: int = 230) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """An image and the test-time center/scale/map size of a 64-px input (maps at input size)."""
    image = np.full((h, w, 3), 128, np.uint8)
    resized, center, scale, _ = resize_align(image, 64, 1.0, 1.0)
    return image, np.asarray(center), np.asarray(scale), (resized.shape[1], resized.shape[0])


def test_warped_peak_lands_where_back_projection_puts_it() -> None:
    image, center, scale, (mw, mh) = _frame()
    heat = np.zeros((mh, mw), np.float32)
    mx, my = 40, 23
    heat[my, mx] = 1.0
    warped = to_image_frame(heat, image.shape[:2], center, scale)
    expected = back_project(np.array([[[mx, my, 1.0]]]), center, scale, (mw, mh))[0, 0]
    y, x = np.unravel_index(np.argmax(warped), warped.shape)
    assert abs(x - expected[0]) <= 2.0 and abs(y - expected[1]) <= 2.0


def test_overlay_and_grid_shapes() -> None:
    image, center, scale, (mw, mh) = _frame()
    heat = np.random.default_rng(0).random((17, mh, mw)).astype(np.float32)
    assert heatmap_overlay(image, heat, center, scale).shape == image.shape
    grid = heatmap_grid(image, heat, COCO17, center, scale, cols=6, cell=64)
    assert grid.dtype == np.uint8 and grid.shape[1] > 6 * 64 and grid.shape[0] > 3 * 64


def test_tag_hues_separate_two_people() -> None:
    image = np.zeros((40, 80, 3), np.uint8)
    heat = np.zeros((2, 40, 80), np.float32)
    tags = np.zeros((2, 40, 80, 1), np.float32)
    heat[0, :, :40], tags[0, :, :40, 0] = 1.0, -3.0  # person A on the left
    heat[1, :, 40:], tags[1, :, 40:, 0] = 1.0, 4.0  # person B on the right
    out = tag_colouring(image, heat, tags).astype(int)
    left, right = out[20, 10], out[20, 70]
    assert left.sum() > 200 and right.sum() > 200 and np.abs(left - right).sum() > 150


def test_grouping_picture_marks_each_persons_joints() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    kps = np.zeros((2, 17, 3))
    kps[0, 5], kps[0, 6] = (20, 30, 0.9), (40, 30, 0.8)
    kps[1, 5], kps[1, 6] = (120, 90, 0.9), (140, 90, 0.7)
    out = grouping_picture(image, kps, COCO17, scores=[0.9, 0.8])
    assert tuple(out[30, 20]) == person_colour(0) and tuple(out[90, 140]) == person_colour(1)
    assert not out[5, 80].any()  # far from everyone


def test_write_map_pictures_and_poses_draw(tmp_path) -> None:
    from bupose.inference.predictor import DecoderInputs
    from bupose.utils.io import read_image

    image, center, scale, (mw, mh) = _frame()
    rng = np.random.default_rng(1)
    inputs = DecoderInputs(rng.random((17, mh, mw), dtype=np.float32),
                           rng.random((17, mh, mw, 2), dtype=np.float32), center, scale,
                           (mw, mh))
    kps = np.zeros((2, 17, 3), np.float32)
    kps[:, :, :2] = rng.random((2, 17, 2)) * 100 + 20
    kps[:, :, 2] = 0.5
    paths = write_map_pictures(tmp_path, "x", image, inputs, kps, [0.9, 0.1], COCO17)
    assert [p.name for p in paths] == ["x_heatmaps.jpg", "x_joints.jpg", "x_tags.jpg",
                                       "x_grouping.jpg"]
    assert all(read_image(p).ndim == 3 for p in paths)
    poses = Poses(kps, np.array([0.9, 0.1], np.float32))
    both, confident = poses.draw(image), poses.draw(image, min_score=0.5)
    assert (both != image).any() and (confident != image).any()
    assert (both != confident).any()  # the 0.1 person is left out above min_score 0.5
