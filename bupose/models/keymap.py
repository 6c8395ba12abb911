"""State-dict key layouts of the checkpoints bupose reads, their mapping to bupose's, and
architecture inference from keys and shapes.

bupose keys are ``backbone.<official name>`` and ``head.<official name>``: the official
HigherHRNet / fusion module names are kept inside our modules, so every mapping is a prefix:

| layout          | example key                                  | bupose key                     |
| official        | stage2.0.branches.0.0.conv1.weight           | backbone.stage2.0.branches...  |
| official        | final_layers.0.weight, deconv_layers.0...    | head.final_layers.0.weight ... |
| fusion official | davit.main_blocks.0.0.0.attn.qkv.weight,     | backbone.davit..., backbone.   |
|                 | conv_128.weight, bn1_128.weight              | conv_128.weight ...            |
| mmpose 0.x      | backbone.layer1.0.conv1.weight               | unchanged                      |
| mmpose 0.x      | keypoint_head.final_layers.* / deconv_layers | head.final_layers.* ...        |
| mmpose 0.x      | keypoint_head.final_layer.* (AESimpleHead)   | head.final_layers.0.*          |
| ImageNet HRNet  | conv1.weight ... stage4 (+ incre_modules,    | backbone.* (classification     |
|                 | downsamp_modules, final_layer, classifier)   | parts ignored)                 |

Wrappers are stripped first: ``module.`` (DataParallel / DDP) and ``1.`` (the official FP16
``network_to_half`` Sequential, whose weights are fp16: cast to fp32).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

HEAD_ROOTS = ("final_layers", "deconv_layers")
CLASSIFICATION_ROOTS = ("incre_modules", "downsamp_modules", "final_layer", "classifier")
StateDict = dict[str, Tensor]


def strip_wrappers(state: StateDict) -> StateDict:
    """Remove ``module.`` then ``1.`` prefixes present on every key; floating tensors -> fp32."""
    for prefix in ("module.", "1."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return {k: (v.float() if v.is_floating_point() and v.dtype != torch.float32 else v)
            for k, v in state.items()}


def detect_layout(state: StateDict) -> str:
    """"bupose", "mmpose", "classification" (ImageNet HRNet) or "official"."""
    roots = {k.split(".", 1)[0] for k in state}
    if "keypoint_head" in roots:
        return "mmpose"
    if "head" in roots or (roots == {"backbone"}):
        return "bupose"
    if roots & set(CLASSIFICATION_ROOTS) and not roots & set(HEAD_ROOTS):
        return "classification"
    return "official"


def to_bupose(state: StateDict, layout: str) -> StateDict:
    """Rename keys of ``layout`` to bupose keys (classification heads are dropped)."""
    if layout == "bupose":
        return dict(state)
    out: StateDict = {}
    for key, value in state.items():
        if layout == "mmpose":
            if key.startswith("keypoint_head.final_layer."):
                key = "head.final_layers.0." + key[len("keypoint_head.final_layer."):]
            elif key.startswith("keypoint_head."):
                key = "head." + key[len("keypoint_head."):]
        else:
            root = key.split(".", 1)[0]
            if layout == "classification" and root in CLASSIFICATION_ROOTS:
                continue
            key = ("head." if root in HEAD_ROOTS else "backbone.") + key
        out[key] = value
    return out


def to_official(state: StateDict) -> StateDict:
    """bupose keys -> official HigherHRNet / fusion keys (no prefix)."""
    return {k.split(".", 1)[1]: v for k, v in state.items()}


def _indices(keys: list[str], prefix: str) -> list[int]:
    pat = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in keys if (m := pat.match(k))})


def _infer_stage(state: StateDict, keys: list[str], s: int) -> dict[str, Any]:
    p = f"backbone.stage{s}."
    modules = _indices(keys, p)
    branches = _indices(keys, f"{p}0.branches.")
    if not modules or not branches:
        raise KeyError(f"no keys {p}*")
    blocks, channels = [], []
    for b in branches:
        bp = f"{p}0.branches.{b}."
        blocks.append(len(_indices(keys, bp)))
        channels.append(int(state[f"{bp}0.conv1.weight"].shape[0]))
    block = "BOTTLENECK" if f"{p}0.branches.0.0.conv3.weight" in state else "BASIC"
    return {"num_modules": len(modules), "num_blocks": blocks, "num_channels": channels,
            "block": block}


def infer_davit(state: StateDict, keys: list[str] | None = None) -> dict[str, Any] | None:
    """DaViT branch settings from bupose keys `backbone.davit.*` (None when absent)."""
    keys = list(state) if keys is None else keys
    p = "backbone.davit."
    if f"{p}patch_embeds.0.proj.weight" not in state:
        return None
    stages = _indices(keys, f"{p}patch_embeds.")
    dims = [int(state[f"{p}patch_embeds.{i}.proj.weight"].shape[0]) for i in stages]
    depths = [len(_indices(keys, f"{p}main_blocks.{i}.")) for i in stages]
    hidden = state[f"{p}main_blocks.0.0.0.mlp.fc1.weight"].shape[0]
    # heads and window size change no shape: the fusion model's head dim 16 and window 7
    return {"davit_dims": dims, "davit_depths": depths, "davit_heads": [d // 16 for d in dims],
            "window": 7, "mlp_ratio": hidden / dims[0], "drop_path_rate": 0.1}


def infer_arch(state: StateDict, num_keypoints: int | None = None) -> dict[str, Any]:
    """``resolve_arch`` arguments from a bupose-keyed state dict.

    K: the channels of an output without tags (HigherHRNet's stride-2 output); when every output
    has tags (bottom-up HRNet) K = channels / 2 (per-joint tags, D = 1) unless ``num_keypoints``
    is given. Raises KeyError / ValueError when the keys do not describe an HRNet pose model.
    """
    from bupose.models.zoo import resolve_arch

    keys = list(state)
    n_out = len(_indices(keys, "head.final_layers."))
    if n_out == 0:
        raise KeyError("no keys head.final_layers.*")
    out_ch = [int(state[f"head.final_layers.{i}.weight"].shape[0]) for i in range(n_out)]
    k = num_keypoints or (min(out_ch) if len(set(out_ch)) > 1 else out_ch[0] // 2)
    tag_ch = {c - k for c in out_ch if c > k}
    if len(tag_ch) > 1 or any(c < k for c in out_ch):
        raise ValueError(f"output channels {out_ch} do not fit K = {k}")
    t = tag_ch.pop() if tag_ch else k
    per_joint = t % k == 0
    stages = [_infer_stage(state, keys, s) for s in (2, 3, 4)]
    prev = stages[-1]["num_channels"][0]
    deconv_channels, kernels, cat = [], [], []
    for i in range(n_out - 1):
        w = state[f"head.deconv_layers.{i}.0.0.weight"]  # (in, out, k, k)
        cat.append(int(w.shape[0]) != prev)
        deconv_channels.append(int(w.shape[1]))
        kernels.append(int(w.shape[2]))
        prev = int(w.shape[1])
    blocks = len(_indices(keys, "head.deconv_layers.0.")) - 1 if n_out > 1 else 4
    return resolve_arch(
        num_keypoints=k, tag_dim=t // k if per_joint else t, tag_per_joint=per_joint,
        stages=stages, deconv_channels=deconv_channels, deconv_kernels=kernels,
        num_basic_blocks=blocks, cat_output=cat,
        final_conv_kernel=int(state["head.final_layers.0.weight"].shape[-1]),
        tag_stages=[c > k for c in out_ch], davit=infer_davit(state, keys))
