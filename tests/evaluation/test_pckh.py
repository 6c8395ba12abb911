"""MPII PCKh: ground truth as prediction gives 100; hand-computed cases; the official head-box
protocol on the real validation .mat."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bupose.errors import DataError
from bupose.evaluation.pckh import (
    PCKH_PARTS,
    SC_BIAS,
    MpiiGroundTruth,
    evaluate_pckh,
    format_pckh_stats,
    load_mpii_ground_truth,
)
from tests.conftest import SHARED_DATA, require

MPII_MAT = SHARED_DATA / "mpii_annotations" / "detections_our_format.mat"


@pytest.fixture(scope="module")
def mpii_gt():
    return load_mpii_ground_truth(require(MPII_MAT))


def test_loads_the_validation_ground_truth(mpii_gt):
    assert mpii_gt.positions.shape == (2958, 16, 2)
    assert mpii_gt.visible.shape == (2958, 16)
    assert (mpii_gt.head_sizes > 0).all()


def test_ground_truth_as_prediction_scores_100(mpii_gt):
    zero_based = mpii_gt.positions - 1.0  # the bupose (0-based) frame
    stats = evaluate_pckh(zero_based, MPII_MAT)
    assert all(v == pytest.approx(100.0) for v in stats.values()), stats
    assert list(stats)[:8] == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"]
    assert "Mean@0.1" in stats
    # raw .mat positions are already 1-based: no shift with one_based=True
    assert evaluate_pckh(mpii_gt.positions, mpii_gt, one_based=True)["Mean@0.1"] == 100.0
    # a 2-px error is beyond 0.1 head size for the smallest heads (14.5 px): the shift matters
    assert evaluate_pckh(mpii_gt.positions + 1.0, mpii_gt)["Mean@0.1"] < 100.0


def test_hand_computed_case():
    # Two persons, head sizes 10 and 20 px (after SC_BIAS); every prediction is the GT moved
    # along x by a chosen distance. Threshold 0.5 -> 5 px and 10 px (inclusive).
    positions = np.zeros((2, 16, 2))
    visible = np.ones((2, 16), dtype=bool)
    visible[1, 9] = False  # person 1's head top is not annotated
    gt = MpiiGroundTruth(positions, visible, np.array([10.0, 20.0]))
    shift = np.zeros((2, 16))
    shift[0, 9] = 6.0  # head top of person 0: 6 > 5, wrong
    shift[0, 12] = 5.0  # right shoulder of person 0: exactly 5, correct (<=)
    shift[1, 13] = 10.5  # left shoulder of person 1: 10.5 > 10, wrong
    shift[1, 9] = 99.0  # not annotated: does not count
    shift[:, 6] = 50.0  # pelvis wrong for both: excluded from Mean
    pred = positions.copy()
    pred[:, :, 0] += shift
    stats = evaluate_pckh(pred, gt, one_based=True, thresholds=(0.5,))
    assert stats["Head"] == 0.0  # 0 of 1 counted head tops
    assert stats["Shoulder"] == pytest.approx((100.0 + 50.0) / 2)  # rsho 2/2, lsho 1/2
    assert stats["Elbow"] == 100.0
    # Mean over the 14 joints without pelvis/thorax: 27 counted, 2 wrong (head 0, lsho 1)
    assert stats["Mean"] == pytest.approx(100.0 * 25 / 27)


def test_real_predictions_match_a_direct_count(mpii_gt):
    # The .mat also stores a method's predictions (pos_pred_src, 1-based). Count by hand, joint by
    # joint, with the official rule, and compare.
    from scipy.io import loadmat

    pred = np.transpose(loadmat(str(MPII_MAT))["pos_pred_src"], (2, 0, 1))
    stats = evaluate_pckh(pred, mpii_gt, one_based=True)
    for threshold, suffix in ((0.5, ""), (0.1, "@0.1")):
        dist = np.sqrt(((pred - mpii_gt.positions) ** 2).sum(axis=2))
        ok = (dist <= threshold * mpii_gt.head_sizes[:, None]) & mpii_gt.visible
        per_joint = [100.0 * ok[:, j].sum() / mpii_gt.visible[:, j].sum() for j in range(16)]
        for name, joints in PCKH_PARTS:
            assert stats[name + suffix] == pytest.approx(np.mean([per_joint[j] for j in joints]))
        kept = [j for j in range(16) if j not in (6, 7)]
        mean = 100.0 * ok[:, kept].sum() / mpii_gt.visible[:, kept].sum()
        assert stats["Mean" + suffix] == pytest.approx(mean)
    assert 80.0 < stats["Mean"] < 100.0  # a real method: high but not perfect


def test_head_size_uses_sc_bias(mpii_gt):
    from scipy.io import loadmat

    boxes = loadmat(str(MPII_MAT))["headboxes_src"]
    diagonal = np.hypot(*(boxes[1] - boxes[0]))
    np.testing.assert_allclose(mpii_gt.head_sizes, SC_BIAS * diagonal)


def test_results_file_forms_and_count_check(mpii_gt, tmp_path):
    pred = mpii_gt.positions - 1.0
    with_scores = np.concatenate([pred, np.ones(pred.shape[:2] + (1,))], axis=2)
    as_json = tmp_path / "pred.json"
    as_json.write_text(json.dumps([{"keypoints": p.reshape(-1).tolist()} for p in with_scores]))
    as_npy = tmp_path / "pred.npy"
    np.save(as_npy, with_scores)
    for path in (as_json, as_npy):
        assert evaluate_pckh(path, mpii_gt)["Mean"] == pytest.approx(100.0)
    np.save(as_npy, pred[:100])
    with pytest.raises(DataError, match=r"pred\.npy: 100 persons, but the ground truth has 2958"):
        evaluate_pckh(as_npy, mpii_gt)


def test_bad_mat_file(tmp_path):
    bad = tmp_path / "gt.mat"
    bad.write_text("not a mat file")
    with pytest.raises(DataError, match=r"gt\.mat: cannot read"):
        load_mpii_ground_truth(bad)
    with pytest.raises(DataError, match="not found"):
        load_mpii_ground_truth(tmp_path / "missing.mat")


def test_format_table():
    stats = {name + s: 50.0 for name, _ in PCKH_PARTS for s in ("", "@0.1")}
    stats.update({"Mean": 90.0, "Mean@0.1": 40.0})
    lines = format_pckh_stats(stats, 2958).splitlines()
    assert "2958 persons" in lines[0]
    parts = ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"]
    assert lines[1].split() == parts
    assert lines[2].split()[0] == "PCKh@0.5" and lines[2].split()[-1] == "90.00"
    assert lines[3].split()[0] == "PCKh@0.1" and lines[3].split()[-1] == "40.00"
    assert len({len(line) for line in lines[1:]}) == 1  # aligned
