"""Pooled maxima equal numpy; edge padding repeats the border; torch threads are restored."""

from __future__ import annotations

import numpy as np
import torch

from bupose.decoders.pooling import one_thread, pad_edge, pool_cols, pool_rows


def test_pooled_max_and_min_equal_numpy(rng):
    x = rng.normal(0, 1, (3, 24, 40)).astype(np.float32)
    rows = pool_rows(torch.from_numpy(x), 3, largest=True)
    np.testing.assert_array_equal(rows.numpy(), x.reshape(3, 3, 8, 40).max(axis=2))
    cols = pool_cols(torch.from_numpy(x), 5, 1, largest=False)
    np.testing.assert_array_equal(cols.numpy()[..., 0], x.reshape(3, 24, 5, 8).min(axis=3))


def test_pad_edge_repeats_the_last_row_and_column(rng):
    x = rng.normal(0, 1, (2, 5, 3, 2)).astype(np.float32)
    p = pad_edge(x, 8, 8)
    assert p.shape == (2, 8, 8, 2)
    np.testing.assert_array_equal(p[:, 7, 7], x[:, 4, 2])
    assert pad_edge(x, 5, 3) is x


def test_one_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with one_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
