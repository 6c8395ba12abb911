"""The branch-and-bound refine search equals the official full-map argmax."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.argmax import penalised_argmax, penalised_argmax_dense, penalised_scores
from bupose.decoders.tiles import MapTiles
from tests.decoders.helpers import synthetic_maps


def _official_scores(heat: np.ndarray, tags: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The expression of the official refine, verbatim in numpy terms (float32 throughout)."""
    dist = ((tags - centre[None, None, :]) ** 2).sum(axis=2) ** 0.5
    return heat - np.round(dist)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_scores_bit_identical_to_official_expression(rng, dim):
    heat, tags = synthetic_maps(rng, k=1, dim=dim)
    centre = rng.normal(size=dim).astype(np.float32)
    ours = penalised_scores(heat[0], tags[0], centre[None, None, :])
    np.testing.assert_array_equal(ours, _official_scores(heat[0], tags[0], centre))


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("shape", [(37, 45), (64, 40), (9, 70)])
def test_search_equals_dense(rng, dim, shape):
    heat, tags = synthetic_maps(rng, k=3, h=shape[0], w=shape[1], dim=dim)
    # centres: near people's tags, between them, far away, and exactly on a tag
    picks = tags.reshape(-1, dim)[rng.integers(0, tags[..., 0].size, 40)]
    centres = np.concatenate([
        picks, picks + rng.normal(0, 0.6, picks.shape), rng.uniform(-40, 40, (20, dim)),
    ]).astype(np.float32)
    joints = rng.integers(0, 3, len(centres))
    flat, vals = penalised_argmax(MapTiles(heat, tags), centres, joints)
    ref_flat, ref_vals = penalised_argmax_dense(heat, tags, centres, joints)
    positive = ref_vals > 0
    assert positive.any()
    np.testing.assert_array_equal(flat[positive], ref_flat[positive])
    np.testing.assert_array_equal(vals[positive], ref_vals[positive])
    assert np.all(vals[~positive] == 0)


def test_plateau_tie_goes_to_first_raster_pixel():
    heat = np.zeros((1, 16, 16), np.float32)
    heat[0, 9, 3:5] = 0.7  # equal maxima in one tile: first in raster order wins
    heat[0, 9, 12] = 0.7  # equal maximum in another tile, later in raster order
    tags = np.zeros((1, 16, 16, 2), np.float32)
    flat, vals = penalised_argmax(MapTiles(heat, tags), np.zeros((1, 2), np.float32),
                                  np.array([0]))
    assert flat[0] == 9 * 16 + 3 and vals[0] == np.float32(0.7)


def test_dead_region_beats_live_maximum():
    # The only positive value sits where the tag is far from c (penalty 3); a zero-valued pixel
    # whose tag equals c scores 0 > 0.9 - 3: the official argmax has value 0 (nothing added).
    heat = np.zeros((1, 24, 24), np.float32)
    heat[0, 20, 20] = 0.9
    tags = np.full((1, 24, 24, 1), 3.0, np.float32)
    tags[0, 2, 2] = 0.0
    ref_flat, ref_vals = penalised_argmax_dense(heat, tags, np.zeros((1, 1), np.float32),
                                                np.array([0]))
    _, vals = penalised_argmax(MapTiles(heat, tags), np.zeros((1, 1), np.float32), np.array([0]))
    assert ref_vals[0] == 0 and vals[0] == 0
    # without the matching zero pixel the far peak is the official answer
    tags[0, 2, 2] = 3.0
    flat, vals = penalised_argmax(MapTiles(heat, tags), np.zeros((1, 1), np.float32), np.array([0]))
    assert flat[0] == 20 * 24 + 20 and vals[0] == np.float32(0.9)
