"""CAL's two-branch top-down HRNet (ALGORITHMS.md §6.1).

HRNet stem, layer1 and stages 2-3 are shared; then two stage-4 copies, (``transition3``,
``stage4``) for the heatmap branch and (``transition3_om``, ``stage4_om``) for the offset
branch, each keeping only its stride-4 output; heads of two BasicBlocks + a conv:
``head_hm`` -> K heatmaps, ``head_om`` -> 2K offsets (x_0, y_0, x_1, y_1 ... in LOCREF_STDEV
heatmap cells). No output activations. Module names equal the official
``PoseHighResolutionNet`` of ilovepose/Low-resolution-human-pose, so its weights load as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from bupose.models.hrnet import HighResolutionModule, HRNet, StageSpec, make_transition
from bupose.models.layers import BLOCKS, init_official


def cal_stages(width: int, stage4_branches: int = 4, num_blocks: int = 4,
               num_modules: Sequence[int] = (1, 4, 3)) -> list[dict[str, Any]]:
    """Stages 2-4 of a CAL HRNet-W``width`` as JSON-compatible dicts (``StageSpec`` fields).

    ``stage4_branches`` 3: the released 64x48 configs (no stride-32 branch), 4: 128x96 and up.
    """
    out = []
    for modules, branches in zip(num_modules, (2, 3, stage4_branches)):
        out.append({"num_modules": int(modules), "num_blocks": [int(num_blocks)] * branches,
                    "num_channels": [width * 2**b for b in range(branches)],
                    "block": "BASIC"})
    return out


class CALHead(nn.Module):
    """Two residual blocks at the branch width, then a ``kernel`` x ``kernel`` conv (bias) to
    ``out_channels``. Attribute names carry the branch ``kind`` ("hm" / "om") as in the
    official ``HeadHeatMap`` / ``HeadOffsetMap``."""

    def __init__(self, in_channels: int, out_channels: int, kind: str, block: str = "BASIC",
                 kernel: int = 1) -> None:
        super().__init__()
        cls = BLOCKS[block]
        if in_channels % cls.expansion:
            raise ValueError(f"{block} head needs a width divisible by {cls.expansion}")
        planes = in_channels // cls.expansion
        self.kind = kind
        self.final_block1 = cls(in_channels, planes)
        setattr(self, f"final_block_{kind}", cls(in_channels, planes))
        setattr(self, f"final_layer_{kind}",
                nn.Conv2d(in_channels, out_channels, kernel, 1, 1 if kernel == 3 else 0))

    def forward(self, x: Tensor) -> Tensor:
        x = getattr(self, f"final_block_{self.kind}")(self.final_block1(x))
        return getattr(self, f"final_layer_{self.kind}")(x)


class CALHRNet(HRNet):
    """images (B, 3, h, w) -> (heatmaps (B, K, h/4, w/4), offsets (B, 2K, h/4, w/4)).

    Args:
        stages: stages 2, 3, 4 (``StageSpec`` or dicts of its fields); stage 4 is the heatmap
            branch's.
        stage4_om: the offset branch's stage 4 (default: a copy of ``stages[2]``, the port rule
            for the released yamls without STAGE4OM). Its transition is always built from
            stage 4's channels (reference quirk, w48_128x96: STAGE4OM widths 144/96/192/384
            give a 48->144 projection in the first block and a 144-wide ``head_om``).
        num_keypoints: K. final_block: head residual block ("BASIC"). final_conv_kernel: 1 or 3.
    """

    def __init__(self, stages: Sequence[StageSpec | dict[str, Any]],
                 stage4_om: StageSpec | dict[str, Any] | None = None, num_keypoints: int = 17,
                 final_block: str = "BASIC", final_conv_kernel: int = 1) -> None:
        specs = [s if isinstance(s, StageSpec) else StageSpec(**_spec_kwargs(s))
                 for s in stages]
        super().__init__(specs, multi_scale_output=False)
        om = specs[2] if stage4_om is None else (
            stage4_om if isinstance(stage4_om, StageSpec) else StageSpec(**_spec_kwargs(stage4_om)))
        if om.num_branches != specs[2].num_branches:
            raise ValueError(f"stage4_om has {om.num_branches} branches, stage 4 has "
                             f"{specs[2].num_branches}")
        channels = specs[2].out_channels
        self.transition3_om = make_transition(specs[1].out_channels, channels)
        modules = []
        for m in range(om.num_modules):
            last = m == om.num_modules - 1
            modules.append(HighResolutionModule(channels, om, multi_scale_output=not last))
            channels = om.out_channels
        self.stage4_om = nn.Sequential(*modules)
        k = int(num_keypoints)
        self.head_hm = CALHead(specs[2].out_channels[0], k, "hm", final_block, final_conv_kernel)
        self.head_om = CALHead(om.out_channels[0], 2 * k, "om", final_block, final_conv_kernel)
        self.num_keypoints = k

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        ys = [self.layer1(self.stem(images))]
        for level in (1, 2):
            transition: nn.ModuleList = getattr(self, f"transition{level}")
            xs = [t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(transition)]
            ys = getattr(self, f"stage{level + 1}")(xs)
        hm = self.stage4(_apply(self.transition3, ys))
        om = self.stage4_om(_apply(self.transition3_om, ys))
        return self.head_hm(hm[0]), self.head_om(om[0])


def _apply(transition: nn.ModuleList, ys: list[Tensor]) -> list[Tensor]:
    return [t(ys[i] if i < len(ys) else ys[-1]) for i, t in enumerate(transition)]


def _spec_kwargs(d: dict[str, Any]) -> dict[str, Any]:
    return {"num_modules": d["num_modules"], "num_blocks": d["num_blocks"],
            "num_channels": d["num_channels"], "block": d.get("block", "BASIC")}


def cal_arch(num_keypoints: int = 17, width: int = 32, stage4_branches: int = 4,
             num_blocks: int = 4, num_modules: Sequence[int] = (1, 4, 3),
             stages: Sequence[dict[str, Any]] | None = None,
             stage4_om: dict[str, Any] | None = None, final_block: str = "BASIC",
             final_conv_kernel: int = 1) -> dict[str, Any]:
    """Canonical ``CALHRNet`` arguments (JSON-compatible, defaults filled in).

    ``stages`` (dicts of ``StageSpec`` fields) override ``width`` / ``stage4_branches`` /
    ``num_blocks`` / ``num_modules``; ``stage4_om`` defaults to stage 4.
    """
    if stages is None:
        stages = cal_stages(width, stage4_branches, num_blocks, num_modules)
    if len(stages) != 3:
        raise ValueError(f"CAL HRNet needs stages 2, 3 and 4, got {len(stages)}")
    canon = [_canonical(s) for s in stages]
    return {"num_keypoints": int(num_keypoints), "stages": canon,
            "stage4_om": canon[2] if stage4_om is None else _canonical(stage4_om),
            "final_block": str(final_block).upper(),
            "final_conv_kernel": int(final_conv_kernel)}


def _canonical(s: StageSpec | dict[str, Any]) -> dict[str, Any]:
    spec = s if isinstance(s, StageSpec) else StageSpec(**_spec_kwargs(s))
    return {"num_modules": spec.num_modules, "num_blocks": list(spec.num_blocks),
            "num_channels": list(spec.num_channels), "block": spec.block}


def build_cal_hrnet(**kwargs: Any) -> CALHRNet:
    """A CAL HRNet (arguments: ``cal_arch``) with the official random initialisation (conv
    N(0, 0.001), biases 0, BN 1 / 0)."""
    model = CALHRNet(**cal_arch(**kwargs))
    init_official(model)
    return model
