"""Decoders: pure functions from one image's aggregated maps to grouped people.

Every entry of ``DECODERS`` has the signature
``decode(heatmaps (K, h, w), tags (K, h, w, L), params: GroupingParams, joint_order)
-> (grouped (P, K, 3 + L) float32 [x, y, val, tags...] in map pixels, scores (P,) float32)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bupose.decoders.ae import decode_ae
from bupose.decoders.cal import decode_cal
from bupose.decoders.hae import decode_hae
from bupose.decoders.offsets import decode_offsets
from bupose.decoders.params import GroupingParams
from bupose.registry import Registry

Decoder = Callable[..., Any]

DECODERS: Registry[Decoder] = Registry("decoder")
DECODERS.add("ae", decode_ae)
DECODERS.add("hae", decode_hae)
DECODERS.add("cal", decode_cal)  # top-down CAL: its own signature, see decoders/cal.py
DECODERS.add("offsets", decode_offsets)  # SimplePose V2: its own signature, decoders/offsets.py

__all__ = ["DECODERS", "GroupingParams", "decode_ae", "decode_hae"]
