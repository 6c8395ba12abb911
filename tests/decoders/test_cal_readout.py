"""Baseline read-outs of top-down heatmaps against a Gaussian with a known sub-pixel centre."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.cal import CalParams, decode_cal
from bupose.decoders.cal_readout import read_out


def gaussian_maps(cx: float, cy: float, sigma: float = 1.5, h: int = 16, w: int = 12):
    ys, xs = np.mgrid[0:h, 0:w]
    m = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2)).astype(np.float32)
    return m[None, None]


def test_baselines_locate_a_subpixel_peak():
    hm = gaussian_maps(5.3, 6.7)
    off = np.zeros((1, 2, 16, 12), np.float32)
    off[0, 0, 7, 5], off[0, 1, 7, 5] = 0.2, -0.2  # offset branch at the argmax cell (5, 7)
    argmax, val = read_out(hm, off, "argmax")
    assert argmax[0, 0].tolist() == [5.0, 7.0] and val[0, 0, 0] == hm.max()
    quarter, _ = read_out(hm, off, "quarter")
    assert quarter[0, 0].tolist() == [5.25, 6.75]
    dark, _ = read_out(hm, off, "dark")
    assert np.abs(dark[0, 0] - [5.3, 6.7]).max() < 0.05
    offset, _ = read_out(hm, off, "offset", locref_stdev=1.5)
    assert np.allclose(offset[0, 0], [5.3, 6.7])


def test_non_positive_map_reads_cell_zero_and_unknown_name_fails():
    hm = -np.ones((1, 1, 16, 12), np.float32)
    coords, _ = read_out(hm, None, "dark")
    assert coords[0, 0].tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="unknown read-out"):
        read_out(hm, None, "soft")


@pytest.mark.parametrize("readout", ["argmax", "quarter", "dark"])
def test_decode_cal_with_a_baseline_readout(readout):
    hm = np.concatenate([gaussian_maps(5.3, 6.7)] * 17, axis=1)
    off = np.zeros((1, 34, 16, 12), np.float32)
    args = (np.array([[100.0, 100.0]]), np.array([[0.6, 0.8]]), np.ones(1), np.zeros(1))
    base = decode_cal(hm, off, *args, params=CalParams(readout="argmax"))
    other = decode_cal(hm, off, *args, params=CalParams(readout=readout))
    assert other.coords_hm.shape == base.coords_hm.shape
    moved = np.abs(other.coords_hm - base.coords_hm).max()
    assert (moved == 0) == (readout == "argmax")
