"""Greedy OKS tracking on synthetic pose sequences: stable ids under motion and shuffled
detection order, new ids for new people, the lost-track timeout, and the OKS itself."""

from __future__ import annotations

import numpy as np
import pytest

from bupose.inference.track import PoseTracker, pose_oks
from bupose.structures.spec import get_spec

SIGMAS = get_spec("coco17").sigmas


def person(rng: np.random.Generator, centre: tuple[float, float], size: float = 80.0
           ) -> np.ndarray:
    """(17, 3) joints scattered in a size x 2*size box around ``centre``, value 1."""
    xy = np.asarray(centre) + rng.uniform(-0.5, 0.5, (17, 2)) * [size, 2 * size]
    return np.concatenate([xy, np.ones((17, 1))], axis=1)


def test_oks_formula():
    rng = np.random.default_rng(0)
    a = person(rng, (100, 100))
    assert pose_oks(a, a, SIGMAS) == pytest.approx(1.0)
    b = a.copy()
    b[:, :2] += 3.0
    area = np.prod(a[:, :2].max(0) - a[:, :2].min(0))
    expected = np.mean(np.exp(-18.0 / (2 * area * (2 * np.asarray(SIGMAS)) ** 2)))
    assert pose_oks(a, b, SIGMAS) == pytest.approx(expected)
    c = b.copy()
    c[:5, 2] = 0  # joints missing in one pose count as 0 over the joints seen in either
    assert pose_oks(a, c, SIGMAS) == pytest.approx(
        np.sum(np.exp(-18.0 / (2 * area * (2 * np.asarray(SIGMAS)) ** 2))[5:]) / 17)
    assert pose_oks(a, np.zeros((17, 3)), SIGMAS) == 0.0


def test_ids_follow_moving_people_in_any_order():
    rng = np.random.default_rng(1)
    base = [person(rng, (100 + 150 * n, 200)) for n in range(3)]
    velocity = np.array([[4.0, 0.0], [-3.0, 1.0], [0.0, -4.0]])
    tracker = PoseTracker(SIGMAS)
    for t in range(40):
        order = rng.permutation(3) if t else np.arange(3)  # new ids go in list order
        frame = np.stack([base[n] + np.r_[velocity[n] * t, 0.0] for n in order])
        frame[:, :, :2] += rng.normal(0, 1.0, (3, 17, 2))  # detection jitter
        ids = tracker.update(frame, t)
        assert list(ids) == list(order), f"frame {t}"  # person n keeps id n
    assert tracker.next_id == 3


def test_new_people_and_lost_track_timeout():
    rng = np.random.default_rng(2)
    a, b = person(rng, (100, 100)), person(rng, (400, 100))
    tracker = PoseTracker(SIGMAS, max_lost=3)
    assert list(tracker.update(a[None], 0)) == [0]
    assert list(tracker.update(np.stack([a, b]), 1)) == [0, 1]  # b is new
    assert list(tracker.update(b[None], 2)) == [1]
    assert list(tracker.update(np.zeros((0, 17, 3)), 3)) == []
    assert list(tracker.update(np.stack([a, b]), 4)) == [0, 1]  # a unseen 3 frames: kept
    assert list(tracker.update(b[None], 5)) == [1]
    assert list(tracker.update(b[None], 8)) == [1]  # frames 6-7 not given: 3 lost, kept
    assert list(tracker.update(a[None], 9)) == [2]  # a last seen at 4: timed out -> new id


def test_two_people_cannot_take_one_track_and_threshold():
    rng = np.random.default_rng(3)
    a = person(rng, (100, 100))
    tracker = PoseTracker(SIGMAS, oks_threshold=0.5)
    tracker.update(a[None])
    near = a.copy()
    near[:, :2] += 2.0
    ids = tracker.update(np.stack([near, a]))  # a is the better match for track 0
    assert list(ids) == [1, 0]
    far = a.copy()
    far[:, :2] += 60.0  # OKS below 0.5: not the same person
    assert tracker.update(far[None])[0] == 2
    with pytest.raises(ValueError):
        PoseTracker(SIGMAS, oks_threshold=1.5)


def test_velocity_carries_a_track_through_missed_frames():
    rng = np.random.default_rng(4)
    walker = person(rng, (100, 200))
    step = np.array([15.0, 0.0, 0.0])  # px per frame
    tracker = PoseTracker(SIGMAS)
    for t in range(3):
        assert list(tracker.update((walker + step * t)[None], t)) == [0]
    back = walker + step * 7  # not detected in frames 3-6
    assert pose_oks(back, walker + step * 2, SIGMAS) < 0.3  # too far for a still track
    assert list(tracker.update(back[None], 7)) == [0]
    assert list(tracker.update((walker + step * 8)[None], 8)) == [0]
