"""adjust / person_scores / refine against the official fixtures and the full-map reference."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.refine import adjust, person_mean_tags, person_scores, refine
from bupose.decoders.tiles import MapTiles
from tests.decoders.helpers import SOLVER_INDEPENDENT, load_fixture, synthetic_maps


@pytest.mark.parametrize("name", SOLVER_INDEPENDENT)
def test_adjust_and_scores_equal_official(name):
    data = load_fixture(name)
    adjusted = adjust(data["matched"], data["det"])
    np.testing.assert_array_equal(adjusted, data["adjusted"])
    np.testing.assert_array_equal(person_scores(adjusted), data["scores"])
    # scores are taken before refine and do not depend on adjust
    np.testing.assert_array_equal(person_scores(data["matched"]), data["scores_adjust0_refine0"])


def test_adjust_by_hand():
    heat = np.zeros((1, 5, 5), np.float32)
    heat[0, 2, 3] = 0.5  # right neighbour larger -> x + 0.25; vertical tie -> y - 0.25
    people = np.zeros((1, 1, 4), np.float32)
    people[0, 0] = [2, 2, 0.9, 0.0]
    out = adjust(people, heat)
    np.testing.assert_array_equal(out[0, 0, :3], np.float32([2.75, 2.25, 0.9]))


@pytest.mark.parametrize("dim", [1, 2])
def test_refine_equals_dense_reference(rng, dim):
    heat, tags = synthetic_maps(rng, k=4, h=40, w=48, dim=dim)
    people = np.zeros((6, 4, 3 + dim), np.float32)
    for p in range(6):
        for j in rng.choice(4, size=rng.integers(1, 3), replace=False):
            x, y = rng.integers(0, 48), rng.integers(0, 40)
            people[p, j, :3] = [x + 0.25, y + 0.75, 0.3]
            people[p, j, 3:] = tags[j, y, x]
    fast = refine(people, heat, tags, MapTiles(heat, tags))
    slow = refine(people, heat, tags, dense=True)
    np.testing.assert_array_equal(fast, slow)
    assert (fast[:, :, 2] > 0).sum() > (people[:, :, 2] > 0).sum()


def test_mean_tag_uses_numpy_mean_order():
    # L = 1 with >= 8 joints: numpy's pairwise summation, not a running sum
    tags = np.zeros((9, 1, 9, 1), np.float32)
    values = np.float32([1e8, 1, 1, 1, 1, 1, 1, 1, -1e8])
    for j in range(9):
        tags[j, 0, j, 0] = values[j]
    people = np.zeros((1, 9, 4), np.float32)
    people[0, :, 0] = np.arange(9)
    people[0, :, 2] = 0.5
    expected = np.mean(np.stack([tags[j, 0, j] for j in range(9)]), axis=0)
    np.testing.assert_array_equal(person_mean_tags(people, tags)[0], expected)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_vectorised_means_equal_per_person_numpy_mean(rng, dim):
    """person_mean_tags / person_scores reduce many people at once; the official code calls
    np.mean per person. Same float32 sums, bit for bit, for every count of found joints."""
    k, h, w = 17, 6, 7
    tags = (rng.normal(0, 1, (k, h, w, dim)) * 10.0 ** rng.integers(-2, 6, (k, 1, 1, 1)))
    tags = tags.astype(np.float32)
    people = np.zeros((60, k, 3 + dim), np.float32)
    for p in range(60):
        joints = rng.choice(k, size=rng.integers(0, k + 1), replace=False)
        people[p, joints, 0] = rng.integers(0, w, len(joints))
        people[p, joints, 1] = rng.integers(0, h, len(joints))
        people[p, joints, 2] = rng.uniform(0.01, 1.0, len(joints)).astype(np.float32)
    ours = person_mean_tags(people, tags)
    for p in range(60):
        found = np.flatnonzero(people[p, :, 2] > 0)
        if len(found) == 0:
            assert np.isnan(ours[p]).all()
            continue
        xy = people[p, found, :2].astype(np.int32)
        picked = tags[found, xy[:, 1], xy[:, 0]]
        np.testing.assert_array_equal(ours[p], np.mean(picked, axis=0))
    reference = np.stack([np.mean(g[:, 2]) for g in people]).astype(np.float32)
    np.testing.assert_array_equal(person_scores(people), reference)
