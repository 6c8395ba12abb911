"""The live search in small batches, and its best-first rounds, equal the full-map search."""

from __future__ import annotations

import numpy as np
import pytest

import bupose.decoders.livesearch as livesearch
import bupose.decoders.lowtiles as lowtiles
from bupose.decoders.argmax import penalised_argmax, penalised_argmax_dense
from bupose.decoders.tiles import MapTiles
from tests.decoders.helpers import synthetic_maps


def _check(heat: np.ndarray, tags: np.ndarray, centres: np.ndarray, joints: np.ndarray) -> None:
    flat, vals = penalised_argmax(MapTiles(heat, tags), centres, joints)
    ref_flat, ref_vals = penalised_argmax_dense(heat, tags, centres, joints)
    positive = ref_vals > 0
    np.testing.assert_array_equal(flat[positive], ref_flat[positive])
    np.testing.assert_array_equal(vals[positive], ref_vals[positive])
    assert np.all(vals[~positive] == 0)


def _queries(rng: np.random.Generator, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    centres = np.concatenate([tags.reshape(-1, 2)[rng.integers(0, tags[..., 0].size, 30)],
                              rng.uniform(-20, 20, (30, 2))]).astype(np.float32)
    return centres, rng.integers(0, 3, len(centres))


def test_search_in_small_chunks_equals_dense(rng, monkeypatch):
    # every batching loop (query groups, pair chunks) runs many times
    monkeypatch.setattr(livesearch, "CHUNK", 64)
    monkeypatch.setattr(lowtiles, "CHUNK", 64)
    heat, tags = synthetic_maps(rng, k=3, h=45, w=61, dim=2, people=6)
    _check(heat, tags, *_queries(rng, tags))


@pytest.mark.parametrize("rounds", [0, 1, 5])
def test_best_first_rounds_do_not_change_answers(rng, monkeypatch, rounds):
    monkeypatch.setattr(livesearch, "ROUNDS", rounds)
    heat, tags = synthetic_maps(rng, k=3, h=40, w=48, dim=2, people=8)
    _check(heat, tags, *_queries(rng, tags))
