"""MPII PCKh of a top-down model, as the CAL reference validates MPII (``dataset/mpii.py``).

Each annotated person is cropped with the box the reference derives from the annotation
(``topdown.mpii_center_scale``: centre moved down by 15 * scale, scale x 1.25, square), decoded
as every CAL box (flip fusion, argmax + offset, back-projection) without OKS-NMS, and the
(N, 16, 2) predictions, one per person in annotation order, go to the existing PCKh evaluator
(``bupose.evaluation.pckh``; +1 to the MATLAB frame, head-box normalised, SC_BIAS 0.6).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from bupose.evaluation.pckh import THRESHOLDS, MpiiGroundTruth, evaluate_pckh
from bupose.inference.topdown import TopDownPredictor


def predict_mpii(predictor: TopDownPredictor, reader: Any) -> np.ndarray:
    """Keypoints of every annotated person of an MPII reader, in its order.

    Args:
        predictor: a TopDownPredictor of a 16-joint model (MPII16 spec).
        reader: ``bupose.data.mpii.MpiiKeypoints`` (samples carry ``centers`` / ``scales``).

    Returns:
        (N, 16, 3) float32 [x, y, heatmap maximum] in 0-based image px.
    """
    samples = (reader[i] for i in range(len(reader)))
    people = [poses.keypoints for poses in predictor.predict_samples(samples, nms=False)]
    k = predictor.spec.num_keypoints
    return np.concatenate(people) if people else np.zeros((0, k, 3), np.float32)


def mpii_pckh(
    predictor: TopDownPredictor,
    reader: Any,
    ground_truth: str | os.PathLike | MpiiGroundTruth,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, float]:
    """PCKh (default @0.5 and @0.1) of the predictor on the reader's persons.

    Args:
        predictor, reader: as ``predict_mpii``.
        ground_truth: the PCKh ground truth (.mat with ``pos_gt_src``, ``jnt_missing``,
            ``headboxes_src`` or a loaded ``MpiiGroundTruth``) of the same persons, same order.

    Returns:
        ``evaluate_pckh``'s statistics (Head ... Mean, Head@0.1 ... Mean@0.1).
    """
    predictions = predict_mpii(predictor, reader)
    return evaluate_pckh(predictions[..., :2], ground_truth, thresholds=thresholds)
