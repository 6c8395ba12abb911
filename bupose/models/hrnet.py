"""HRNet backbone (ALGORITHMS.md §1.3): stem to stride 4, four stages of parallel branches at
strides 4/8/16/32 with exchange (fusion) units, ending in the stride-4 branch.

Module names (conv1, bn1, conv2, bn2, layer1, transition1, stage2 ... stage4) and the layout
inside them equal the official HigherHRNet / HRNet-ImageNet code, so official weights load under
the prefix ``backbone.``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from bupose.models.layers import BLOCKS, BN_MOMENTUM, conv_bn, make_blocks

# inject(level, features) -> features: a hook the fusion model uses to mix in another branch.
# level 0 = stem output (stride 4, before layer1); level s = the new branch created by
# transition s (stride 2 ** (s + 2)), before stage s + 1.
Inject = Callable[[int, Tensor], Tensor]


@dataclass(frozen=True)
class StageSpec:
    """One HRNet stage (official MODEL.EXTRA.STAGEn).

    Attributes:
        num_modules: exchange units (HighResolutionModules) in the stage.
        num_blocks: residual blocks per branch, one entry per branch.
        num_channels: planes per branch (output channels = planes * block expansion).
        block: "BASIC" or "BOTTLENECK".
    """

    num_modules: int
    num_blocks: tuple[int, ...]
    num_channels: tuple[int, ...]
    block: str = "BASIC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_blocks", tuple(int(b) for b in self.num_blocks))
        object.__setattr__(self, "num_channels", tuple(int(c) for c in self.num_channels))
        if len(self.num_blocks) != len(self.num_channels):
            raise ValueError(f"stage has {len(self.num_blocks)} block counts for "
                             f"{len(self.num_channels)} branches")
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block {self.block!r} (known: {sorted(BLOCKS)})")
        if self.num_modules < 1:
            raise ValueError("a stage needs at least one module")

    @property
    def num_branches(self) -> int:
        return len(self.num_channels)

    @property
    def out_channels(self) -> tuple[int, ...]:
        return tuple(c * BLOCKS[self.block].expansion for c in self.num_channels)


def hrnet_stages(width: int, num_blocks: int = 4,
                 num_modules: Sequence[int] = (1, 4, 3)) -> tuple[StageSpec, ...]:
    """Stages 2-4 of HRNet-W``width``: branches (C, 2C, 4C, 8C), BASIC blocks."""
    stages = []
    for s, modules in enumerate(num_modules):
        n = s + 2
        stages.append(StageSpec(int(modules), (num_blocks,) * n,
                                tuple(width * 2**b for b in range(n))))
    return tuple(stages)


class HighResolutionModule(nn.Module):
    """Parallel residual branches followed by the exchange unit.

    Target i sums every branch j: j > i via 1x1 conv + BN + nearest upsample x2^(j-i); j < i via
    (i - j) 3x3 stride-2 conv + BN (ReLU between them); then ReLU. With ``multi_scale_output``
    False only the stride-4 target is produced.
    """

    def __init__(self, in_channels: Sequence[int], spec: StageSpec,
                 multi_scale_output: bool = True) -> None:
        super().__init__()
        if len(in_channels) != spec.num_branches:
            raise ValueError(f"{len(in_channels)} inputs for {spec.num_branches} branches")
        self.branches = nn.ModuleList(
            make_blocks(spec.block, c_in, planes, blocks)
            for c_in, planes, blocks in zip(in_channels, spec.num_channels, spec.num_blocks))
        self.channels = spec.out_channels
        n = spec.num_branches
        targets = n if multi_scale_output else 1
        self.fuse_layers = (nn.ModuleList(
            nn.ModuleList(self._fuse_layer(i, j) for j in range(n)) for i in range(targets))
            if n > 1 else None)
        self.relu = nn.ReLU(inplace=True)

    def _fuse_layer(self, i: int, j: int) -> nn.Module:
        c = self.channels
        if j == i:
            return nn.Identity()
        if j > i:
            return nn.Sequential(
                nn.Conv2d(c[j], c[i], 1, bias=False),
                nn.BatchNorm2d(c[i], momentum=BN_MOMENTUM),
                nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
            )
        steps = [conv_bn(c[j], c[j], 3, stride=2) for _ in range(i - j - 1)]
        steps.append(conv_bn(c[j], c[i], 3, stride=2, relu=False))
        return nn.Sequential(*steps)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        outs = []
        for i, layers in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else layers[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else layers[j](xs[j]))
            outs.append(self.relu(y))
        return outs


def make_transition(prev: Sequence[int], cur: Sequence[int]) -> nn.ModuleList:
    """Channel adapters between stages: existing branch i gets 3x3 conv+BN+ReLU when its channel
    count changes (else identity); each new branch is made from the lowest-resolution input by
    3x3 stride-2 conv+BN+ReLU steps."""
    layers: list[nn.Module] = []
    for i, c in enumerate(cur):
        if i < len(prev):
            layers.append(conv_bn(prev[i], c, 3) if prev[i] != c else nn.Identity())
            continue
        steps = [conv_bn(prev[-1], prev[-1], 3, stride=2) for _ in range(i - len(prev))]
        steps.append(conv_bn(prev[-1], c, 3, stride=2))
        layers.append(nn.Sequential(*steps))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet backbone: (B, 3, H, W) normalised image -> list of branch features.

    Args:
        stages: specs of stages 2, 3, 4 (see ``hrnet_stages``).
        multi_scale_output: False (pose): the last module of the last stage outputs only the
            stride-4 branch, as in HigherHRNet.
    """

    def __init__(self, stages: Sequence[StageSpec], multi_scale_output: bool = False) -> None:
        super().__init__()
        if len(stages) != 3:
            raise ValueError(f"HRNet needs specs for stages 2, 3 and 4, got {len(stages)}")
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_blocks("BOTTLENECK", 64, 64, 4)
        self.stage_specs = tuple(stages)
        prev: tuple[int, ...] = (256,)
        for s, spec in enumerate(stages, start=2):
            self.add_module(f"transition{s - 1}", make_transition(prev, spec.out_channels))
            last = s == 4 and not multi_scale_output
            modules = []
            for m in range(spec.num_modules):
                single = last and m == spec.num_modules - 1
                modules.append(HighResolutionModule(spec.out_channels, spec, not single))
            self.add_module(f"stage{s}", nn.Sequential(*modules))
            prev = spec.out_channels
        self.out_channels = prev[0]

    def stem(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, 64, H/4, W/4)."""
        x = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(x)))

    def forward(self, x: Tensor, inject: Inject | None = None) -> list[Tensor]:
        """(B, 3, H, W) -> [(B, C0, H/4, W/4)] (or all branches with multi_scale_output)."""
        x = self.stem(x)
        if inject is not None:
            x = inject(0, x)
        ys = [self.layer1(x)]
        for level in (1, 2, 3):
            transition: nn.ModuleList = getattr(self, f"transition{level}")
            xs = [t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(transition)]
            if inject is not None:
                xs[-1] = inject(level, xs[-1])
            ys = getattr(self, f"stage{level + 1}")(xs)
        return ys
