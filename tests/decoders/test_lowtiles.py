"""Dead tiles beating the live answer (value <= 0: nothing added), ties by raster order."""

from __future__ import annotations

import numpy as np

from bupose.decoders.argmax import penalised_argmax, penalised_argmax_dense
from bupose.decoders.tiles import MapTiles


def test_dead_pixel_tying_earlier_in_raster_order_wins():
    # a live pixel (value 1.0, penalty 2) scores -1; a dead pixel (value 0, penalty 1) earlier
    # in raster order also scores -1: the official argmax is the dead pixel (nothing added);
    # moved after the live pixel, the live one is the answer.
    heat = np.zeros((1, 32, 32), np.float32)
    heat[0, 20, 20] = 1.0
    tags = np.full((1, 32, 32, 1), 5.0, np.float32)
    tags[0, 20, 20] = 2.0
    tags[0, 3, 3] = 1.0
    centre = np.zeros((1, 1), np.float32)
    _, vals = penalised_argmax(MapTiles(heat, tags), centre, np.array([0]))
    assert penalised_argmax_dense(heat, tags, centre, np.array([0]))[1][0] == 0 and vals[0] == 0
    tags[0, 3, 3], tags[0, 28, 28] = 5.0, 1.0
    flat, vals = penalised_argmax(MapTiles(heat, tags), centre, np.array([0]))
    assert flat[0] == 20 * 32 + 20 and vals[0] == np.float32(1.0)


def test_far_dead_region_is_proved_not_to_beat():
    # c far from every tag: live best at penalty n; the dead regions are all farther
    heat = np.zeros((1, 64, 64), np.float32)
    heat[0, 40:44, 40:44] = 0.5
    tags = np.zeros((1, 64, 64, 2), np.float32)
    tags[..., 0], tags[..., 1] = 10.0, 10.0
    tags[0, 36:48, 36:48] = (8.0, 8.0)  # the live region is nearest to c
    centre = np.float32([[-20.0, -20.0]])
    flat, vals = penalised_argmax(MapTiles(heat, tags), centre, np.array([0]))
    ref_flat, ref_vals = penalised_argmax_dense(heat, tags, centre, np.array([0]))
    assert ref_vals[0] == np.float32(0.5) and vals[0] == ref_vals[0] and flat[0] == ref_flat[0]
