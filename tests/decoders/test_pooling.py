"""Pooled band and cell boxes equal a direct computation; torch threads are restored."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.decoders.pooling import frame_bands, one_thread, widened


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("rows", [8, 24])  # 24 bands: a partial last chunk for L = 2
def test_frame_bands_equal_direct_min_max(rng, dim, rows):
    k, w, side = 2, 48, 8
    tags = rng.normal(0, 5, (k, rows * side, w, dim)).astype(np.float32)
    if dim == 2:  # the frame, as float32 sums: (t0 + t1, t1 - t0)
        frame = np.stack([tags[..., 0] + tags[..., 1], tags[..., 1] - tags[..., 0]], axis=-1)
    else:
        frame = tags
    lo, hi, cell_lo, cell_hi = frame_bands(np.ascontiguousarray(tags), rows, 2)
    bands = frame.reshape(k, rows, side, w, dim)
    np.testing.assert_array_equal(lo, bands.min(axis=2))
    np.testing.assert_array_equal(hi, bands.max(axis=2))
    cells = frame.reshape(k, rows // 2, 2 * side, w // (2 * side), 2 * side, dim)
    np.testing.assert_array_equal(cell_lo, cells.min(axis=(2, 4)))
    np.testing.assert_array_equal(cell_hi, cells.max(axis=(2, 4)))


def test_widened_covers_rounding_and_keeps_empty_boxes():
    lo = np.float32([1.0, -3e6, np.inf])
    hi = np.float32([2.0, 5e6, -np.inf])
    wlo, whi = widened(lo, hi, True)
    assert np.all(wlo[:2] < lo[:2]) and np.all(whi[:2] > hi[:2])
    assert np.all(whi[:2] - hi[:2] >= np.maximum(np.abs(lo[:2]), np.abs(hi[:2])) * 2.0**-23)
    assert wlo[2] == np.inf and whi[2] == -np.inf  # empty stays empty
    np.testing.assert_array_equal(widened(lo, hi, False)[0], lo.astype(np.float64))


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
