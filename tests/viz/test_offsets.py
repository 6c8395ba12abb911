"""SimplePose V2 --show-maps pictures: the stride-4 maps land where the back-projection says."""

from __future__ import annotations

import numpy as np

from bupose.viz.offsets import heatmaps_to_image


def test_heatmap_cell_lands_at_back_projected_pixel() -> None:
    maps = np.zeros((1, 40, 40), np.float32)
    maps[0, 10, 20] = 1.0
    offset, scale = np.array([-8.0, -24.0]), np.array([0.5, 0.5])
    image = heatmaps_to_image(maps, (300, 300), offset, scale)
    y, x = np.unravel_index(np.argmax(image[0]), image.shape[1:])
    # cell (10, 20) = input pixel (81.5, 41.5) -> image ((81.5 - 8) / 0.5, (41.5 - 24) / 0.5)
    assert abs(x - 147) <= 1 and abs(y - 35) <= 1
