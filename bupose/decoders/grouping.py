"""Grouping of top-k peaks into people by their tags (the official ``match_by_tag``).

For each joint type in turn, its candidates (peaks above the detection threshold) are matched to
the first ``max_people`` people created so far: cost = round(L2 tag distance to the person's mean
tag) * 100 - value, minimum-cost assignment, and a matched candidate joins its person only when
the raw distance is below the tag threshold; every other candidate starts a new person.

Reproduced from the official code (HigherHRNet ``lib/core/group.py`` at aa23881, mmpose 0.x):
* people are rows in creation order; only the first ``max_people`` ever receive joints;
* a person's tag is the float32 ``np.mean`` of the tags it received, in the order received;
  distances are float64, the cost and threshold tests are the official expressions;
* new people are created in candidate (top-k) order;
* ``tag_key_collisions``: the official code keys people by the float value of their first tag
  component, so a new person whose key equals an existing one overwrites that person's joint and
  resets its tag list (see GroupingParams).
Assignment (``GroupingParams.solver``):
* "scipy" (default): ``scipy.optimize.linear_sum_assignment`` (loaded by ``bupose.decoders.lsap``)
  on the unpadded (N, P) matrix instead of the pure-Python munkres on a matrix padded with 1e10
  columns. Both find a minimum-cost assignment that gives every candidate (N <= P) or every person
  (N > P) a partner, so the optimum is the same. When several assignments are optimal (the -value
  terms cancel whenever every candidate gets a real person, so ties between equal rounded
  distances are common) ours is scipy's deterministic choice (shortest augmenting paths) for the
  matrix with rows = candidates in top-k order and columns = people in creation order; munkres
  1.1.4 may pick another optimum, and then the people differ (different joins, possibly a
  different number of people).
* "munkres": ``bupose.decoders.munkres``, same optimum with the official tie-breaking: the
  official people on every fixture, including the tied ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bupose.decoders.lsap import linear_sum_assignment
from bupose.decoders.munkres import munkres_pairs
from bupose.decoders.params import GroupingParams
from bupose.decoders.peaks import Peaks


@dataclass
class MatchStep:
    """What one joint type's matching did (for tests and debugging).

    Attributes:
        joint: joint type index.
        kind: "seed" (no people yet: every candidate starts a person), "match", or "skipped"
            (``ignore_too_much`` with ``max_people`` people).
        num_candidates: N, candidates above the detection threshold.
        num_people: P, people that were matching candidates (the first ``max_people``).
        distance: (N, P) float64 raw tag distances.
        cost: (N, P) float64 assignment costs.
        pairs: (A, 2) int64 assigned (candidate, person column) pairs.
        person: (N,) int64 person row each candidate went to (joined or created).
        joined: (N,) bool, True when the candidate joined an existing person.
    """

    joint: int
    kind: str
    num_candidates: int
    num_people: int
    distance: np.ndarray
    cost: np.ndarray
    pairs: np.ndarray
    person: np.ndarray
    joined: np.ndarray


def tag_distances(rows: np.ndarray, means: np.ndarray) -> np.ndarray:
    """(N, 3 + L) float64 candidate rows, (P, L) float32 mean tags -> (N, P) float64 L2."""
    diff = rows[:, None, 3:] - means[None, :, :]
    return np.linalg.norm(diff, ord=2, axis=2)


def assignment_cost(distance: np.ndarray, rows: np.ndarray, use_val: bool) -> np.ndarray:
    """The official cost: round(distance) * 100 - value, or the raw distance."""
    if use_val:
        return np.round(distance) * 100 - rows[:, 2:3]
    return distance.copy()


def solve_assignment(cost: np.ndarray, solver: str = "scipy") -> np.ndarray:
    """Minimum-cost assignment of an (N, P) matrix -> (A, 2) int64 pairs, by row.

    "scipy": every row (N <= P) or every column (N > P) gets a partner. "munkres": the official
    solver's choice among tied optima (``bupose.decoders.munkres``).
    """
    if solver == "munkres":
        return munkres_pairs(cost)
    if cost.size == 0:
        return np.zeros((0, 2), np.int64)
    r, c = linear_sum_assignment(cost)
    return np.stack([r, c], axis=1).astype(np.int64)


class People:
    """People being grouped: joints, received tags and the official float keys.

    Attributes:
        joints: (capacity, K, 3 + L) float32 rows [x, y, val, tags...], zeros = missing.
        count: number of people created.
    """

    def __init__(self, num_joints: int, tag_dim: int, capacity: int, collisions: bool) -> None:
        self.joints = np.zeros((capacity, num_joints, 3 + tag_dim), np.float32)
        self._tags = np.zeros((capacity, num_joints + 1, tag_dim), np.float32)
        self._num_tags = np.zeros(capacity, np.int64)
        self._means = np.zeros((capacity, tag_dim), np.float32)
        self._stale = np.zeros(capacity, bool)
        self._keys: dict[float, int] | None = {} if collisions else None
        self.count = 0

    def mean_tags(self, n: int) -> np.ndarray:
        """(n, L) float32 mean tags of people 0..n-1 (official np.mean over the tag list).

        People with the same number of tags are averaged at once: np.mean over axis 1 of a
        (G, m, L) array sums in the order of each person's np.mean over axis 0 (tested)."""
        stale = np.flatnonzero(self._stale[:n])
        counts = self._num_tags[stale]
        for m in np.unique(counts):
            group = stale[counts == m]
            self._means[group] = np.mean(self._tags[group, :m], axis=1)
        self._stale[stale] = False
        return self._means[:n].copy()

    def join(self, person: int, joint: int, row: np.ndarray, tag: np.ndarray) -> None:
        self.joints[person, joint] = row
        self._tags[person, self._num_tags[person]] = tag
        self._num_tags[person] += 1
        self._stale[person] = True

    def start(self, joint: int, row: np.ndarray, tag: np.ndarray) -> int:
        """Start a person with one joint; returns its row (an existing one on a key collision)."""
        person = self.count
        if self._keys is not None:
            person = self._keys.setdefault(float(tag[0]), self.count)
        if person == self.count:
            self.count += 1
        self.joints[person, joint] = row
        self._tags[person, 0] = tag
        self._num_tags[person] = 1
        self._stale[person] = True
        return person

    def result(self) -> np.ndarray:
        """(P, K, 3 + L) float32 copy of the people created."""
        return self.joints[: self.count].copy()


