"""MPII PCKh: the official validation protocol (as in mmpose 0.x ``TopDownMpiiDataset.evaluate``).

Ground truth: ``detections_our_format.mat`` / ``mpii_gt_val.mat`` (2,958 validation persons) with
``pos_gt_src`` (16, 2, N) joint positions in MATLAB 1-based pixels, ``jnt_missing`` (16, N) and
``headboxes_src`` (2, 2, N) head boxes [[x1, y1], [x2, y2]].

A joint of a person counts when it is not missing; it is correct when
``||pred - gt|| <= threshold * SC_BIAS * ||head box diagonal||`` with SC_BIAS = 0.6. Per joint,
PCKh = 100 * correct / counted. Reported parts are Head (head top) and the unweighted mean of the
left and right joint for Shoulder, Elbow, Wrist, Hip, Knee and Ankle; Mean is the joint-count
weighted mean over all joints except pelvis and thorax (= 100 * correct / counted over the 14).

Predictions are taken in 0-based image pixels (the bupose image frame, and mmpose's) and shifted
by +1 to the MATLAB frame of the ground truth; pass ``one_based=True`` for predictions already in
that frame (e.g. raw MPII annotation coordinates).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import DataError
from bupose.evaluation.results import read_mpii_predictions

MPII_JOINTS = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head", "rwri", "relb",
    "rsho", "lsho", "lelb", "lwri",
)  # the .mat's dataset_joints; the order of the mpii16 spec
PCKH_PARTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Head", (9,)), ("Shoulder", (12, 13)), ("Elbow", (11, 14)), ("Wrist", (10, 15)),
    ("Hip", (2, 3)), ("Knee", (1, 4)), ("Ankle", (0, 5)),
)
EXCLUDED_FROM_MEAN = (6, 7)  # pelvis, thorax
SC_BIAS = 0.6
THRESHOLDS = (0.5, 0.1)


@dataclass(frozen=True)
class MpiiGroundTruth:
    """PCKh ground truth.

    Attributes:
        positions: (N, 16, 2) float64 joint positions, MATLAB 1-based pixels.
        visible: (N, 16) bool, True where the joint is annotated (not ``jnt_missing``).
        head_sizes: (N,) float64, SC_BIAS * head-box diagonal, in pixels.
    """

    positions: np.ndarray
    visible: np.ndarray
    head_sizes: np.ndarray


def load_mpii_ground_truth(path: str | os.PathLike) -> MpiiGroundTruth:
    """Read the PCKh ground truth .mat; DataError names the file and the problem."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: MPII ground-truth .mat file not found")
    try:
        mat = loadmat(str(path))
    except Exception as e:  # scipy raises ValueError/TypeError/... for non-.mat content
        raise DataError(f"{path}: cannot read as a MATLAB .mat file: {e}") from None
    missing = [k for k in ("pos_gt_src", "jnt_missing", "headboxes_src") if k not in mat]
    if missing:
        raise DataError(f"{path}: lacks {', '.join(missing)} (not an MPII PCKh ground truth)")
    positions, jnt_missing, headboxes = mat["pos_gt_src"], mat["jnt_missing"], mat["headboxes_src"]
    n = positions.shape[-1] if positions.ndim == 3 else -1
    if positions.shape != (16, 2, n) or jnt_missing.shape != (16, n) or \
            headboxes.shape != (2, 2, n):
        raise DataError(
            f"{path}: expected pos_gt_src (16, 2, N), jnt_missing (16, N), headboxes_src "
            f"(2, 2, N); got {positions.shape}, {jnt_missing.shape}, {headboxes.shape}"
        )
    if "dataset_joints" in mat:
        names = tuple(str(np.asarray(v).reshape(-1)[0]) for v in mat["dataset_joints"].reshape(-1))
        if names != MPII_JOINTS:
            raise DataError(f"{path}: dataset_joints {names} are not the MPII order {MPII_JOINTS}")
    head_sizes = SC_BIAS * np.linalg.norm(headboxes[1] - headboxes[0], axis=0)
    return MpiiGroundTruth(
        positions=np.transpose(positions, (2, 0, 1)).astype(np.float64),
        visible=np.transpose(jnt_missing) == 0,
        head_sizes=head_sizes.astype(np.float64),
    )


