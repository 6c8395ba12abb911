"""Greedy offset-guided grouping of SimplePose V2 (ALGORITHMS.md §4.7 steps 7-8; reference
``decoder/group.py:GreedyGroup``), reproducing the published behaviour including its quirks.

Limb records (L, K, 13) float32, one row per start candidate of each limb::

    [x1, y1, v1, x2, y2, v2, id1, id2, d, length, limb_score, scale1, scale2]

People (M, J, 6) float32: per joint [x, y, v, s, limb_score, id], -1 while empty (0 after
``delete_sort``). Everything stays float32 as in the reference (ids are exact in float32 up to
2**24, e.g. 17 * 640 * 640).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# columns of a limb record
X1, Y1, V1, X2, Y2, V2, ID1, ID2, DIST, LENGTH, SCORE, S1, S2 = range(13)


def delete_reconnections(conns: np.ndarray) -> np.ndarray:
    """Sort limbs by limb score (best first) and keep the first limb per END joint id.

    Reference quirk 6: the sort is ``np.argsort`` of the negated scores with numpy's default
    (quicksort: not stable on ties), and only end joints are made unique; a start joint may be
    used by several limbs.

    Args:
        conns: (n, 13) limb records of one limb type.

    Returns:
        (m, 13) the kept records, best first.
    """
    conns = conns[np.argsort(-conns[:, SCORE])]
    _, first = np.unique(conns[:, ID2].astype(int), return_index=True)
    return conns[np.sort(first)]


def _valid_limbs(conns: np.ndarray, dist_max: float, use_scale: bool) -> np.ndarray:
    """Step a: guide error below the limit and all four coordinates > 0 (quirk 5: a
    candidate at x == 0 or y == 0 is invalid)."""
    limit = np.maximum(dist_max, conns[:, S2]) if use_scale else dist_max
    valid = (conns[:, DIST] < limit) & (conns[:, X1] > 0) & (conns[:, X2] > 0)
    valid &= (conns[:, Y2] > 0) & (conns[:, Y1] > 0)
    return conns[valid]


def _update_matches(
    people: np.ndarray, conns: np.ndarray, a: int, b: int
) -> np.ndarray:
    """Steps c-e for one limb type (a -> b); updates ``people`` in place.

    Returns:
        (M, n) int match matrix after the reference's relabelling: entries solved in the
        "both joints shared" and "one joint shared" steps are -1 (quirk 3: ALL entries equal to 2,
        resp. 1, are set to -1 as soon as one of them was solved).
    """
    ids = conns[:, [ID1, ID2]]
    score = conns[:, SCORE]
    person_ids = people[:, [a, b], 5]
    stored = people[:, [a, b], 4]
    matches = np.sum(person_ids[:, None, :].astype(int) == ids[None].astype(int), axis=-1)
    # quirk 4: replace when better than the stored limb score at slot b OR at slot a
    replace = (score[None] > stored[:, None, 1]) | (score[None] > stored[:, None, 0])
    m_idx, k_idx = np.nonzero((matches == 2) & replace)
    if len(m_idx):
        for slot in (a, b):
            people[m_idx, slot, 4] = np.maximum(score[k_idx], people[m_idx, slot, 4])
        matches[matches == 2] = -1
    m_idx, k_idx = np.nonzero((matches == 1) & replace)
    if len(m_idx):
        people[m_idx, a, 5] = conns[k_idx, ID1]
        people[m_idx, b, 5] = conns[k_idx, ID2]
        people[m_idx, a, :4] = conns[k_idx][:, [X1, Y1, V1, S1]]
        people[m_idx, b, :4] = conns[k_idx][:, [X2, Y2, V2, S2]]
        for slot in (a, b):
            people[m_idx, slot, 4] = np.maximum(score[k_idx], people[m_idx, slot, 4])
        matches[matches == 1] = -1
    return matches


def _merge_people(people: np.ndarray) -> np.ndarray:
    """Step f: two people sharing exactly 2 joint ids are combined by element-wise max, the
    later one deleted (quirk 4: 3 or more shared ids are ignored)."""
    ids = people[..., 5].astype(int)
    shared = np.sum((ids[:, None] == ids[None]) & (ids[:, None] != -1), axis=-1)
    m_idx, n_idx = (np.triu(shared, 1) == 2).nonzero()
    if len(m_idx):
        people[m_idx] = np.maximum(people[m_idx], people[n_idx])
        people = np.delete(people, n_idx, axis=0)
    return people


def _new_people(conns: np.ndarray, columns: np.ndarray, a: int, b: int, k: int) -> np.ndarray:
    """Step g: one new person per limb ``columns`` (both endpoints, limb score at both slots)."""
    rows = np.full((len(columns), k, 6), -1, np.float32)
    c = conns[columns]
    rows[:, a, 5] = c[:, ID1]
    rows[:, b, 5] = c[:, ID2]
    rows[:, a, :4] = c[:, [X1, Y1, V1, S1]]
    rows[:, b, :4] = c[:, [X2, Y2, V2, S2]]
    rows[:, a, 4] = c[:, SCORE]
    rows[:, b, 4] = c[:, SCORE]
    return rows


def group_limbs(
    limbs: np.ndarray,
    skeleton: Sequence[tuple[int, int]],
    num_joints: int,
    dist_max: float = 40.0,
    use_scale: bool = True,
    matched_limbs_start_people: bool = True,
) -> np.ndarray:
    """Greedy grouping of all candidate limbs of one image, limb types in skeleton order.

    Args:
        limbs: (L, K, 13) float32 limb records (module docstring), input pixels.
        skeleton: L directed limbs (a, b).
        num_joints: J joint types.
        dist_max: limbs whose guide error d is not below max(dist_max, scale2) (or dist_max
            without ``use_scale``) are dropped.
        use_scale: compare d with max(dist_max, end-joint scale).
        matched_limbs_start_people: the reference's rule (quirk 3): a limb starts a new person
            when its match column sums to 0, which includes a solved (-1) plus an unsolved (+1)
            match. False: only limbs that match nobody start a person.

    Returns:
        (M, J, 6) float32 people, -1 for empty entries, in creation order (before
        ``delete_sort``).
    """
    people = np.full((0, num_joints, 6), -1, np.float32)
    for (a, b), conns in zip(skeleton, limbs):
        conns = delete_reconnections(_valid_limbs(conns, dist_max, use_scale))
        if len(conns) == 0:
            continue
        num_before = len(people)
        matches = _update_matches(people, conns, a, b)
        if num_before >= 2:
            people = _merge_people(people)
        # quirk 3 (the -1/+1 column-sum rule): a limb whose column sums to 0 starts a new person,
        # which also holds for a column with one solved (-1) and one unsolved (+1) match
        if matched_limbs_start_people:
            new = np.nonzero(np.sum(matches, axis=0) == 0)[0]
        else:
            new = np.nonzero(np.all(matches == 0, axis=0))[0]
        if len(new):
            people = np.concatenate((people, _new_people(conns, new, a, b, num_joints)))
    return people


def delete_sort(people: np.ndarray, person_thre: float, sort_dim: int = 2) -> np.ndarray:
    """Drop people whose mean value (column ``sort_dim``: 2 = heatmap value, 4 = limb score)
    over joints with a positive value is below ``person_thre``, sort the rest by that mean
    (descending, stable), and turn every -1 into 0.

    Args:
        people: (M, J, 6) float32 from ``group_limbs``.

    Returns:
        (M', J, 6) float32 people.
    """
    kept, scores = [], []
    for i, person in enumerate(people):
        mask = person[:, sort_dim] > 0
        # float32 sum / float64 count, as the reference (an all-empty person gives NaN: kept)
        with np.errstate(invalid="ignore"):
            score = person[mask, sort_dim].sum() / mask.astype(float).sum()
        if not score < person_thre:
            kept.append(i)
            scores.append(score)
    order = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    out = people[kept][order]
    out[out == -1] = 0
    return out
