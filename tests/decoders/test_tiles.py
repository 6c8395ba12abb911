"""Tile summaries: maxima, first-maximum pixels, tag boxes, halves, cells and NaN detection."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.tiles import CELL, MapTiles, frame_metric, to_frame
from bupose.errors import DataError


def _frame(tags: np.ndarray) -> np.ndarray:
    """(..., L) float32 tags -> (..., L) float64 exact bound-frame coordinates."""
    cols = to_frame(tuple(tags[..., j].astype(np.float64) for j in range(tags.shape[-1])))
    return np.stack(cols, axis=-1)


def _maps(rng: np.random.Generator, k: int, h: int, w: int, dim: int
          ) -> tuple[np.ndarray, np.ndarray]:
    heat = rng.normal(0, 1, (k, h, w)).astype(np.float32)
    regions = rng.uniform(-50, 50, (4, dim))
    band = (np.arange(w)[None, :] * 2 // w) + 2 * (np.arange(h)[:, None] * 2 // h)
    tags = regions[band][None] + rng.normal(0, 0.1, (k, h, w, dim))
    return heat, tags.astype(np.float32)


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


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("shape", [(19, 21), (64, 128), (70, 9)])
def test_values_boxes_and_halves_cover_the_pixels(rng, dim, shape):
    heat, tags = _maps(rng, 2, *shape, dim)
    tiles = MapTiles(heat, tags)
    gids = np.arange(tiles.max_flat.size)
    values, tile_tags = tiles.values(gids)
    pix = tiles.pixel_id(gids[:, None], np.arange(64)[None, :])
    np.testing.assert_array_equal(values, heat.ravel()[pix])  # raster order, edge-clamped
    np.testing.assert_array_equal(tile_tags, tags.reshape(-1, dim)[pix])
    frame = _frame(tile_tags)
    boxes = tiles.boxes(gids)
    lo, hi = np.stack(boxes.lo, 1)[:, None], np.stack(boxes.hi, 1)[:, None]
    assert np.all((lo <= frame) & (frame <= hi))
    slack = 2.0**-21 * np.maximum(np.abs(lo), np.abs(hi)) if dim == 2 else 0.0
    assert np.all(lo >= frame.min(axis=1, keepdims=True) - slack - 1e-12)
    assert np.all(hi <= frame.max(axis=1, keepdims=True) + slack + 1e-12)
    first, second, vmax = tiles.halves(gids)
    inside = [
        np.all((np.stack(b.lo, 1)[:, None] <= frame) & (frame <= np.stack(b.hi, 1)[:, None]), 2)
        for b in (first, second)
    ]
    assert np.all(inside[0] | inside[1])
    for half in range(2):
        held = np.where(inside[half], values, -np.inf).max(axis=1)
        assert np.all(vmax[:, half] >= held)
    np.testing.assert_array_equal(np.maximum(vmax[:, 0], vmax[:, 1]), tiles.max_flat)


@pytest.mark.parametrize("dim", [1, 2])
def test_cell_boxes_cover_their_pixels(rng, dim):
    heat, tags = _maps(rng, 2, 40, 70, dim)
    tiles = MapTiles(heat, tags)
    cells = tiles.cell_boxes()
    ch, cw = tiles.cell_grid
    side = CELL * tiles.size
    frame = _frame(tags)
    for k in range(2):
        for cy in range(ch):
            for cx in range(cw):
                part = frame[k, cy * side : (cy + 1) * side, cx * side : (cx + 1) * side]
                if part.size == 0:
                    continue
                i = (k * ch + cy) * cw + cx
                for j in range(dim):
                    assert cells.lo[j][i] <= part[..., j].min()
                    assert cells.hi[j][i] >= part[..., j].max()
    assert frame_metric(dim) == (0.5 if dim == 2 else 1.0)


def test_nan_heatmap_is_an_error():
    heat = np.zeros((1, 8, 8), np.float32)
    heat[0, 3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        MapTiles(heat, np.zeros((1, 8, 8, 2), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bad_tags_are_an_error_when_pooled(bad):
    tags = np.zeros((1, 16, 16, 2), np.float32)
    tags[0, 9, 2, 1] = bad
    tiles = MapTiles(np.ones((1, 16, 16), np.float32), tags)
    with pytest.raises(DataError, match="NaN/inf"):
        tiles.cell_boxes()
