"""Typed inputs and outputs of the associative-embedding decoders ("ae", "hae").

``GroupingInputs`` (one image's aggregated maps and the joint order) goes in, ``Grouping``
(grouped people and their scores, a NamedTuple, so ``grouped, scores = decode(...)`` keeps
working) comes out. ``GroupingDecoder`` is the call signature both decoders share; the other
``DECODERS`` entries ("offsets", "cal") are other families with their own typed signatures
(their modules' docstrings), which is why the registry itself stays untyped and
``grouping_decoder`` is the typed way to fetch an AE-family decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol

import numpy as np

from bupose.decoders.params import GroupingParams

if TYPE_CHECKING:
    from torch import Tensor

    Maps = np.ndarray | Tensor
else:
    Maps = object


class Grouping(NamedTuple):
    """Decoded people of one image, in map pixels.

    Attributes:
        grouped: (P, K, 3 + L) float32 [x, y, val, tags...], zeros = missing joint.
        scores: (P,) float32 person scores (mean joint value after adjust, before refine).
    """

    grouped: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class GroupingInputs:
    """One image's aggregated maps as the AE/HAE decoders take them.

    Attributes:
        heatmaps: (K, h, w) aggregated heatmaps (numpy float32 or a torch tensor).
        tags: (K, h, w, L) tag maps (L = tag dim x flip passes), or (K, h, w).
        joint_order: the fixed AE joint order (``spec.joint_order``); None = range(K).
    """

    heatmaps: Maps
    tags: Maps
    joint_order: tuple[int, ...] | None = None


class GroupingDecoder(Protocol):
    """``decode(heatmaps, tags, params, joint_order) -> Grouping`` (``decode_ae``,
    ``decode_hae``)."""

    def __call__(
        self,
        heatmaps: Maps,
        tags: Maps,
        params: GroupingParams | None = None,
        joint_order: Sequence[int] | None = None,
    ) -> Grouping: ...


def decode_grouping(
    decoder: GroupingDecoder, inputs: GroupingInputs, params: GroupingParams | None = None
) -> Grouping:
    """Run an AE-family decoder on typed inputs."""
    return decoder(inputs.heatmaps, inputs.tags, params, inputs.joint_order)
