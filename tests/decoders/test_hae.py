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
