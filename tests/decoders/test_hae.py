"""HAE progressive decoding: equal to AE under the order it picks; where the order helps."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.decoders import DECODERS
from bupose.decoders.ae import decode_ae
from bupose.decoders.grouping import match_by_tag
from bupose.decoders.hae import ProgressiveChoice, decode_hae, match_progressive
from bupose.decoders.params import GroupingParams
from tests.decoders.grouping_cases import make_peaks
from tests.decoders.helpers import load_fixture

# Person A: tag 0.0 (joint 0 only). Person B: joint 0 tag 3.0 (an outlier), joints 3, 2, 1 at
# 2.65, 2.2, 2.0. In index order joint 1 (distance exactly 1.0 to B, not < 1) starts a third
# person that then takes joint 2; picked by distance (3, then 2, then 1) B's mean tag moves
# toward its other joints first and every joint joins B.
SPLIT_CASE = [
    [(10, 10, 0.9, 0.0), (40, 10, 0.8, 3.0)],
    [(41, 20, 0.9, 2.0)],
    [(42, 30, 0.9, 2.2)],
    [(43, 40, 0.9, 2.65)],
]


def test_progressive_order_keeps_a_person_together():
    peaks = make_peaks(SPLIT_CASE)
    params = GroupingParams()
    fixed = match_by_tag(peaks, [0, 1, 2, 3], params)
    assert len(fixed) == 3  # B split into {0, 3} and {1, 2}
    choices: list[ProgressiveChoice] = []
    progressive, order = match_progressive(peaks, params, choices)
    assert order == [0, 3, 2, 1]
    assert len(progressive) == 2 and (progressive[1, :, 2] > 0).all()
    # which joint type is picked when, and why (smallest distance to a person)
    assert [c.chosen for c in choices] == [0, 3, 2, 1]
    assert choices[1].distances == pytest.approx({1: 1.0, 2: 0.8, 3: 0.35})
    assert choices[2].remaining == (1, 2)


def test_equal_to_ae_under_its_own_order():
    peaks = make_peaks(SPLIT_CASE)
    progressive, order = match_progressive(peaks, GroupingParams())
    np.testing.assert_array_equal(progressive, match_by_tag(peaks, order, GroupingParams()))


def test_equal_to_ae_when_orders_coincide():
    # distances grow with the joint index, so the progressive order is 0, 1, 2, 3
    peaks = make_peaks([
        [(10, 10, 0.9, 0.0), (40, 10, 0.8, 5.0)],
        [(11, 20, 0.9, 0.1), (41, 20, 0.7, 5.1)],
        [(12, 30, 0.9, 0.3)],
        [(13, 40, 0.9, 0.6), (43, 40, 0.6, 4.3)],
    ])
    _, order = match_progressive(peaks, GroupingParams())
    assert order == [0, 1, 2, 3]
    np.testing.assert_array_equal(
        match_progressive(peaks, GroupingParams())[0],
        match_by_tag(peaks, range(4), GroupingParams()),
    )


def test_fixture_decode_equals_ae_with_the_chosen_order():
    data = load_fixture("000000040083")
    choices: list[ProgressiveChoice] = []
    grouped, scores = DECODERS.get("hae")(data["det"], data["tag"], GroupingParams(), None,
                                          choices=choices)
    order = [c.chosen for c in choices if c.chosen >= 0]
    assert sorted(order) == sorted(set(order)) and order != sorted(order)
    ae_grouped, ae_scores = decode_ae(data["det"], data["tag"], GroupingParams(), order)
    np.testing.assert_array_equal(grouped, ae_grouped)
    np.testing.assert_array_equal(scores, ae_scores)


def test_degenerate_inputs():
    # no candidates at all; candidates of one joint type only; a type emptied mid-way
    empty = make_peaks([[(0, 0, 0.05, 0.0)], [(1, 1, 0.0, 0.0)]])
    grouped, order = match_progressive(empty, GroupingParams())
    assert grouped.shape == (0, 2, 4) and order == []
    single = make_peaks([[(0, 0, 0.05, 0.0)], [(1, 1, 0.5, 0.0), (5, 5, 0.4, 9.0)]])
    grouped, order = match_progressive(single, GroupingParams())
    assert len(grouped) == 2 and order == [1]
    # every real distance > 10: the reference would pick an empty type (sentinel 10) and crash
    far = make_peaks([[(0, 0, 0.9, 0.0)], [], [(1, 1, 0.9, 50.0)]])
    grouped, order = match_progressive(far, GroupingParams())
    assert len(grouped) == 2 and order == [0, 2]
    # ignore_too_much with max_people people: nothing more is matched
    full = make_peaks([[(0, 0, 0.9, 0.0), (1, 0, 0.8, 5.0)], [(2, 2, 0.9, 0.1)]])
    grouped, order = match_progressive(full, GroupingParams(max_people=2, ignore_too_much=True))
    assert order == [0] and len(grouped) == 2


def test_decode_hae_on_blank_maps():
    grouped, scores = decode_hae(np.zeros((3, 16, 16), np.float32),
                                 np.zeros((3, 16, 16, 2), np.float32))
    assert grouped.shape == (0, 3, 5) and scores.shape == (0,)


# ---------------------------------------------------------------------------------------------
# Hand-worked groupings: every expected person below was worked out on paper from the rules
# (ALGORITHMS.md §3.7: seed with the first joint type that has candidates; then pick the remaining
# type whose best candidate is nearest, in raw tag distance, to a person's mean tag, first on
# ties; cost round(D) * 100 - val, Hungarian; join only when D < 1.0, else start a person), not
# from the fixed-order matcher. Maps are single-pixel peaks, adjust and refine off, so the
# decoder returns exactly the candidates' positions, values and tags.

NO_POST = GroupingParams(adjust=False, refine=False)


def _maps(per_joint, h: int = 48, w: int = 64):
    """(K, h, w) heatmaps with one pixel per candidate and (K, h, w, 1) tags."""
    heat = np.zeros((len(per_joint), h, w), np.float32)
    tags = np.zeros((len(per_joint), h, w, 1), np.float32)
    for j, peaks in enumerate(per_joint):
        for x, y, v, t in peaks:
            heat[j, y, x], tags[j, y, x, 0] = v, t
    return heat, tags


def _people(grouped: np.ndarray) -> list[dict[int, tuple[int, int]]]:
    """Each person as {joint: (x, y)} (joints with value > 0), in creation order."""
    return [{j: (int(p[j, 0]), int(p[j, 1])) for j in range(len(p)) if p[j, 2] > 0}
            for p in grouped]


def _decode_hae(per_joint):
    choices: list[ProgressiveChoice] = []
    heat, tags = _maps(per_joint)
    grouped, scores = decode_hae(heat, tags, NO_POST, choices=choices)
    return _people(grouped), [c.chosen for c in choices if c.chosen >= 0], choices


def test_hand_worked_split_a_far_candidate_starts_its_own_person():
    """Seeds A (tag 0) and B (tag 5). Iteration 1: joint 2's d (5.2) is 0.2 from B, joint 1's
    best is c1 (0.3 from A): joint 2 goes first, d joins B (mean 5.1). Then joint 1: costs
    c1 -> A round(0.3) = 0 -> -0.8, c1 -> B 5 -> 499.2, c2 (2.7) -> A 3 -> 299.3, c2 -> B
    round(2.4) = 2 -> 199.3; the assignment c1 -> A, c2 -> B, but |2.7 - 5.1| = 2.4 >= 1, so c2
    starts a third person."""
    people, order, choices = _decode_hae([
        [(10, 10, 0.9, 0.0), (50, 10, 0.9, 5.0)],
        [(12, 20, 0.8, 0.3), (30, 20, 0.7, 2.7)],
        [(52, 30, 0.9, 5.2)],
    ])
    assert order == [0, 2, 1]
    assert choices[1].distances == pytest.approx({1: 0.3, 2: 0.2}, abs=1e-6)
    assert people == [{0: (10, 10), 1: (12, 20)}, {0: (50, 10), 2: (52, 30)}, {1: (30, 20)}]


def test_hand_worked_merge_the_nearest_joint_first_keeps_a_person_whole():
    """Seeds A (0.0) and B (3.0). Distances to B: joint 3 (2.65) 0.35, joint 2 (2.2) 0.8,
    joint 1 (2.0) 1.0 -> joint 3 joins B (mean 2.825); then joint 2 (0.625 < joint 1's 0.825)
    joins (mean 7.85 / 3 = 2.6167); then joint 1 at 0.6167 < 1 joins: B has all four joints.
    The fixed order 0, 1, 2, 3 instead sees joint 1 at exactly 1.0 from B (not < 1): it starts
    a person that joint 2 (0.2 away) joins, while joint 3 joins B (0.35 against 0.55)."""
    people, order, _ = _decode_hae(SPLIT_CASE)
    assert order == [0, 3, 2, 1]
    b = {0: (40, 10), 1: (41, 20), 2: (42, 30), 3: (43, 40)}
    assert people == [{0: (10, 10)}, b]
    heat, tags = _maps(SPLIT_CASE)
    fixed, _ = decode_ae(heat, tags, NO_POST)
    assert _people(fixed) == [{0: (10, 10)}, {0: (40, 10), 3: (43, 40)},
                              {1: (41, 20), 2: (42, 30)}]


def test_hand_worked_dynamic_order_with_a_tie_and_a_moving_mean():
    """One person seeded by joint 0 (tag 0). Joint 1 (0.5), joint 2 (0.3), joint 3 (0.3):
    2 and 3 tie at 0.3 -> the first in index order, 2; the mean becomes 0.15, so joint 3
    (0.15) beats joint 1 (0.35); the mean becomes 0.2 and joint 1 (0.3) comes last. The order
    0, 2, 3, 1 is not the fixed 0, 1, 2, 3; everyone joins the one person. A joint type without
    candidates (joint 4) is skipped in its own iteration and never chosen."""
    people, order, choices = _decode_hae([
        [(5, 5, 0.9, 0.0)], [(6, 15, 0.9, 0.5)], [(7, 25, 0.9, 0.3)], [(8, 35, 0.9, 0.3)], [],
    ])
    assert order == [0, 2, 3, 1]
    assert choices[1].distances == pytest.approx({1: 0.5, 2: 0.3, 3: 0.3}, abs=1e-6)
    assert choices[2].distances == pytest.approx({1: 0.35, 3: 0.15}, abs=1e-6)
    assert choices[3].distances == pytest.approx({1: 0.3}, abs=1e-6)
    assert (choices[4].chosen, choices[4].remaining, choices[4].distances) == (-1, (4,), {})
    assert people == [{0: (5, 5), 1: (6, 15), 2: (7, 25), 3: (8, 35)}]
