"""SimplePose V2 network (ALGORITHMS.md §4.1): CenterNet's stacked hourglass with per-stack 1x1
heads for keypoint heatmaps, guiding offsets and (training only) keypoint scales.

Module and attribute names (``basenet.pre``, ``basenet.kps.<s>.up1 / low1 / low2 / low3``,
``basenet.cnvs``, ``inters``, ``inters_``, ``cnvs_``, ``headnets.0.hp_convs``,
``headnets.1.reg_convs`` / ``scale_convs``, ``conv1 / bn1 / conv2 / bn2 / skip`` inside a
residual, ``conv / bn`` inside a conv-BN-ReLU) equal those of the official OffsetGuided model, so
an official checkpoint loads strictly after its ``module.`` prefix is removed.

Hourglass-104 = order 5, widths [256, 256, 384, 384, 384, 512], residuals per level
[2, 2, 2, 2, 2, 4], stem 7x7 conv s2 (3 -> 128) + residual s2 (128 -> 256), 2 stacks,
256-channel features at stride 4. Downsampling inside the hourglass is the stride-2 first
residual of each lower branch (no max-pool), upsampling is nearest x2, merge is a sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bupose.models.layers import init_official

HG104_DIMS = (256, 256, 384, 384, 384, 512)
HG104_MODULES = (2, 2, 2, 2, 2, 4)


class ConvBNReLU(nn.Module):
    """k x k convolution ('same' padding) + BN + ReLU; without BN the conv has a bias."""

    def __init__(self, kernel: int, in_channels: int, out_channels: int, stride: int = 1,
                 with_bn: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, (kernel - 1) // 2,
                              bias=not with_bn)
        self.bn = nn.BatchNorm2d(out_channels) if with_bn else nn.Identity()
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class Residual(nn.Module):
    """Two 3x3 conv+BN (ReLU between) plus a shortcut (1x1 conv + BN when the stride or width
    changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.skip = (nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                   nn.BatchNorm2d(out_channels))
                     if stride != 1 or in_channels != out_channels else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(out + self.skip(x))


def _residuals(in_channels: int, out_channels: int, count: int, stride: int = 1,
               change_last: bool = False) -> nn.Sequential:
    """``count`` residuals from ``in_channels`` to ``out_channels``: the first changes width and
    stride (``change_last`` False) or the last one changes the width (the decoder side)."""
    if change_last:
        blocks = [Residual(in_channels, in_channels) for _ in range(count - 1)]
        blocks.append(Residual(in_channels, out_channels))
        return nn.Sequential(*blocks)
    blocks = [Residual(in_channels, out_channels, stride)]
    blocks += [Residual(out_channels, out_channels) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


class HourglassModule(nn.Module):
    """One recursive hourglass of order ``n``: x -> up1(x) + upsample(low3(low2(low1(x)))).

    ``low1`` halves the resolution (its first residual has stride 2), ``low2`` is the hourglass
    of order n - 1 (at n == 1 a stack of ``modules[1]`` residuals), ``low3`` returns to
    ``dims[0]`` channels.
    """

    def __init__(self, n: int, dims: Sequence[int], modules: Sequence[int]) -> None:
        super().__init__()
        curr, nxt = dims[0], dims[1]
        self.up1 = _residuals(curr, curr, modules[0])
        self.low1 = _residuals(curr, nxt, modules[0], stride=2)
        self.low2: nn.Module = (HourglassModule(n - 1, dims[1:], modules[1:]) if n > 1
                                else _residuals(nxt, nxt, modules[1]))
        self.low3 = _residuals(nxt, curr, modules[0], change_last=True)

    def forward(self, x: Tensor) -> Tensor:
        low = self.low3(self.low2(self.low1(x)))
        return self.up1(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class StackedHourglass(nn.Module):
    """The basenet: (B, 3, H, W) -> list of ``num_stacks`` features (B, cnv_dim, H/4, W/4).

    Between stacks: inter = residual(ReLU(BN(1x1(inter)) + BN(1x1(cnv)))); intermediate
    predictions are not fed back (as in CenterNet).
    """

    def __init__(self, order: int = 5, num_stacks: int = 2,
                 dims: Sequence[int] = HG104_DIMS, modules: Sequence[int] = HG104_MODULES,
                 cnv_dim: int = 256, stem_channels: int = 128) -> None:
        super().__init__()
        if len(dims) != order + 1 or len(modules) != order + 1:
            raise ValueError(f"an order-{order} hourglass needs {order + 1} dims and modules, "
                             f"got {len(dims)} and {len(modules)}")
        self.order, self.num_stacks = int(order), int(num_stacks)
        curr = dims[0]
        self.pre = nn.Sequential(ConvBNReLU(7, 3, stem_channels, stride=2),
                                 Residual(stem_channels, curr, stride=2))
        self.kps = nn.ModuleList(HourglassModule(order, dims, modules)
                                 for _ in range(num_stacks))
        self.cnvs = nn.ModuleList(ConvBNReLU(3, curr, cnv_dim) for _ in range(num_stacks))
        self.inters = nn.ModuleList(Residual(curr, curr) for _ in range(num_stacks - 1))
        self.inters_ = nn.ModuleList(_conv1x1_bn(curr, curr) for _ in range(num_stacks - 1))
        self.cnvs_ = nn.ModuleList(_conv1x1_bn(cnv_dim, curr) for _ in range(num_stacks - 1))
        self.relu = nn.ReLU(inplace=True)
        self.out_channels = int(cnv_dim)

    @property
    def input_multiple(self) -> int:
        """Input sides must be multiples of this (stride 4 stem, ``order`` halvings)."""
        return 4 * 2**self.order

    def forward(self, images: Tensor) -> list[Tensor]:
        m = self.input_multiple
        if images.shape[-2] % m or images.shape[-1] % m:
            raise ValueError(f"hourglass input sides must be multiples of {m}, got "
                             f"{tuple(images.shape[-2:])}")
        inter = self.pre(images)
        outs = []
        for s in range(self.num_stacks):
            cnv = self.cnvs[s](self.kps[s](inter))
            outs.append(cnv)
            if s < self.num_stacks - 1:
                inter = self.relu(self.inters_[s](inter) + self.cnvs_[s](cnv))
                inter = self.inters[s](inter)
        return outs


def _conv1x1_bn(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm2d(out_channels))


class HeatmapHeads(nn.Module):
    """Per stack a 1x1 conv (with bias) to K heatmap channels; no activation."""

    def __init__(self, in_channels: int, num_keypoints: int, num_stacks: int) -> None:
        super().__init__()
        self.hp_convs = nn.ModuleList(nn.Conv2d(in_channels, num_keypoints, 1)
                                      for _ in range(num_stacks))

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        return [conv(x) for conv, x in zip(self.hp_convs, features)]


class OffsetHeads(nn.Module):
    """Per stack a 1x1 conv to 2L guiding-offset channels (x, y per limb, input pixels) and,
    with ``with_scale``, a 1x1 conv to K keypoint-scale channels (training only)."""

    def __init__(self, in_channels: int, num_limbs: int, num_keypoints: int, num_stacks: int,
                 with_scale: bool) -> None:
        super().__init__()
        self.reg_convs = nn.ModuleList(nn.Conv2d(in_channels, 2 * num_limbs, 1)
                                       for _ in range(num_stacks))
        self.scale_convs = nn.ModuleList(nn.Conv2d(in_channels, num_keypoints, 1)
                                         for _ in range(num_stacks if with_scale else 0))

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        offsets = [conv(x) for conv, x in zip(self.reg_convs, features)]
        scales = [conv(x) for conv, x in zip(self.scale_convs, features)]
        return offsets, scales


class SimplePoseNet(nn.Module):
    """SimplePose V2: stacked hourglass + heatmap / offset (/ scale) heads.

    ``forward(images (B, 3, H, W))`` -> (heatmaps (B, S, K, H/4, W/4), offsets
    (B, S, 2L, H/4, W/4)) and, when built ``with_scale``, scales (B, S, K, H/4, W/4).
    S = stacks (inference uses the last, ``[:, -1]``); offset channel 2l is x, 2l + 1 is y of
    limb l, in input pixels; no output activations. H and W must be multiples of
    ``input_multiple`` (128 for order 5).

    Args:
        num_keypoints: K. num_limbs: L (19 COCO limbs).
        num_stacks: S. order: hourglass recursion depth n. dims / modules: widths and residual
            counts per level (n + 1 entries each). cnv_dim: feature width after each stack.
        stem_channels: width of the 7x7 stem conv (its residual then goes to dims[0]).
        with_scale: add the training-only keypoint-scale head.
    """

    def __init__(self, num_keypoints: int = 17, num_limbs: int = 19, num_stacks: int = 2,
                 order: int = 5, dims: Sequence[int] = HG104_DIMS,
                 modules: Sequence[int] = HG104_MODULES, cnv_dim: int = 256,
                 stem_channels: int = 128, with_scale: bool = False) -> None:
        super().__init__()
        self.basenet = StackedHourglass(order, num_stacks, dims, modules, cnv_dim,
                                        stem_channels)
        self.headnets = nn.ModuleList([
            HeatmapHeads(cnv_dim, num_keypoints, num_stacks),
            OffsetHeads(cnv_dim, num_limbs, num_keypoints, num_stacks, with_scale),
        ])
        self.num_keypoints, self.num_limbs = int(num_keypoints), int(num_limbs)
        self.num_stacks, self.with_scale = int(num_stacks), bool(with_scale)

    @property
    def input_multiple(self) -> int:
        return self.basenet.input_multiple

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        features = self.basenet(images)
        heatmaps = torch.stack(self.headnets[0](features), 1)
        offsets, scales = self.headnets[1](features)
        if self.with_scale:
            return heatmaps, torch.stack(offsets, 1), torch.stack(scales, 1)
        return heatmaps, torch.stack(offsets, 1)


def simplepose_arch(num_keypoints: int = 17, num_limbs: int = 19, num_stacks: int = 2,
                    order: int = 5, dims: Sequence[int] = HG104_DIMS,
                    modules: Sequence[int] = HG104_MODULES, cnv_dim: int = 256,
                    stem_channels: int = 128, with_scale: bool = False) -> dict[str, Any]:
    """All ``SimplePoseNet`` arguments, defaults filled in, in canonical JSON-compatible form
    (the registry compares these to name a checkpoint's architecture)."""
    return {"num_keypoints": int(num_keypoints), "num_limbs": int(num_limbs),
            "num_stacks": int(num_stacks), "order": int(order), "dims": [int(d) for d in dims],
            "modules": [int(m) for m in modules], "cnv_dim": int(cnv_dim),
            "stem_channels": int(stem_channels), "with_scale": bool(with_scale)}


def build_simplepose(**kwargs: Any) -> SimplePoseNet:
    """A ``SimplePoseNet`` (arguments: ``simplepose_arch``) with the official random
    initialisation (conv weights N(0, 0.001), biases 0, BN 1 / 0; OffsetGuided
    ``initialize_weights``)."""
    model = SimplePoseNet(**simplepose_arch(**kwargs))
    init_official(model)
    return model
