"""What a pose network returns, described once so that losses, decoders and export agree.

A model's ``forward(images)`` returns ``tuple[Tensor, ...]``: one tensor per output resolution,
lowest resolution (largest stride) first, exactly like the official HigherHRNet ``final_outputs``.
Each tensor is (B, C, h, w) with channels laid out as
[heatmaps (num_heatmaps), tags (tag_channels)].
Tag channels are joint-major: channel k * tag_dim + d is dimension d of joint k's tag.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class StageOutput(NamedTuple):
    """Layout of one output tensor of a model.

    Attributes:
        stride: input pixels per map pixel (4 for the stride-4 head, 2 for the HigherHRNet deconv).
        num_heatmaps: K heatmap channels first.
        tag_channels: K * tag_dim associative-embedding channels after the heatmaps (0 if none).
        offset_channels: 2 * number of offset fields after the tags (0 if none; SimplePose, CAL).
    """

    stride: int
    num_heatmaps: int
    tag_channels: int = 0
    offset_channels: int = 0

    @property
    def channels(self) -> int:
        return self.num_heatmaps + self.tag_channels + self.offset_channels


def split_stage(output: Tensor, layout: StageOutput) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Split one (B, C, h, w) stage output into (heatmaps, tags or None, offsets or None)."""
    k, t = layout.num_heatmaps, layout.tag_channels
    heatmaps = output[:, :k]
    tags = output[:, k : k + t] if t else None
    offsets = output[:, k + t : k + t + layout.offset_channels] if layout.offset_channels else None
    return heatmaps, tags, offsets
