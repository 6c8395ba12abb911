"""Associative-embedding training targets of one image (ALGORITHMS.md §2.2), built from the
per-resolution keypoints and masks of ``transforms.training_views`` with the pure codecs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bupose.codecs.gaussian import render_heatmaps
from bupose.codecs.tags import encode_tag_indices


class AETargets(NamedTuple):
    """Targets of one image, lowest resolution first.

    Attributes:
        heatmaps: per resolution r, (K, h_r, w_r) float32 Gaussian heatmaps.
        masks: per resolution r, (h_r, w_r) float32, 1 = supervised, 0 = ignored.
        tag_indices: (M, K, 2) int64 [k*h0*w0 + y*w0 + x, valid] at resolution 0 (stride 4);
            row p = person p, slot k = joint k.
    """

    heatmaps: list[np.ndarray]
    masks: list[np.ndarray]
    tag_indices: np.ndarray


def encode_ae_targets(
    keypoints: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    sigma: float = 2.0,
    max_people: int = 30,
) -> AETargets:
    """Heatmaps at every resolution, masks, and tag indices at the lowest resolution.

    Args:
        keypoints: per resolution, (N, K, 3) float32 [x, y, v] in that map's pixels.
        masks: per resolution, (h_r, w_r) float32 supervision masks (define the map sizes).
        sigma: Gaussian sigma in map pixels, the same at every resolution (official: 2).
        max_people: rows of ``tag_indices``; extra people are dropped with a warning.
    """
    if len(keypoints) != len(masks) or not masks:
        raise ValueError(f"need one mask per resolution: {len(keypoints)} keypoint sets, "
                         f"{len(masks)} masks")
    heatmaps = []
    for kps, mask in zip(keypoints, masks):
        size_wh = (mask.shape[1], mask.shape[0])
        heatmaps.append(render_heatmaps(kps, size_wh, sigma))
    size0 = (masks[0].shape[1], masks[0].shape[0])
    tag_indices = encode_tag_indices(keypoints[0], size0, max_people)
    return AETargets(
        heatmaps=heatmaps,
        masks=[np.asarray(m, dtype=np.float32) for m in masks],
        tag_indices=tag_indices,
    )
