"""The live index covers every pixel of the live tiles, along every axis."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.liveindex import HALF_WIDTH, live_index
from bupose.decoders.tiles import MapTiles, to_frame
from tests.decoders.helpers import synthetic_maps


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_entries_cover_live_pixels_and_axes_partition_them(rng, dim):
    heat, tags = synthetic_maps(rng, k=3, h=40, w=56, dim=dim, people=5)
    heat[0, :8, :8] = 0.0  # a dead tile
    tiles = MapTiles(heat, tags)
    index = live_index(tiles)
    entries = index.entries
    live = np.flatnonzero(tiles.max_flat > 0)
    np.testing.assert_array_equal(np.unique(entries.gid), live)
    values, tile_tags = tiles.values(entries.gid)
    frame = np.stack(to_frame(tuple(tile_tags[..., j].astype(np.float64) for j in range(dim))), -1)
    lo, hi = np.stack(entries.boxes.lo, 1)[:, None], np.stack(entries.boxes.hi, 1)[:, None]
    inside = np.all((lo <= frame) & (frame <= hi), axis=2)  # (E, 64)
    for gid in live:  # each pixel of a live tile is in one of its entries, under its vmax
        rows = np.flatnonzero(entries.gid == gid)
        assert np.all(inside[rows].any(axis=0))
        assert np.all(np.where(inside[rows], values[rows], -np.inf).max(axis=1)
                       <= entries.vmax[rows])
    for a, ax in enumerate(index.axes):
        every = np.sort(np.r_[ax.narrow, ax.wide])
        np.testing.assert_array_equal(every, np.arange(len(entries.gid)))
        half = (entries.boxes.hi[a] - entries.boxes.lo[a]) / 2
        assert np.all(half[ax.narrow] <= HALF_WIDTH) and np.all(half[ax.wide] > HALF_WIDTH)
        joint = entries.gid[ax.narrow] // tiles.tiles_per_joint
        assert np.all(np.diff(joint) >= 0)
        for k in range(3):
            seg = ax.key[ax.start[k] : ax.start[k + 1]]
            assert np.all(np.diff(seg) >= 0)
    np.testing.assert_array_equal(index.joint_max, heat.reshape(3, -1).max(axis=1))
