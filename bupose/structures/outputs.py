"""Layout of a pose network's outputs (torch-free, so that exported networks can be described and
run without importing torch; ``bupose.models.outputs`` documents the tensors themselves)."""

from __future__ import annotations

from typing import NamedTuple


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
