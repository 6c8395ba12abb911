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


def _adversarial(rng: np.random.Generator, kind: int, k: int, h: int, w: int, dim: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Maps built to break bounds: values > 1 and < 0, plateaus and exact ties, person regions
    whose tags differ along either frame axis, huge tag spreads, overflowing tags, -inf."""
    yy, xx = np.mgrid[0:h, 0:w]
    heat = np.zeros((k, h, w))
    for j in range(k):
        for _ in range(rng.integers(1, 6)):
            cy, cx, s = rng.integers(0, h), rng.integers(0, w), rng.uniform(1, 5)
            heat[j] += rng.uniform(-1, 3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    scale = [1.0, 30.0, 1e4, 1.0, 1e21][kind]
    regions = rng.uniform(-scale, scale, (6, dim)) * rng.choice([1.0, -1.0], (1, dim))
    band = np.minimum((xx * 3) // w + 3 * ((yy * 2) // h), 5)
    tags = regions[band][None] + rng.normal(0, 0.05 * scale, (k, h, w, dim))
    if kind == 3:  # integer values and half-integer tags: ties everywhere
        heat, tags = np.round(heat * 2) / 2, np.round(tags * 2) / 2
    heat = heat.astype(np.float32)
    if kind == 4:
        heat[rng.random(heat.shape) < 0.2] = -np.inf
    return heat, tags.astype(np.float32)


@pytest.mark.parametrize("seed", range(10))
def test_search_equals_dense_on_adversarial_maps(seed):
    rng = np.random.default_rng(seed)
    kind, dim = seed % 5, 1 + seed % 3
    shape = [(9, 70), (33, 41), (64, 64), (70, 90), (5, 3)][(seed // 2) % 5]
    heat, tags = _adversarial(rng, kind, 2, *shape, dim)
    picks = tags.reshape(-1, dim)[rng.integers(0, tags[..., 0].size, 12)]
    spread = float(np.abs(tags[np.isfinite(tags)]).max()) + 1.0
    centres = np.concatenate([
        picks, picks + rng.normal(0, 0.7, picks.shape).astype(np.float32),
        rng.uniform(-3 * spread, 3 * spread, (8, dim)),
    ]).astype(np.float32)
    joints = rng.integers(0, 2, len(centres))
    with np.errstate(over="ignore", invalid="ignore"):
        flat, vals = penalised_argmax(MapTiles(heat, tags), centres, joints)
        ref_flat, ref_vals = penalised_argmax_dense(heat, tags, centres, joints)
    positive = ref_vals > 0
    np.testing.assert_array_equal(flat[positive], ref_flat[positive])
    np.testing.assert_array_equal(vals[positive], ref_vals[positive])
    assert np.all(vals[~positive] == 0)
