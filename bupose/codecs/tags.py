"""Joint indices for the associative-embedding tag loss (ALGORITHMS.md §2.2 "joints encoder").

Layout (differs from the official packing on purpose; the AE and HAE losses read it, see
``bupose.losses.ae``): row p = person p,
slot k = joint type k (one slot per joint type, not packed), value [k*h*w + y*w + x, valid] with
(x, y) = (int(x), int(y)) the same integer cell the heatmap targets use. The official encoder
crashes on more than ``max_people`` people; here the extra people are dropped with a warning.
"""

from __future__ import annotations

import warnings

import numpy as np

from bupose.codecs.gaussian import peak_cells


def encode_tag_indices(
    keypoints: np.ndarray, size_wh: tuple[int, int], max_people: int = 30
) -> np.ndarray:
    """Flat tag-map indices of every encodable joint.

    Args:
        keypoints: (N, K, 3) [x, y, v] in map pixels of the tag maps' resolution.
        size_wh: tag map (w, h).
        max_people: M, rows of the output.

    Returns:
        (M, K, 2) int64 [k*h*w + y*w + x, valid]; zeros where not encodable (v == 0, or the cell
        outside the map) and in unused rows. Row p is person p while N <= M. When N > M, people
        without any encodable joint are removed first; if more than M remain, the first M are kept
        and a warning names how many were dropped.
    """
    w, h = size_wh
    num_joints = np.shape(keypoints)[1]
    out = np.zeros((max_people, num_joints, 2), dtype=np.int64)
    cells, valid = peak_cells(keypoints, size_wh)
    rows = np.arange(valid.shape[0])
    if len(rows) > max_people:
        rows = rows[valid.any(axis=1)]
        if len(rows) > max_people:
            warnings.warn(
                f"{len(rows)} people with visible joints, more than max_people={max_people}: "
                f"dropping the last {len(rows) - max_people} from the tag targets",
                stacklevel=2,
            )
            rows = rows[:max_people]
    joint = np.arange(num_joints, dtype=np.int64)
    for row, p in enumerate(rows):
        flat = joint * (h * w) + cells[p, :, 1] * w + cells[p, :, 0]
        out[row, :, 0] = np.where(valid[p], flat, 0)
        out[row, :, 1] = valid[p]
    return out


def decode_tag_indices(
    tag_indices: np.ndarray, size_wh: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of ``encode_tag_indices`` for the valid entries.

    Args:
        tag_indices: (M, K, 2) int64 [k*h*w + y*w + x, valid].
        size_wh: tag map (w, h).

    Returns:
        jxy: (M, K, 3) int64 [joint type k, x, y] (zeros where not valid).
        valid: (M, K) bool.
    """
    w, h = size_wh
    flat = np.asarray(tag_indices)[..., 0]
    valid = np.asarray(tag_indices)[..., 1] > 0
    k, rest = np.divmod(flat, h * w)
    y, x = np.divmod(rest, w)
    jxy = np.stack([k, x, y], axis=-1) * valid[..., None]
    return jxy.astype(np.int64), valid
