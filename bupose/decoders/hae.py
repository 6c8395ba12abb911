"""HAE progressive associative decoding (ducongju/HAE ``_PAD``, ALGORITHMS.md §3.7).

Like the AE decoder, but the order in which joint types are matched is chosen on the fly: after
the first joint type with candidates (in index order) seeds the people, each step matches the
remaining joint type whose best candidate is closest in tag space (raw L2 distance) to one of
the first ``max_people`` people (first on ties, in index order). Everything else (costs, tag
threshold, adjust, scores, refine) is the official AE grouping.

Loop structure reproduced from the reference: iteration i = 0..K-1 first looks at joint type i;
if it has no candidates it is dropped from the remaining set and nothing is matched in this
iteration; otherwise (once people exist) one joint type is chosen and matched.
Guards against reference failures (the reference crashes in all three cases):
* joint types without candidates never take part in the choice (the reference gives them a
  sentinel distance 10, so they win when every real distance exceeds 10, and then munkres
  gets an empty matrix and the later removal of that index fails);
* an index already consumed is not removed twice;
* with ``ignore_too_much`` and ``max_people`` people an iteration matches nothing (the
  reference's choice list then misaligns or is empty).
``joint_order`` is accepted for signature compatibility and ignored, as in the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bupose.decoders.ae import finish, prepare
from bupose.decoders.grouping import MatchStep, People, match_joint, new_people, seed_people
from bupose.decoders.params import GroupingParams
from bupose.decoders.peaks import Peaks
from bupose.decoders.types import Grouping, Maps


@dataclass
class ProgressiveChoice:
    """One iteration's choice (for tests and debugging).

    Attributes:
        iteration: loop index i.
        remaining: joint types still to match before the choice, in order.
        distances: for each remaining type with candidates, its smallest tag distance to a
            person (empty for the seed step).
        chosen: joint type matched in this iteration (-1 when none).
        step: the MatchStep of that matching (None when none).
    """

    iteration: int
    remaining: tuple[int, ...]
    distances: dict[int, float]
    chosen: int
    step: MatchStep | None


def _closest(people: People, peaks: Peaks, types: list[int], params: GroupingParams
             ) -> dict[int, float]:
    """Smallest raw tag distance from each type's candidates to the first people."""
    means = people.mean_tags(min(people.count, params.max_people)).astype(np.float64)
    out = {}
    for joint in types:
        rows, _ = peaks.candidates(joint, params.detection_threshold)
        if len(rows):
            diff = rows[:, None, 3:] - means[None, :, :]
            out[joint] = float(np.min(np.linalg.norm(diff, ord=2, axis=2)))
    return out


def match_progressive(
    peaks: Peaks, params: GroupingParams, choices: list[ProgressiveChoice] | None = None
) -> tuple[np.ndarray, list[int]]:
    """Group peaks into people with the progressive joint order.

    Args:
        peaks: top-k peaks of one image.
        params: thresholds and flags.
        choices: when given, one ProgressiveChoice per iteration is appended.

    Returns:
        grouped: (P, K, 3 + L) float32 as ``match_by_tag``.
        order: joint types in the order they were matched (seed first).
    """
    people = new_people(peaks, params)
    remaining = list(range(peaks.num_joints))
    order: list[int] = []
    for i in range(peaks.num_joints):
        before = tuple(remaining)
        rows, tags = peaks.candidates(i, params.detection_threshold)
        chosen, step, dist = -1, None, {}
        if len(rows) == 0:
            if i in remaining:
                remaining.remove(i)
        elif people.count == 0:
            chosen, step = i, seed_people(people, i, rows, tags)
        elif not (params.ignore_too_much and people.count >= params.max_people):
            dist = _closest(people, peaks, remaining, params)
            if dist:
                chosen = min(dist, key=lambda j: (dist[j], remaining.index(j)))
                rows, tags = peaks.candidates(chosen, params.detection_threshold)
                step = match_joint(people, chosen, rows, tags, params)
        if chosen >= 0:
            remaining.remove(chosen)
            order.append(chosen)
        if choices is not None:
            choices.append(ProgressiveChoice(i, before, dist, chosen, step))
    return people.result(), order


def decode_hae(
    heatmaps: Maps,
    tags: Maps,
    params: GroupingParams | None = None,
    joint_order: Sequence[int] | None = None,
    *,
    choices: list[ProgressiveChoice] | None = None,
) -> Grouping:
    """Decode one image's aggregated maps with HAE progressive associative decoding.

    Args:
        heatmaps: (K, h, w) aggregated heatmaps (numpy or torch).
        tags: (K, h, w, L) tag maps, or (K, h, w).
        params: grouping parameters (defaults: the official test settings).
        joint_order: ignored (the order is chosen on the fly), kept for the DECODERS signature.
        choices: when given, receives one ProgressiveChoice per iteration.

    Returns:
        Grouping(grouped (P, K, 3 + L) float32 [x, y, val, tags...] in map pixels,
        scores (P,) float32).
    """
    del joint_order
    params = params or GroupingParams()
    heat, tag, tiles, peaks = prepare(heatmaps, tags, params)
    grouped, _ = match_progressive(peaks, params, choices)
    return finish(grouped, heat, tag, params, tiles)
