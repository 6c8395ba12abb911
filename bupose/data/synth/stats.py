"""Counts of a COCO-format keypoint annotation file (synthetic or any other)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bupose.data.synth.crowd_index import bucket_counts
from bupose.data.validate import check_keypoint_annotations
from bupose.errors import DataError


def keypoint_stats(data: dict[str, Any], source: str = "annotation file") -> dict[str, Any]:
    """Counts of images, persons and keypoints, and crowdIndex buckets when present.

    Args:
        data: a loaded COCO keypoint JSON (``images``, ``annotations``).
        source: the file name, for error messages.

    Raises:
        DataError: the file fails ``check_keypoint_annotations`` (names the file and entry).

    Returns:
        dict with images, persons (annotations), persons_labelled (num_keypoints > 0),
        crowd (iscrowd=1 regions), keypoints (labelled, v > 0), visible (v = 2),
        occluded (v = 1), and crowd_index: {easy, medium, hard, mean} or None when no image has
        a crowdIndex.
    """
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DataError(f"{source}: not a COCO annotation file (needs 'images' and "
                        "'annotations')")
    _, anns, _ = check_keypoint_annotations(data, source)
    visible = occluded = labelled_persons = crowd = 0
    for ann in anns:
        if ann.get("iscrowd", 0):
            crowd += 1
        v = np.asarray(ann.get("keypoints", []), dtype=np.float64).reshape(-1, 3)[:, 2]
        visible += int(np.sum(v == 2))
        occluded += int(np.sum(v == 1))
        labelled_persons += int(np.any(v > 0))
    values = [im["crowdIndex"] for im in data["images"] if "crowdIndex" in im]
    buckets: dict[str, Any] | None = None
    if values:
        buckets = {**bucket_counts(values), "mean": float(np.mean(values))}
    return {
        "images": len(data["images"]),
        "persons": len(anns),
        "persons_labelled": labelled_persons,
        "crowd": crowd,
        "keypoints": visible + occluded,
        "visible": visible,
        "occluded": occluded,
        "crowd_index": buckets,
    }


def format_stats(stats: dict[str, Any]) -> str:
    """Human-readable lines for ``keypoint_stats``."""
    lines = [
        f"images:              {stats['images']}",
        f"persons:             {stats['persons']} ({stats['persons_labelled']} with keypoints, "
        f"{stats['crowd']} crowd regions)",
        f"labelled keypoints:  {stats['keypoints']} ({stats['visible']} visible v=2, "
        f"{stats['occluded']} occluded v=1)",
    ]
    ci = stats["crowd_index"]
    if ci is None:
        lines.append("crowdIndex:          not present")
    else:
        lines.append(f"crowdIndex:          easy (<0.2) {ci['easy']}, medium {ci['medium']}, "
                     f"hard (>=0.8) {ci['hard']}; mean {ci['mean']:.3f}")
    return "\n".join(lines)
