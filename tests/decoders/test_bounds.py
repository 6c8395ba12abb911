"""The bounds and bookkeeping of the refine search, against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders.bounds import (
    NO_PIXEL,
    fold,
    groups,
    max_penalty,
    penalised_scores,
    ragged,
    upper_score,
)
from bupose.decoders.tiles import Boxes, frame_metric, to_frame


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6])
def test_upper_score_bounds_every_exact_score(rng, dim, scale):
    # E boxes of 16 float32 tags each; centres near and on the rounding edges (d ~ n + 0.5)
    n_box, n_pix = 400, 16
    tags = (rng.normal(0, 1, (n_box, 1, dim)) * scale
            + rng.normal(0, 0.3, (n_box, n_pix, dim))).astype(np.float32)
    heat = rng.uniform(-1, 2, (n_box, n_pix)).astype(np.float32)
    direction = rng.normal(size=(n_box, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    radius = rng.integers(0, 5, n_box) + 0.5 + rng.normal(0, 1e-6, n_box)
    centres = (tags[:, 0].astype(np.float64) + direction * radius[:, None]).astype(np.float32)
    frame = np.stack(to_frame(tuple(tags[..., j].astype(np.float64) for j in range(dim))), -1)
    boxes = Boxes(tuple(frame.min(axis=1).T), tuple(frame.max(axis=1).T), frame_metric(dim))
    cols = to_frame(tuple(centres[:, j].astype(np.float64) for j in range(dim)))
    bound = upper_score(heat.max(axis=1), boxes, cols)
    exact = penalised_scores(heat, tags, centres[:, None, :]).max(axis=1)
    assert np.all(bound >= exact)
    assert np.mean(bound == exact) > 0.2  # and it is not vacuous


def test_max_penalty_brute_force(rng):
    top = np.concatenate([rng.uniform(-3, 3, 300), rng.uniform(-1e5, 1e5, 100)]).astype(np.float32)
    lower = (top - rng.uniform(0, 6, 400)).astype(np.float32)
    lower[:50] = top[:50] - np.float32(1.0)  # exact integer gaps
    n = max_penalty(top, lower)
    assert np.all(np.isfinite(n))
    for t, low, m in zip(top, lower, n):
        assert np.float32(t) - np.float32(m) >= low  # n itself still reaches
        assert np.float32(t) - np.float32(m + 1) < low  # one more does not
    assert np.isinf(max_penalty(np.float32([1.0]), np.float32([-np.inf]))[0])
    assert np.isinf(max_penalty(np.float32([1e30]), np.float32([0.0]))[0])


def test_fold_keeps_best_and_first_pixel(rng):
    best = np.full(6, -np.inf, np.float32)
    flat = np.full(6, NO_PIXEL)
    seen: dict[int, list[tuple[float, int]]] = {q: [] for q in range(6)}
    for _ in range(5):
        q = np.sort(rng.integers(0, 6, 40))
        scores = rng.integers(-2, 3, 40).astype(np.float32)  # many ties
        pix = rng.integers(0, 50, 40)
        fold(q, scores, pix, best, flat)
        for a, s, p in zip(q, scores, pix):
            seen[int(a)].append((float(s), int(p)))
    for q, items in seen.items():
        if not items:
            assert best[q] == -np.inf and flat[q] == NO_PIXEL
            continue
        top = max(s for s, _ in items)
        assert best[q] == top
        assert flat[q] == min(p for s, p in items if s == top)


def test_ragged_and_groups():
    q, idx = ragged(np.array([5, 0, 9]), np.array([2, 0, 3]))
    np.testing.assert_array_equal(q, [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(idx, [5, 6, 9, 10, 11])
    counts = np.array([3, 4, 10, 1, 1, 1])
    parts = list(groups(counts, 5))
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(6))
    assert all(counts[p[:-1]].sum() < 5 for p in parts)  # a run exceeds cap by its last only
    assert list(groups(np.zeros(0, int), 5)) == []
