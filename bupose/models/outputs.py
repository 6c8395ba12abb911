"""What a pose network returns, described once so that losses, decoders and export agree.

A model's ``forward(images)`` returns ``tuple[Tensor, ...]``: one tensor per output resolution,
lowest resolution (largest stride) first, exactly like the official HigherHRNet ``final_outputs``.
Each tensor is (B, C, h, w) with channels laid out as
[heatmaps (num_heatmaps), tags (tag_channels)].
Tag channels are joint-major: channel k * tag_dim + d is dimension d of joint k's tag.
"""

from __future__ import annotations

from torch import Tensor

from bupose.structures.outputs import StageOutput

__all__ = ["StageOutput", "split_stage"]


def split_stage(output: Tensor, layout: StageOutput) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Split one (B, C, h, w) stage output into (heatmaps, tags or None, offsets or None)."""
    k, t = layout.num_heatmaps, layout.tag_channels
    heatmaps = output[:, :k]
    tags = output[:, k : k + t] if t else None
    offsets = output[:, k + t : k + t + layout.offset_channels] if layout.offset_channels else None
    return heatmaps, tags, offsets
