"""Hand-built peak sets for the grouping tests."""

from __future__ import annotations

import numpy as np

from bupose.decoders.peaks import Peaks


def make_peaks(per_joint: list[list[tuple[float, float, float, float]]]) -> Peaks:
    """Peaks from per-joint lists of (x, y, val, tag) with L = 1 (rows padded with zeros)."""
    m = max(len(p) for p in per_joint)
    vals = np.zeros((len(per_joint), m), np.float32)
    locs = np.zeros((len(per_joint), m, 2), np.int64)
    tags = np.zeros((len(per_joint), m, 1), np.float32)
    for j, peaks in enumerate(per_joint):
        for i, (x, y, v, t) in enumerate(peaks):
            vals[j, i], locs[j, i], tags[j, i, 0] = v, (x, y), t
    return Peaks(vals, locs, tags)
