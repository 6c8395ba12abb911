"""Associative-embedding decoding with the official HigherHRNet HeatmapParser semantics.

ALGORITHMS.md §2.5 steps 6-11: NMS, top-k, grouping by tags in a fixed joint order, adjust,
person score (after adjust, before refine), refine. Works on any model's aggregated maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bupose.decoders.grouping import MatchStep, match_by_tag
from bupose.decoders.params import GroupingParams
from bupose.decoders.peaks import Peaks, as_maps, find_peaks
from bupose.decoders.refine import adjust, person_scores, refine
from bupose.decoders.tiles import MapTiles
from bupose.decoders.types import Grouping, Maps
from bupose.errors import ConfigError


def check_joint_order(joint_order: Sequence[int] | None, num_joints: int) -> tuple[int, ...]:
    """Default ``range(K)``; otherwise distinct joint indices in [0, K)."""
    if joint_order is None:
        return tuple(range(num_joints))
    order = tuple(int(j) for j in joint_order)
    if len(set(order)) != len(order) or any(not 0 <= j < num_joints for j in order):
        raise ConfigError(
            f"joint_order {order} must list distinct joint indices in [0, {num_joints})"
        )
    return order


def prepare(
    heatmaps: Maps, tags: Maps, params: GroupingParams
) -> tuple[np.ndarray, np.ndarray, MapTiles, Peaks]:
    """Checked float32 maps, their tiles and the top-k peaks above the detection threshold."""
    heat, tag = as_maps(heatmaps, tags)
    tiles = MapTiles(heat, tag)
    peaks = find_peaks(heat, tag, tiles, params.top_k, params.nms_kernel,
                       params.detection_threshold)
    return heat, tag, tiles, peaks


def finish(
    grouped: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray, params: GroupingParams,
    tiles: MapTiles | None = None,
) -> Grouping:
    """Adjust, score and refine grouped people (official ``parse`` after matching).

    Args:
        grouped: (P, K, 3 + L) float32 matched people (integer pixel positions).
        heatmaps: (K, h, w) float32; tags: (K, h, w, L) float32.
        params: ``adjust`` and ``refine`` flags.
        tiles: ``MapTiles`` of the maps, reused by refine when given.

    Returns:
        Grouping(grouped (P, K, 3 + L) float32, scores (P,) float32).
    """
    if params.adjust:
        grouped = adjust(grouped, heatmaps)
    scores = person_scores(grouped)
    if params.refine:
        grouped = refine(grouped, heatmaps, tags, tiles)
    return Grouping(grouped, scores)


def decode_ae(
    heatmaps: Maps,
    tags: Maps,
    params: GroupingParams | None = None,
    joint_order: Sequence[int] | None = None,
    *,
    trace: list[MatchStep] | None = None,
) -> Grouping:
    """Decode one image's aggregated maps into people (official HigherHRNet grouping).

    Args:
        heatmaps: (K, h, w) aggregated heatmaps (numpy or torch).
        tags: (K, h, w, L) tag maps (L = 2 with the flip test), or (K, h, w).
        params: grouping parameters (defaults: the official test settings).
        joint_order: order in which joint types are matched (``spec.joint_order``); default
            ``range(K)``.
        trace: when given, receives one MatchStep per matched joint type.

    Returns:
        Grouping (a NamedTuple, unpacks as ``grouped, scores``):
        grouped: (P, K, 3 + L) float32 [x, y, val, tags...] in map pixels, zeros = missing
            (refined joints have zero tags).
        scores: (P,) float32 person scores.

    Raises:
        DataError: bad shapes or NaN/inf in the maps. ConfigError: bad joint_order.
    """
    params = params or GroupingParams()
    heat, tag, tiles, peaks = prepare(heatmaps, tags, params)
    order = check_joint_order(joint_order, heat.shape[0])
    grouped = match_by_tag(peaks, order, params, trace)
    return finish(grouped, heat, tag, params, tiles)
