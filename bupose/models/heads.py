"""Associative-embedding heads on the stride-4 HRNet feature (ALGORITHMS.md §2.1, §3.2).

``HigherHRNetHead`` with one deconvolution is the HigherHRNet head; with none it is the bottom-up
HRNet head (mmpose ``AESimpleHead``: one 1x1 conv giving K heatmaps + K tags at stride 4).
Module names (``final_layers``, ``deconv_layers``) equal the official code; official weights load
under the prefix ``head.``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bupose.models.layers import BN_MOMENTUM, BasicBlock
from bupose.models.outputs import StageOutput

# kernel -> (padding, output_padding) of a stride-2 transposed conv that exactly doubles h, w
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class HigherHRNetHead(nn.Module):
    """Stride-4 heatmaps (+ tags), then per deconvolution: concat(features, previous output) ->
    4x4 transposed conv stride 2 + BN + ReLU -> ``num_basic_blocks`` BasicBlocks -> 1x1 conv.

    Args:
        in_channels: C of the stride-4 backbone feature.
        num_keypoints: K heatmap channels per output.
        tag_dim: D, the associative-embedding dimension per joint.
        tag_per_joint: True: K * D tag channels (one tag map per joint, joint-major);
            False: D channels shared by all joints (official TAG_PER_JOINT False).
        deconv_channels: output channels of each deconvolution (its length = number of deconvs).
        deconv_kernels: kernel of each deconvolution (4, 3 or 2).
        num_basic_blocks: BasicBlocks after each deconvolution.
        cat_output: per deconvolution, concatenate the previous output to its input.
        final_conv_kernel: 1 or 3, kernel of the output convolutions.
        tag_stages: per output (len(deconv_channels) + 1), whether it carries tag channels.
    """

    def __init__(self, in_channels: int, num_keypoints: int = 17, tag_dim: int = 1,
                 tag_per_joint: bool = True, deconv_channels: Sequence[int] = (32,),
                 deconv_kernels: Sequence[int] = (4,), num_basic_blocks: int = 4,
                 cat_output: Sequence[bool] = (True,), final_conv_kernel: int = 1,
                 tag_stages: Sequence[bool] = (True, False)) -> None:
        super().__init__()
        n = len(deconv_channels)
        if len(deconv_kernels) != n or len(cat_output) != n or len(tag_stages) != n + 1:
            raise ValueError(
                f"head: {n} deconvs need {n} kernels ({len(deconv_kernels)} given), {n} "
                f"cat_output ({len(cat_output)}) and {n + 1} tag_stages ({len(tag_stages)})")
        if final_conv_kernel not in (1, 3):
            raise ValueError(f"final_conv_kernel must be 1 or 3, got {final_conv_kernel}")
        if n > 2:
            raise ValueError(f"at most 2 deconvolutions (stride 4 -> 2 -> 1), got {n}")
        tag_channels = num_keypoints * tag_dim if tag_per_joint else tag_dim
        self.output_layout = tuple(
            StageOutput(4 >> i, num_keypoints, tag_channels if tag else 0)
            for i, tag in enumerate(tag_stages))
        self.cat_output = tuple(bool(c) for c in cat_output)
        pad = final_conv_kernel // 2
        widths = [in_channels, *deconv_channels]
        self.final_layers = nn.ModuleList(
            nn.Conv2d(widths[i], out.channels, final_conv_kernel, padding=pad)
            for i, out in enumerate(self.output_layout))
        deconvs = []
        c_in = in_channels
        for i, (c_out, k) in enumerate(zip(deconv_channels, deconv_kernels)):
            if k not in _DECONV_PADDING:
                raise ValueError(f"deconv kernel must be 4, 3 or 2, got {k}")
            if self.cat_output[i]:
                c_in += self.output_layout[i].channels
            p, op = _DECONV_PADDING[k]
            up = nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, k, stride=2, padding=p, output_padding=op,
                                   bias=False),
                nn.BatchNorm2d(c_out, momentum=BN_MOMENTUM),
                nn.ReLU(inplace=True))
            blocks = [nn.Sequential(BasicBlock(c_out, c_out)) for _ in range(num_basic_blocks)]
            deconvs.append(nn.Sequential(up, *blocks))
            c_in = c_out
        self.deconv_layers = nn.ModuleList(deconvs)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(B, C, h, w) stride-4 feature -> outputs, lowest resolution first:
        (B, K + tag channels, h, w), then (B, K [+ tags], 2h, 2w) per deconvolution."""
        y = self.final_layers[0](x)
        outputs = [y]
        for i, deconv in enumerate(self.deconv_layers):
            if self.cat_output[i]:
                x = torch.cat((x, y), 1)
            x = deconv(x)
            y = self.final_layers[i + 1](x)
            outputs.append(y)
        return tuple(outputs)
