"""Scoring results files: COCO / CrowdPose keypoint AP (``coco``), MPII PCKh (``pckh``), and the
results writers and checks (``results``)."""

from bupose.evaluation.coco import (
    COCO_STATS,
    CROWDPOSE_STATS,
    EvaluationWarning,
    KeypointEvaluation,
    detect_kind,
    evaluate_keypoints,
    format_keypoint_stats,
    score_keypoints,
)
from bupose.evaluation.pckh import evaluate_pckh, format_pckh_stats, load_mpii_ground_truth
from bupose.evaluation.results import (
    coco_entries,
    read_mpii_predictions,
    write_coco_results,
    write_mpii_results,
)

__all__ = [
    "COCO_STATS",
    "CROWDPOSE_STATS",
    "EvaluationWarning",
    "KeypointEvaluation",
    "coco_entries",
    "detect_kind",
    "evaluate_keypoints",
    "evaluate_pckh",
    "format_keypoint_stats",
    "format_pckh_stats",
    "load_mpii_ground_truth",
    "read_mpii_predictions",
    "score_keypoints",
    "write_coco_results",
    "write_mpii_results",
]