def seed_people(people: People, joint: int, rows: np.ndarray, tags: np.ndarray) -> MatchStep:
    """Every candidate of ``joint`` starts a person (the first joint type with candidates)."""
    person = np.array([people.start(joint, r, t) for r, t in zip(rows, tags)], np.int64)
    empty = np.zeros((len(rows), 0))
    return MatchStep(
        joint, "seed", len(rows), 0, empty, empty, np.zeros((0, 2), np.int64), person,
        np.zeros(len(rows), bool),
    )


def match_joint(
    people: People, joint: int, rows: np.ndarray, tags: np.ndarray, params: GroupingParams
) -> MatchStep:
    """Match the candidates of one joint type to the existing people (one official step).

    Args:
        people: the grouping state; updated in place.
        joint: joint type index.
        rows: (N, 3 + L) float64 candidate rows, N >= 1 (``Peaks.candidates``).
        tags: (N, L) float32 candidate tags.
        params: thresholds and flags.
    """
    num = min(people.count, params.max_people)
    if params.ignore_too_much and num == params.max_people:
        empty = np.zeros((len(rows), 0))
        none = np.full(len(rows), -1, np.int64)
        return MatchStep(joint, "skipped", len(rows), num, empty, empty,
                         np.zeros((0, 2), np.int64), none, np.zeros(len(rows), bool))
    distance = tag_distances(rows, people.mean_tags(num))
    cost = assignment_cost(distance, rows, params.use_detection_val)
    pairs = solve_assignment(cost, params.solver)
    partner = np.full(len(rows), -1, np.int64)
    partner[pairs[:, 0]] = pairs[:, 1]
    person = np.empty(len(rows), np.int64)
    joined = np.zeros(len(rows), bool)
    for i in range(len(rows)):
        col = partner[i]
        if col >= 0 and distance[i, col] < params.tag_threshold:
            people.join(int(col), joint, rows[i], tags[i])
            person[i], joined[i] = col, True
        else:
            person[i] = people.start(joint, rows[i], tags[i])
    return MatchStep(joint, "match", len(rows), num, distance, cost, pairs, person, joined)


def new_people(peaks: Peaks, params: GroupingParams) -> People:
    """An empty grouping state sized for every candidate of ``peaks``."""
    capacity = int(np.count_nonzero(peaks.vals > params.detection_threshold))
    return People(peaks.num_joints, peaks.tag_dim, max(capacity, 1), params.tag_key_collisions)


def match_by_tag(
    peaks: Peaks,
    joint_order: Sequence[int],
    params: GroupingParams,
    trace: list[MatchStep] | None = None,
) -> np.ndarray:
    """Group peaks into people, visiting joint types in ``joint_order`` (official AE grouping).

    Args:
        peaks: top-k peaks of one image.
        joint_order: joint types in the order they are matched (e.g. ``spec.joint_order``);
            types not listed are never grouped.
        params: thresholds and flags.
        trace: when given, one MatchStep per joint type with candidates is appended.

    Returns:
        (P, K, 3 + L) float32 [x, y, val, tags...] in map pixels (integer peak positions),
        people in creation order, zeros for missing joints.
    """
    people = new_people(peaks, params)
    for joint in joint_order:
        rows, tags = peaks.candidates(int(joint), params.detection_threshold)
        if len(rows) == 0:
            continue
        if people.count == 0:
            step = seed_people(people, int(joint), rows, tags)
        else:
            step = match_joint(people, int(joint), rows, tags, params)
        if trace is not None:
            trace.append(step)
    return people.result()
