"""Registered model factories (the names users pick) and their builders.

A ``ModelEntry`` belongs to a family: "ae" (HigherHRNet / HRNet with associative embedding,
built by ``build_higherhrnet``), "offsets" (SimplePose V2, ``hourglass.build_simplepose``) or
"topdown" (CAL, ``cal_hrnet.build_cal_hrnet``). Every factory takes ``num_keypoints`` and any
architecture argument of its builder as an override, so ``create_model(name, **kwargs)``
rebuilds any model of the family, whatever its widths, from JSON-compatible kwargs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from bupose.models.cal_hrnet import build_cal_hrnet, cal_arch
from bupose.models.fusion import HRNetDaViT
from bupose.models.heads import HigherHRNetHead
from bupose.models.hourglass import build_simplepose, simplepose_arch
from bupose.models.hrnet import HRNet, StageSpec, hrnet_stages
from bupose.models.layers import init_official
from bupose.models.posenet import PoseNet
from bupose.registry import Registry

DAVIT_DEFAULTS: dict[str, Any] = {
    "davit_dims": [64, 128, 192, 256], "davit_depths": [1, 1, 3, 1],
    "davit_heads": [4, 8, 12, 16], "window": 7, "mlp_ratio": 4.0, "drop_path_rate": 0.1,
}


def resolve_arch(num_keypoints: int = 17, tag_dim: int = 1, tag_per_joint: bool = True,
                 width: int = 32, num_blocks: int = 4, num_modules: Sequence[int] = (1, 4, 3),
                 stages: Sequence[dict[str, Any]] | None = None, num_deconvs: int = 1,
                 deconv_channels: Sequence[int] | None = None,
                 deconv_kernels: Sequence[int] | None = None, num_basic_blocks: int = 4,
                 cat_output: Sequence[bool] | None = None, final_conv_kernel: int = 1,
                 tag_stages: Sequence[bool] | None = None,
                 davit: dict[str, Any] | None = None) -> dict[str, Any]:
    """All architecture arguments, defaults filled in, in canonical JSON-compatible form.

    Args:
        num_keypoints: K. tag_dim: D. tag_per_joint: K*D tag channels (else D).
        width / num_blocks / num_modules: HRNet-W``width`` stages (branches C, 2C, 4C, 8C,
            ``num_blocks`` BASIC blocks per branch, modules per stage 2-4), unless ``stages``
            gives stages 2-4 explicitly as dicts (num_modules, num_blocks, num_channels, block).
        num_deconvs: HigherHRNet deconvolutions (0 = bottom-up HRNet head).
        deconv_channels / deconv_kernels / cat_output: per deconvolution (default width / 4 /
            True). num_basic_blocks, final_conv_kernel: see ``HigherHRNetHead``.
        tag_stages: per output, whether it has tag channels (default: only the first).
        davit: None, or DaViT branch settings (``DAVIT_DEFAULTS`` keys; {} = the fusion model's).
    """
    if stages is None:
        specs = hrnet_stages(width, num_blocks, num_modules)
    else:
        specs = tuple(StageSpec(**dict(s)) for s in stages)
    n = len(deconv_channels) if deconv_channels is not None else num_deconvs
    stage0_channels = specs[-1].out_channels[0]
    arch: dict[str, Any] = {
        "num_keypoints": int(num_keypoints), "tag_dim": int(tag_dim),
        "tag_per_joint": bool(tag_per_joint),
        "stages": [{"num_modules": s.num_modules, "num_blocks": list(s.num_blocks),
                    "num_channels": list(s.num_channels), "block": s.block} for s in specs],
        "deconv_channels": [int(c) for c in _or(deconv_channels, [stage0_channels] * n)],
        "deconv_kernels": [int(k) for k in _or(deconv_kernels, [4] * n)],
        "num_basic_blocks": int(num_basic_blocks),
        "cat_output": [bool(c) for c in _or(cat_output, [True] * n)],
        "final_conv_kernel": int(final_conv_kernel),
        "tag_stages": [bool(t) for t in _or(tag_stages, [True] + [False] * n)],
        "davit": None if davit is None else {**DAVIT_DEFAULTS, **davit},
    }
    if arch["davit"] is not None:
        unknown = set(arch["davit"]) - set(DAVIT_DEFAULTS)
        if unknown:
            raise ValueError(f"unknown DaViT settings {sorted(unknown)}")
        arch["davit"] = {k: (list(v) if isinstance(v, (list, tuple)) else v)
                         for k, v in arch["davit"].items()}
    return arch


def _or(value: Sequence[Any] | None, default: Sequence[Any]) -> Sequence[Any]:
    return default if value is None else value


def build_higherhrnet(**kwargs: Any) -> PoseNet:
    """HRNet (or HRNet+DaViT) backbone + HigherHRNet head, officially initialised (conv
    N(0, 0.001), BN 1/0). Arguments: see ``resolve_arch``."""
    arch = resolve_arch(**kwargs)
    specs = [StageSpec(**s) for s in arch["stages"]]
    backbone = (HRNet(specs) if arch["davit"] is None else HRNetDaViT(specs, **arch["davit"]))
    head = HigherHRNetHead(
        backbone.out_channels, arch["num_keypoints"], arch["tag_dim"], arch["tag_per_joint"],
        arch["deconv_channels"], arch["deconv_kernels"], arch["num_basic_blocks"],
        arch["cat_output"], arch["final_conv_kernel"], arch["tag_stages"])
    model = PoseNet(backbone, head)
    init_official(model)
    return model


FAMILIES = ("ae", "offsets", "topdown")


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its defaults (over its builder's), input size and a summary.

    Attributes:
        defaults: builder arguments of this entry.
        input_size: S (bottom-up: square training / test side) or (h, w) (top-down crops).
        description: one line for ``bupose models``.
        family: "ae", "offsets" or "topdown" (which task, decoder and predictor fit).
        builder: ``builder(**kwargs) -> nn.Module``, officially initialised.
        resolver: ``resolver(**kwargs) -> dict``: the builder's arguments in canonical form.
    """

    defaults: dict[str, Any]
    input_size: int | tuple[int, int]
    description: str
    family: str = "ae"
    builder: Callable[..., nn.Module] = build_higherhrnet
    resolver: Callable[..., dict[str, Any]] = resolve_arch

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown model family {self.family!r} (known: {FAMILIES})")

    def build(self, **kwargs: Any) -> Any:
        return self.builder(**{**self.defaults, **kwargs})

    def arch(self, **kwargs: Any) -> dict[str, Any]:
        return self.resolver(**{**self.defaults, **kwargs})


MODELS: Registry[ModelEntry] = Registry("model")


def _register(name: str, input_size: int, description: str, **defaults: Any) -> None:
    MODELS.add(name, ModelEntry(defaults, input_size, description))


_register("higherhrnet_w32_512", 512, "HigherHRNet-W32, 512 input (HigherHRNet, HAE)", width=32)
_register("higherhrnet_w32_640", 640, "HigherHRNet-W32, 640 input", width=32)
_register("higherhrnet_w48_640", 640, "HigherHRNet-W48, 640 input", width=48)
_register("hrnet_w32_ae_512", 512,
          "bottom-up HRNet-W32: 1x1 conv at stride 4, K heatmaps + K tags, no deconv",
          width=32, num_deconvs=0)
_register("higherhrnet_w32_davit_512", 512,
          "CNN-ViT fusion: HigherHRNet-W32 + DaViT branch + 4 fusion convs", width=32, davit={})
_register("higherhrnet_tiny", 256,
          "tiny HigherHRNet (W16, 1 block per branch, modules 1/1/2, 16-ch deconv) for tests",
          width=16, num_blocks=1, num_modules=[1, 1, 2])


def _register_offsets(name: str, input_size: int, description: str, **defaults: Any) -> None:
    MODELS.add(name, ModelEntry(defaults, input_size, description, "offsets",
                                build_simplepose, simplepose_arch))


def _register_topdown(name: str, input_hw: tuple[int, int], description: str,
                      **defaults: Any) -> None:
    MODELS.add(name, ModelEntry(defaults, input_hw, description, "topdown",
                                build_cal_hrnet, cal_arch))


_register_offsets("simplepose_hg104", 640,
                  "SimplePose V2: 2-stack hourglass-104, heatmaps + 19 guiding offsets")
_register_offsets("simplepose_hg_small", 256,
                  "small SimplePose V2 hourglass (widths 48-96, 1 residual per level), CPU",
                  dims=[48, 48, 64, 64, 96, 96], modules=[1, 1, 1, 1, 1, 2], cnv_dim=48,
                  stem_channels=24)
# Reference quirk (released w48_128x96 yaml): the offset branch's stage 4 is 144 wide at
# stride 4 (STAGE4OM NUM_CHANNELS [144, 96, 192, 384]); reproduced for its weights.
_W48_128X96_OM = {"num_modules": 3, "num_blocks": [4, 4, 4, 4],
                  "num_channels": [144, 96, 192, 384], "block": "BASIC"}
_register_topdown("cal_hrnet_w32_64x48", (64, 48), "CAL HRNet-W32, 64x48 crops (3-branch stage 4)",
                  width=32, stage4_branches=3)
_register_topdown("cal_hrnet_w48_64x48", (64, 48), "CAL HRNet-W48, 64x48 crops (3-branch stage 4)",
                  width=48, stage4_branches=3)
_register_topdown("cal_hrnet_w32_128x96", (128, 96), "CAL HRNet-W32, 128x96 crops", width=32)
_register_topdown("cal_hrnet_w48_128x96", (128, 96),
                  "CAL HRNet-W48, 128x96 crops (144-wide offset branch, as released)",
                  width=48, stage4_om=_W48_128X96_OM)
_register_topdown("cal_hrnet_w32_256x256_mpii", (256, 256), "CAL HRNet-W32, MPII 16 joints",
                  width=32, num_keypoints=16)
_register_topdown("cal_hrnet_w48_256x256_mpii", (256, 256), "CAL HRNet-W48, MPII 16 joints",
                  width=48, num_keypoints=16)
_register_topdown("cal_hrnet_small_64x48", (64, 48),
                  "small CAL HRNet (W16, 2 blocks, 1 module per stage), CPU",
                  width=16, stage4_branches=3, num_blocks=2, num_modules=[1, 1, 1])


_FAMILY_BASE = {"offsets": "simplepose_hg104", "topdown": "cal_hrnet_w32_128x96"}


def match_registered(arch: dict[str, Any], input_size: int | tuple[int, int] | None = None,
                     family: str = "ae") -> tuple[str, dict]:
    """The registered name for a canonical ``arch`` of ``family`` and the kwargs that rebuild
    it from there: an entry whose defaults give exactly ``arch`` (same input size, then same K
    preferred) with just ``num_keypoints`` etc. differences, else the closest family member
    with ``arch`` as explicit overrides."""
    names = [n for n in MODELS.names() if MODELS.get(n).family == family]
    exact = [n for n in names
             if _arch_without_head_k(MODELS.get(n).arch()) == _arch_without_head_k(arch)]
    exact.sort(key=lambda n: (MODELS.get(n).input_size != input_size,
                              MODELS.get(n).arch().get("num_keypoints")
                              != arch.get("num_keypoints")))
    if exact:
        base = MODELS.get(exact[0]).arch()
        return exact[0], {k: v for k, v in arch.items() if base.get(k) != v}
    if family == "topdown" and len(arch["stages"][-1]["num_channels"]) == 3:
        name = "cal_hrnet_w32_64x48"  # the released 64x48 configs: 3-branch stage 4
    elif family != "ae":
        name = _FAMILY_BASE[family]
    elif arch["davit"] is not None:
        name = "higherhrnet_w32_davit_512"
    elif not arch["deconv_channels"]:
        name = "hrnet_w32_ae_512"
    else:
        name = "higherhrnet_w32_512"
    base = MODELS.get(name).arch()
    return name, {k: v for k, v in arch.items() if base.get(k) != v}


def _arch_without_head_k(arch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in arch.items() if k not in ("num_keypoints", "tag_dim",
                                                         "tag_per_joint")}
