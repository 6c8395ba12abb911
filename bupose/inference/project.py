"""Back-projection of decoded people from heatmap pixels to the original image.

The official ``get_final_preds`` / ``transform_preds`` (HigherHRNet ``lib/utils/transforms.py``):
every joint, found or not, goes through the inverse of the test-time resize affine
(``center``, ``scale`` in 200-px units, output size = the heatmap size); the other columns
(value, tags) are kept unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bupose.errors import DataError
from bupose.structures.affine import affine_from_center_scale


def back_project(
    grouped: np.ndarray,
    center: Sequence[float] | np.ndarray,
    scale: Sequence[float] | np.ndarray | float,
    map_wh: Sequence[int] | np.ndarray,
) -> np.ndarray:
    """Map people from heatmap pixels to image pixels (official ``get_final_preds``).

    Args:
        grouped: (P, K, C >= 2) people, columns 0 and 1 = x, y in heatmap pixels.
        center: (2,) resize centre in image pixels (official ``center``).
        scale: (2,) resize box size in 200-px units (official ``scale``), or a scalar.
        map_wh: (W, H) of the heatmaps the people were decoded from.

    Returns:
        (P, K, C) array of the input dtype: x, y in image pixels, other columns copied.
    """
    people = np.asarray(grouped)
    if people.ndim != 3 or people.shape[2] < 2:
        raise DataError(f"back_project: expected people of shape (P, K, >=2), got {people.shape}")
    inverse = affine_from_center_scale(center, scale, 0.0, tuple(map_wh), inverse=True)
    out = people.copy()
    x = people[..., 0].astype(np.float64)
    y = people[..., 1].astype(np.float64)
    out[..., 0] = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
    out[..., 1] = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
    return out
