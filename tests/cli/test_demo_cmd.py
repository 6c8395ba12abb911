"""``bupose demo``: data, counts, contact sheet and the noisy-ground-truth sanity check."""

from __future__ import annotations

import argparse

import numpy as np

from bupose.cli import demo_cmd
from bupose.utils.io import read_image, read_json


def test_demo_writes_data_and_grid_and_scores_noisy_gt(tmp_path, capsys):
    args = argparse.Namespace(out=str(tmp_path), images=4, seed=0)
    assert demo_cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "[4/4]" in out and "images:              4" in out
    grid = read_image(tmp_path / "gt_grid.jpg")
    assert grid.shape[0] > 256 and grid.shape[1] > 256
    data = read_json(tmp_path / "data" / "annotations.json")
    assert len(data["images"]) == 4


def test_noisy_results_keep_labelled_joints_near_the_truth(tmp_path):
    data = {"annotations": [
        {"image_id": 1, "iscrowd": 0, "num_keypoints": 2, "area": 400.0,
         "keypoints": [10, 10, 2, 20, 20, 1] + [0, 0, 0] * 15},
        {"image_id": 1, "iscrowd": 0, "num_keypoints": 0, "area": 50.0, "keypoints": [0] * 51},
    ]}
    (entry,) = demo_cmd.noisy_results(data, np.random.default_rng(0))
    kps = np.asarray(entry["keypoints"]).reshape(17, 3)
    # std = 0.25 * 2 * sigma * sqrt(area) = 0.26 px (nose), 0.25 px (left eye): well under 2 px
    assert np.abs(kps[:2, :2] - [[10, 10], [20, 20]]).max() < 2.0
    assert kps[:2, 2].tolist() == [1.0, 1.0] and not kps[2:, 2].any()
