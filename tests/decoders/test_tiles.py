"""Tile summaries: maxima, first-maximum pixels and NaN detection."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.tiles import MapTiles
from bupose.errors import DataError


def test_tile_max_and_first_raster_maximum(rng):
    heat = rng.random((2, 19, 21)).astype(np.float32)
    heat[1, 3, 5] = heat[1, 2, 6] = 5.0  # tie inside tile 0: (2, 6) comes first in raster order
    tiles = MapTiles(heat, np.zeros((2, 19, 21, 1), np.float32))
    assert tiles.max.shape == (2, 3 * 3)
    assert tiles.reps(np.array([9]))[0] == 19 * 21 + 2 * 21 + 6  # global ids: joint 1, tile 0
    for k in range(2):
        for t in range(9):
            ty, tx = divmod(t, 3)
            block = heat[k, ty * 8 : ty * 8 + 8, tx * 8 : tx * 8 + 8]
            assert tiles.max[k, t] == block.max()
            assert heat.ravel()[tiles.reps(np.array([k * 9 + t]))[0]] == block.max()


def test_nan_heatmap_is_an_error():
    heat = np.zeros((1, 8, 8), np.float32)
    heat[0, 3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        MapTiles(heat, np.zeros((1, 8, 8, 2), np.float32))