def pckh_per_joint(
    predictions: np.ndarray, gt: MpiiGroundTruth, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint PCKh.

    Args:
        predictions: (N, 16, 2) in the ground truth's (1-based) frame.
        gt: the ground truth.
        threshold: fraction of the (SC_BIAS-scaled) head size.

    Returns:
        pckh (16,) float64 percentages (NaN for a joint never annotated) and counts (16,) int64.
    """
    errors = np.linalg.norm(predictions - gt.positions, axis=2)  # (N, 16)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = errors / gt.head_sizes[:, None]
        correct = (scaled <= threshold) & gt.visible
        counts = gt.visible.sum(axis=0)
        pckh = 100.0 * correct.sum(axis=0) / counts
    return pckh, counts


def evaluate_pckh(
    predictions: str | os.PathLike | np.ndarray | Sequence[Any],
    annotations: str | os.PathLike | MpiiGroundTruth,
    one_based: bool = False,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, float]:
    """PCKh per part and Mean, for each threshold.

    Args:
        predictions: (N, 16, 2|3) array, or a results file / list (``bupose.evaluation.results``),
            one person per ground-truth person, in its order.
        annotations: the ground-truth .mat file (or a loaded MpiiGroundTruth).
        one_based: predictions are already in the MATLAB 1-based frame (no +1 shift).
        thresholds: the first gives the plain names ("Head", ..., "Mean"), the others get an
            "@t" suffix ("Head@0.1", ..., "Mean@0.1").

    Returns:
        ordered name -> percentage in [0, 100].
    """
    gt = annotations if isinstance(annotations, MpiiGroundTruth) else \
        load_mpii_ground_truth(annotations)
    pred = read_mpii_predictions(predictions)
    source = str(predictions) if isinstance(predictions, (str, os.PathLike)) else "predictions"
    if len(pred) != len(gt.positions):
        raise DataError(
            f"{source}: {len(pred)} persons, but the ground truth has {len(gt.positions)} "
            "(one prediction per ground-truth person, in its order)"
        )
    if not one_based:
        pred = pred + 1.0
    stats: dict[str, float] = {}
    mean_mask = np.ones(16, dtype=bool)
    mean_mask[list(EXCLUDED_FROM_MEAN)] = False
    for i, threshold in enumerate(thresholds):
        suffix = "" if i == 0 else f"@{threshold:g}"
        pckh, counts = pckh_per_joint(pred, gt, threshold)
        for name, joints in PCKH_PARTS:
            stats[name + suffix] = float(np.mean(pckh[list(joints)]))
        weights = counts[mean_mask] / counts[mean_mask].sum()
        stats["Mean" + suffix] = float(np.nansum(pckh[mean_mask] * weights))
    return stats


def format_pckh_stats(
    stats: dict[str, float],
    num_persons: int | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> str:
    """PCKh statistics (as ``evaluate_pckh`` names them) as an aligned table: one row per
    threshold, one column per part."""
    parts = [name for name, _ in PCKH_PARTS] + ["Mean"]
    rows = [["", *parts]]
    for i, threshold in enumerate(thresholds):
        suffix = "" if i == 0 else f"@{threshold:g}"
        rows.append([f"PCKh@{threshold:g}", *(f"{stats[p + suffix]:.2f}" for p in parts)])
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows]
    who = f"{num_persons} persons, " if num_persons is not None else ""
    return f"MPII PCKh ({who}head-box normalised, SC_BIAS {SC_BIAS})\n" + "\n".join(lines)
