"""Decoders: pure functions from one image's aggregated maps to grouped people.

The AE-family entries of ``DECODERS`` ("ae", "hae"; ``grouping_decoder(name)`` fetches them
typed as ``GroupingDecoder``) have the signature
``decode(heatmaps (K, h, w), tags (K, h, w, L), params: GroupingParams, joint_order)
-> Grouping(grouped (P, K, 3 + L) float32 [x, y, val, tags...] in map pixels, scores (P,))``
(``bupose.decoders.types``; ``decode_grouping(decoder, GroupingInputs(...))`` takes the inputs
as one structure). "cal" and "offsets" are other families with their own typed signatures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bupose.decoders.ae import decode_ae
from bupose.decoders.cal import decode_cal
from bupose.decoders.hae import decode_hae
from bupose.decoders.offsets import decode_offsets
from bupose.decoders.params import GroupingParams
from bupose.decoders.types import Grouping, GroupingDecoder, GroupingInputs, decode_grouping
from bupose.errors import ConfigError
from bupose.registry import Registry

Decoder = Callable[..., Any]

DECODERS: Registry[Decoder] = Registry("decoder")
DECODERS.add("ae", decode_ae)
DECODERS.add("hae", decode_hae)
DECODERS.add("cal", decode_cal)  # top-down CAL: its own signature, see decoders/cal.py
DECODERS.add("offsets", decode_offsets)  # SimplePose V2: its own signature, decoders/offsets.py

GROUPING_DECODERS: dict[str, GroupingDecoder] = {"ae": decode_ae, "hae": decode_hae}


def grouping_decoder(name: str) -> GroupingDecoder:
    """The AE-family decoder ``name`` ("ae" or "hae"), typed; ConfigError for other names."""
    DECODERS.get(name)  # unknown names: the registry's error with suggestions
    if name not in GROUPING_DECODERS:
        raise ConfigError(f"decoder {name!r} does not group heatmaps and tag maps (use one of "
                          f"{', '.join(GROUPING_DECODERS)}; {name!r} has its own predictor)")
    return GROUPING_DECODERS[name]


__all__ = ["DECODERS", "GROUPING_DECODERS", "Grouping", "GroupingDecoder", "GroupingInputs",
           "GroupingParams", "decode_ae", "decode_grouping", "decode_hae", "grouping_decoder"]
