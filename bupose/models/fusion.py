"""CNN-ViT fusion backbone (ALGORITHMS.md §5): HRNet with a DaViT branch on the same input image,
mixed in at four points by 3x3 conv + BN (bias-free, no ReLU) over the concatenation.

| level | where                                 | official names       |
| 0     | stem output, before layer1 (stride 4)  | conv_128, bn1_128    |
| 1     | new branch of transition1 (stride 8)   | conv_64,  bn1_64     |
| 2     | new branch of transition2 (stride 16)  | conv_32,  bn1_32     |
| 3     | new branch of transition3 (stride 32)  | conv_16,  bn1_16     |

(the names are the map sizes at 512 input in the fusion code; kept so its checkpoints load.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from bupose.models.davit import DaViT
from bupose.models.hrnet import HRNet, StageSpec
from bupose.models.layers import BN_MOMENTUM

FUSION_NAMES = ("128", "64", "32", "16")


class HRNetDaViT(HRNet):
    """HRNet whose stem output and newly created branches are fused with DaViT features.

    Args:
        stages: HRNet stages 2-4 (see ``hrnet_stages``).
        davit_dims / davit_depths / davit_heads / window / mlp_ratio / drop_path_rate: the DaViT
            branch (defaults = the fusion model's).
    """

    def __init__(self, stages: Sequence[StageSpec], davit_dims: Sequence[int] = (64, 128, 192, 256),
                 davit_depths: Sequence[int] = (1, 1, 3, 1),
                 davit_heads: Sequence[int] = (4, 8, 12, 16), window: int = 7,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.1) -> None:
        super().__init__(stages)
        self.davit = DaViT(davit_depths, davit_dims, davit_heads, window, mlp_ratio,
                           drop_path_rate)
        hrnet_channels = [64] + [spec.out_channels[-1] for spec in stages]
        if len(davit_dims) != len(hrnet_channels):
            raise ValueError(f"the fusion needs {len(hrnet_channels)} DaViT stages")
        for name, c, d in zip(FUSION_NAMES, hrnet_channels, davit_dims):
            self.add_module(f"conv_{name}", nn.Conv2d(c + d, c, 3, padding=1, bias=False))
            self.add_module(f"bn1_{name}", nn.BatchNorm2d(c, momentum=BN_MOMENTUM))

    def forward(self, x: Tensor) -> list[Tensor]:  # type: ignore[override]
        """(B, 3, H, W) -> [(B, C0, H/4, W/4)]."""
        tokens = self.davit(x)

        def fuse(level: int, features: Tensor) -> Tensor:
            name = FUSION_NAMES[level]
            mixed = torch.cat((features, tokens[level]), 1)
            return getattr(self, f"bn1_{name}")(getattr(self, f"conv_{name}")(mixed))

        return super().forward(x, fuse)
