"""match_by_tag: hand-built cases, official quirks, fixtures, and optimality on tied fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from bupose.decoders.grouping import (
    MatchStep,
    People,
    assignment_cost,
    match_by_tag,
    tag_distances,
)
from bupose.decoders.params import GroupingParams
from bupose.decoders.peaks import as_maps, find_peaks
from bupose.decoders.tiles import MapTiles
from bupose.structures.spec import get_spec
from tests.decoders.grouping_cases import make_peaks
from tests.decoders.helpers import SOLVER_DEPENDENT, SOLVER_INDEPENDENT, load_fixture

COCO_ORDER = get_spec("coco17").joint_order


def test_two_people_by_hand():
    peaks = make_peaks([
        [(10, 10, 0.9, 0.0), (50, 10, 0.8, 5.0)],
        [(52, 20, 0.7, 5.2), (12, 20, 0.6, 0.1), (90, 90, 0.05, 0.0)],  # last: below threshold
        [(11, 30, 0.5, 2.6)],  # rounds to 3 from both: tag distance > 1 -> new person
    ])
    people = match_by_tag(peaks, [0, 1, 2], GroupingParams())
    assert people.shape == (3, 3, 4)
    np.testing.assert_array_equal(people[0, :2, :2], [[10, 10], [12, 20]])
    np.testing.assert_array_equal(people[1, :2, :2], [[50, 10], [52, 20]])
    np.testing.assert_array_equal(people[2, 2], np.float32([11, 30, 0.5, 2.6]))
    assert people[0, 2, 2] == 0 and people[1, 2, 2] == 0


def test_only_first_max_people_are_candidates():
    # joint 0 creates 3 people; with max_people = 2, person 2 never receives joint 1
    peaks = make_peaks([
        [(0, 0, 0.9, 0.0), (5, 0, 0.8, 10.0), (9, 0, 0.7, 20.0)],
        [(9, 5, 0.9, 20.5)],  # within the tag threshold of person 2
    ])
    people = match_by_tag(peaks, [0, 1], GroupingParams(max_people=2))
    assert len(people) == 4 and people[3, 1, 2] > 0 and people[2, 1, 2] == 0
    ignored = match_by_tag(peaks, [0, 1], GroupingParams(max_people=2, ignore_too_much=True))
    assert len(ignored) == 3 and not (ignored[:, 1, 2] > 0).any()


def test_equal_tag_keys_collide_like_the_official_code():
    # two joint-0 detections with the same first tag value: officially one person (overwritten)
    peaks = make_peaks([[(0, 0, 0.9, 1.5), (7, 7, 0.8, 1.5)], [(1, 1, 0.9, 1.5)]])
    official = match_by_tag(peaks, [0, 1], GroupingParams())
    assert len(official) == 1 and tuple(official[0, 0, :2]) == (7, 7)
    fixed = match_by_tag(peaks, [0, 1], GroupingParams(tag_key_collisions=False))
    assert len(fixed) == 2


def test_trace_records_every_step():
    peaks = make_peaks([[(0, 0, 0.9, 0.0)], [], [(1, 1, 0.9, 0.2)]])
    trace: list[MatchStep] = []
    match_by_tag(peaks, [0, 1, 2], GroupingParams(), trace)
    assert [(s.joint, s.kind) for s in trace] == [(0, "seed"), (2, "match")]
    assert trace[1].joined.tolist() == [True] and trace[1].cost.shape == (1, 1)


def _peaks_of(data):
    heat, tags = as_maps(data["det"], data["tag"])
    return find_peaks(heat, tags, MapTiles(heat, tags), 30, 5, 0.1)


@pytest.mark.parametrize("name", SOLVER_INDEPENDENT)
def test_fixture_matched_exactly(name):
    data = load_fixture(name)
    np.testing.assert_array_equal(
        match_by_tag(_peaks_of(data), COCO_ORDER, GroupingParams()), data["matched"]
    )


def _official_steps(data, thr=0.1, tag_thr=1.0):
    """Replay the official grouping from its output: per joint step, the official state, the
    cost matrix our code builds for it, and the official joins (candidate -> person column).

    Every person row of ``matched`` was created at the step of its first joint (rows are in
    creation order); before step s a person's tags are those of its joints of earlier steps.
    """
    matched = data["matched"]
    vals, locs, tags = data["topk_val_k"][0], data["topk_loc_k"][0], data["topk_tag_k"][0]
    has = matched[:, COCO_ORDER, 2] > 0
    created = np.argmax(has, axis=1)
    assert np.all(np.diff(created) >= 0), "people are not in creation order"
    for step, joint in enumerate(COCO_ORDER):
        keep = vals[joint] > thr
        existing = np.flatnonzero(created < step)[:30]
        if not keep.any() or len(existing) == 0:
            continue
        rows = np.concatenate([locs[joint][keep], vals[joint][keep][:, None], tags[joint][keep]],
                              axis=1).astype(np.float64)
        means = np.stack([
            np.mean([matched[p, j, 3:] for j in COCO_ORDER[:step] if matched[p, j, 2] > 0], axis=0)
            for p in existing
        ]).astype(np.float32)
        dist = tag_distances(rows, means)
        cost = assignment_cost(dist, rows, True)
        joins = {}
        for c, row in enumerate(rows):
            for col, p in enumerate(existing):
                if matched[p, joint, 2] > 0 and tuple(matched[p, joint, :2]) == tuple(row[:2]):
                    joins[c] = col
        yield step, dist, cost, joins, tag_thr


def _best_cost_with(cost, dist, joins, tag_thr):
    """Minimum cost over assignments that contain the given joins and give no other candidate
    a person within the tag threshold (an official outcome must be such an assignment)."""
    big = 1e12
    constrained = cost.copy()
    for c, col in joins.items():
        constrained[c, :], constrained[:, col] = big, big
        constrained[c, col] = cost[c, col]
    others = [c for c in range(len(cost)) if c not in joins]
    constrained[others] = np.where(dist[others] < tag_thr, big, constrained[others])
    r, c = linear_sum_assignment(constrained)
    total = constrained[r, c].sum()
    return None if total >= big else total


@pytest.mark.parametrize("name", SOLVER_DEPENDENT)
def test_tied_fixtures_every_official_step_is_optimal_for_our_costs(name):
    """On the solver-dependent fixtures each official matching step is an optimal assignment
    of the cost matrix we build for the same state: our solver reaches the same cost."""
    data = load_fixture(name)
    checked = 0
    for step, dist, cost, joins, tag_thr in _official_steps(data):
        assert all(dist[c, col] < tag_thr for c, col in joins.items()), step
        official = _best_cost_with(cost, dist, joins, tag_thr)
        r, c = linear_sum_assignment(cost)
        assert official is not None, f"step {step}: official joins are not an assignment"
        assert official == pytest.approx(cost[r, c].sum(), abs=1e-6), f"step {step}"
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("name", SOLVER_DEPENDENT[:4])
def test_tied_fixtures_ours_are_optimal_and_deterministic(name):
    data = load_fixture(name)
    peaks = _peaks_of(data)
    trace: list[MatchStep] = []
    first = match_by_tag(peaks, COCO_ORDER, GroupingParams(), trace)
    np.testing.assert_array_equal(first, match_by_tag(peaks, COCO_ORDER, GroupingParams()))
    for step in trace:
        if step.kind == "match":
            r, c = linear_sum_assignment(step.cost)
            ours = step.cost[step.pairs[:, 0], step.pairs[:, 1]].sum()
            assert ours == pytest.approx(step.cost[r, c].sum(), abs=1e-9)


def test_people_mean_tags_equal_per_person_numpy_mean(rng):
    people = People(num_joints=6, tag_dim=2, capacity=12, collisions=False)
    tags = (rng.normal(0, 1, (12, 6, 2)) * rng.uniform(0.1, 1e3, (12, 1, 1))).astype(np.float32)
    counts = rng.integers(1, 7, 12)
    for p in range(12):
        people.start(0, np.zeros(5, np.float32), tags[p, 0])
        for j in range(1, counts[p]):
            people.join(p, j, np.zeros(5, np.float32), tags[p, j])
    means = people.mean_tags(12)
    for p in range(12):  # bit for bit the official per-person np.mean
        np.testing.assert_array_equal(means[p], np.mean(tags[p, : counts[p]], axis=0))
