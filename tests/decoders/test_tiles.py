"""Tile maxima, tile halves, their tag grid (compiled kernels) and NaN/inf detection."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders import kernels
from bupose.decoders.argmax import penalised_argmax, tag_grid
from bupose.decoders.taggrid import build_grid
from bupose.decoders.tilebox import tile_halves
from bupose.decoders.tiles import MapTiles
from bupose.errors import DataError


def _tile(x: np.ndarray, t: int, tw: int) -> np.ndarray:
    ty, tx = divmod(t, tw)
    return x[ty * 8 : ty * 8 + 8, tx * 8 : tx * 8 + 8]


@pytest.mark.parametrize("shape", [(19, 21), (64, 128), (70, 9), (5, 3)])
def test_tile_maxima(rng, shape):
    heat = rng.normal(0, 1, (2, *shape)).astype(np.float32)
    tiles = MapTiles(heat, np.zeros((2, *shape, 1), np.float32))
    tw = -(-shape[1] // 8)
    assert tiles.max.shape == (2, -(-shape[0] // 8) * tw)
    for k in range(2):
        for t in range(tiles.max.shape[1]):
            assert tiles.max[k, t] == _tile(heat[k], t, tw).max()


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("shape", [(19, 21), (130, 70), (70, 9)])
def test_tile_halves_cover_their_pixels(rng, dim, shape):
    regions = rng.uniform(-30, 30, (3, dim))
    band = np.minimum(np.arange(shape[1]) * 3 // shape[1], 2)  # people side by side
    tags = (regions[band][None, None] + rng.normal(0, 0.05, (2, *shape, dim))).astype(np.float32)
    heat = rng.normal(0, 1, (2, *shape)).astype(np.float32)
    tiles = MapTiles(heat, tags)
    lo, hi, vmax, finite = tile_halves(heat, tags, tiles.max, 8)
    assert finite
    tw, split = -(-shape[1] // 8), 0
    for k in range(2):
        for t in range(tiles.max.shape[1]):
            pix, val = _tile(tags[k], t, tw).reshape(-1, dim), _tile(heat[k], t, tw).ravel()
            halves = [e for e in (2 * t, 2 * t + 1) if lo[k, e, 0] <= hi[k, e, 0]]
            split += len(halves) == 2
            inside = [np.all((pix >= lo[k, e]) & (pix <= hi[k, e]), axis=1) for e in halves]
            assert np.any(inside, axis=0).all()  # every pixel lies in a half's box
            assert max(vmax[k, e] for e in halves) == val.max() == tiles.max[k, t]
            for e, box in zip(halves, inside):
                assert vmax[k, e] == val[box].max()  # each half's maximum is its pixels'
                np.testing.assert_array_equal(lo[k, e], pix[box].min(axis=0))
                people = len(np.unique(_tile(np.broadcast_to(band, shape), t, tw)))
                if len(halves) == 2 and people == 2:  # then each half holds one person
                    assert np.all(hi[k, e] - lo[k, e] < 1.0)
    assert split > 0


def test_grid_groups_live_and_dead_entries_apart(rng):
    tags = rng.uniform(-20, 20, (2, 48, 64, 2)).astype(np.float32)
    heat = rng.normal(0, 1, (2, 48, 64)).astype(np.float32)
    tiles = MapTiles(heat, tags)
    lo, hi, vmax, _ = tile_halves(heat, tags, tiles.max, 8)
    grid = build_grid(lo, hi, vmax, tiles.max)
    assert tag_grid(tiles).ngroups.tolist() == grid.ngroups.tolist()
    for k in range(2):
        real = np.flatnonzero(lo[k, :, 0] <= hi[k, :, 0])
        n = grid.start[k, grid.ngroups[k]]
        assert n == len(real) and np.all(np.bincount(grid.tile[k, :n], minlength=48) ==
                                         np.bincount(real // 2, minlength=48))
        for g in range(grid.ngroups[k]):
            part = slice(grid.start[k, g], grid.start[k, g + 1])
            assert np.all((grid.vmax[k, part] > 0) == (g < grid.nlive[k]))  # live first
            assert grid.gmax[k, g] == grid.vmax[k, part].max()
            np.testing.assert_array_equal(grid.glo[k, :, g], grid.lo[k, :, part].min(axis=1))
            np.testing.assert_array_equal(grid.ghi[k, :, g], grid.hi[k, :, part].max(axis=1))
            width = grid.ghi[k, :, g] - grid.glo[k, :, g]
            assert width.max() < 40  # one cell of the grid (plus the entries' half-widths)


def test_nan_heatmap_is_an_error():
    heat = np.zeros((1, 8, 8), np.float32)
    heat[0, 3, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        MapTiles(heat, np.zeros((1, 8, 8, 2), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_bad_tags_are_an_error_when_searched(bad):
    tags = np.zeros((1, 16, 16, 2), np.float32)
    tags[0, 9, 2, 1] = bad
    tiles = MapTiles(np.ones((1, 16, 16), np.float32), tags)
    with pytest.raises(DataError, match="NaN/inf"):
        penalised_argmax(tiles, np.zeros((1, 2), np.float32), np.array([0]))


def test_kernels_cover_numpy_sum_orders():
    assert kernels.supported(1) and kernels.supported(128) and not kernels.supported(129)
