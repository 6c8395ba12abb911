"""The CrowdPose crowd index of an image and the easy / medium / hard buckets.

Definition (Li et al., "CrowdPose", CVPR 2019, section 3): for the n persons of an image,

    crowdIndex = 1/n * sum_i N_b(i) / N_a(i)

where N_a(i) is the number of labelled joints of person i and N_b(i) the number of joints of OTHER
persons that lie inside person i's bounding box. We count labelled joints (v > 0), boxes are the
annotation ``bbox`` [x, y, w, h] with the border included, and persons without labelled joints are
left out of the mean. On the official CrowdPose val file this formula reproduces the stored value
(to its two decimals) for 76% of the images; the rest differ in both directions, presumably
because the released file omits some of the persons the index was computed from. The official
values are not bounded (up to 3.02 in val); ``clip=True`` caps the value at 1, which leaves the
easy/medium/hard buckets unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

EASY_BELOW, HARD_FROM = 0.2, 0.8  # the CrowdPose split: easy < 0.2 <= medium < 0.8 <= hard


def crowd_index(keypoints: np.ndarray, bboxes: np.ndarray, clip: bool = False) -> float:
    """CrowdPose crowd index of one image.

    Args:
        keypoints: (N, K, 3) [x, y, v] in image pixels; v > 0 = labelled.
        bboxes: (N, 4) [x, y, w, h] in image pixels.
        clip: cap the result at 1.0.

    Returns:
        The index (0.0 for images with fewer than two labelled persons).
    """
    kps = np.asarray(keypoints, dtype=np.float64).reshape(len(bboxes), -1, 3)
    boxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    labelled = kps[..., 2] > 0  # (N, K)
    counts = labelled.sum(axis=1)
    x, y = kps[..., 0], kps[..., 1]
    ratios = []
    for i in np.flatnonzero(counts > 0):
        bx, by, bw, bh = boxes[i]
        inside = labelled & (x >= bx) & (x <= bx + bw) & (y >= by) & (y <= by + bh)
        inside[i] = False
        ratios.append(inside.sum() / counts[i])
    value = float(np.mean(ratios)) if ratios else 0.0
    return min(value, 1.0) if clip else value


def crowd_bucket(value: float) -> str:
    """"easy" (< 0.2), "medium" or "hard" (>= 0.8)."""
    if value < EASY_BELOW:
        return "easy"
    return "hard" if value >= HARD_FROM else "medium"


def bucket_counts(values: Iterable[float]) -> dict[str, int]:
    """Number of images per bucket, keys easy, medium, hard."""
    counts = {"easy": 0, "medium": 0, "hard": 0}
    for v in values:
        counts[crowd_bucket(float(v))] += 1
    return counts
