"""Official OffsetGuided (SimplePose V2) and CAL checkpoints: layout detection and the model
they need, from the weights' keys and shapes or (CAL) from an official yaml.

* OffsetGuided: ``{'epoch', 'train_loss', 'model_state_dict'[, 'optimizer_state_dict',
  'amp']}``, keys ``basenet.*`` / ``headnets.*`` possibly prefixed ``module.``; with or
  without the training-only scale head (``headnets.1.scale_convs.*``). Our module names are
  the official ones, so keys are used as they are.
* CAL: a plain state dict (``final_state.pth``, ``model_best.pth``) or a training
  ``checkpoint.pth`` (``state_dict`` / ``best_state_dict``, ``module.`` prefix); keys
  ``conv1 ... stage4_om, head_hm, head_om`` as in ``bupose.models.cal_hrnet``.

The official loaders are non-strict (``strict=False``); bupose loads strictly and lists
missing / unexpected / mis-shaped keys (``checkpoint.check_state_dict``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from bupose.errors import CheckpointError, ConfigError
from bupose.models.keymap import StateDict, _indices
from bupose.models.official_cal_config import RELEASED_TEST
from bupose.models.posenet import ModelMeta

FAMILY_LAYOUTS = {"offsetguided": "offsets", "cal": "topdown"}
SCALE_HEAD = "headnets.1.scale_convs."


def family_layout(state: StateDict) -> str | None:
    """"offsetguided", "cal" or None (another layout) from the root names of the keys."""
    roots = {k.split(".", 1)[0] for k in state}
    if {"basenet", "headnets"} <= roots:
        return "offsetguided"
    if roots & {"head_hm", "head_om", "stage4_om"}:
        return "cal"
    return None


def infer_simplepose(state: StateDict) -> dict[str, Any]:
    """``simplepose_arch`` of an OffsetGuided state dict (KeyError when keys are missing)."""
    from bupose.models.hourglass import simplepose_arch

    keys = list(state)
    stacks = len(_indices(keys, "basenet.kps."))
    if stacks == 0:
        raise KeyError("no keys basenet.kps.*")
    dims, modules = [], []
    p = "basenet.kps.0."
    while f"{p}up1.0.conv1.weight" in state:
        dims.append(int(state[f"{p}up1.0.conv1.weight"].shape[0]))
        modules.append(len(_indices(keys, f"{p}up1.")))
        if f"{p}low2.up1.0.conv1.weight" not in state:  # innermost level: low2 is residuals
            dims.append(int(state[f"{p}low1.0.conv1.weight"].shape[0]))
            modules.append(len(_indices(keys, f"{p}low2.")))
        p += "low2."
    return simplepose_arch(
        num_keypoints=int(state["headnets.0.hp_convs.0.weight"].shape[0]),
        num_limbs=int(state["headnets.1.reg_convs.0.weight"].shape[0]) // 2,
        num_stacks=stacks, order=len(dims) - 1, dims=dims, modules=modules,
        cnv_dim=int(state["basenet.cnvs.0.conv.weight"].shape[0]),
        stem_channels=int(state["basenet.pre.0.conv.weight"].shape[0]),
        with_scale=f"{SCALE_HEAD}0.weight" in state)


def _stage(state: StateDict, keys: list[str], prefix: str) -> dict[str, Any]:
    modules = _indices(keys, prefix)
    branches = _indices(keys, f"{prefix}0.branches.")
    if not modules or not branches:
        raise KeyError(f"no keys {prefix}*")
    blocks, channels = [], []
    for b in branches:
        bp = f"{prefix}0.branches.{b}."
        blocks.append(len(_indices(keys, bp)))
        channels.append(int(state[f"{bp}0.conv1.weight"].shape[0]))
    block = "BOTTLENECK" if f"{prefix}0.branches.0.0.conv3.weight" in state else "BASIC"
    return {"num_modules": len(modules), "num_blocks": blocks, "num_channels": channels,
            "block": block}


def infer_cal(state: StateDict) -> dict[str, Any]:
    """``cal_arch`` of a CAL state dict (KeyError when keys are missing)."""
    from bupose.models.cal_hrnet import cal_arch

    keys = list(state)
    final = state["head_hm.final_layer_hm.weight"]
    block = "BOTTLENECK" if "head_hm.final_block1.conv3.weight" in state else "BASIC"
    return cal_arch(num_keypoints=int(final.shape[0]),
                    stages=[_stage(state, keys, f"stage{s}.") for s in (2, 3, 4)],
                    stage4_om=_stage(state, keys, "stage4_om."), final_block=block,
                    final_conv_kernel=int(final.shape[-1]))


def model_from_cal_config(config: str | os.PathLike, source: str = "random") -> nn.Module:
    """A CAL model with an official yaml's architecture, crop size (h, w), keypoint spec and
    TEST settings (+ ``locref_stdev``) in ``.meta``; randomly initialised."""
    from bupose.models import create_model, default_spec
    from bupose.models.official_cal_config import read_cal_config
    from bupose.models.zoo import match_registered
    from bupose.structures.spec import get_spec

    cfg = read_cal_config(config)
    name, kwargs = match_registered(cfg.arch, cfg.input_size, "topdown")
    net = create_model(name, **kwargs)
    spec = get_spec(cfg.spec_name) if cfg.spec_name else None
    if spec is None or spec.num_keypoints != net.num_keypoints:
        spec = default_spec(net.num_keypoints)
    net.meta = ModelMeta(name, kwargs, spec, cfg.input_size, cfg.test, source)
    return net


def build_for_family(state: StateDict, path: Path, layout: str | None,
                     config: str | os.PathLike | None, model: str | None,
                     model_kwargs: dict[str, Any]) -> tuple[nn.Module, StateDict]:
    """The model for an OffsetGuided / CAL state dict (``.meta`` set, weights not yet loaded)
    and the state to load into it.

    ``model``: a registered name to build instead (with ``model_kwargs``). OffsetGuided:
    ``with_scale=False`` in ``model_kwargs`` drops the scale head (as the official evaluation
    does); by default the file's heads are kept. CAL: ``config`` = the official yaml
    (architecture, crop size, TEST settings); without it the architecture comes from the
    shapes, and the crop size and (for a released architecture) the TEST settings from the
    matching registered model's released yaml (``official_cal_config.RELEASED_TEST``).
    """
    from bupose.models import create_model
    from bupose.models.zoo import match_registered

    if model is not None:
        net = create_model(model, **model_kwargs)
        net.meta = replace(net.meta, source="official")
        return net, state
    if config is not None:
        if layout == "offsetguided":
            raise CheckpointError(f"{path}: an OffsetGuided checkpoint needs no config (its "
                                  f"architecture is read from the weights); drop {config}")
        return model_from_cal_config(config, "official"), state
    if layout not in FAMILY_LAYOUTS:
        raise CheckpointError(f"{path}: not an OffsetGuided or CAL checkpoint")
    family = FAMILY_LAYOUTS[layout]
    infer = infer_simplepose if family == "offsets" else infer_cal
    try:
        arch = infer(state)
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{path}: cannot infer the architecture of this {layout} "
                              f"checkpoint ({e})") from None
    if family == "offsets" and model_kwargs.get("with_scale") is False:
        arch = {**arch, "with_scale": False}
        state = {k: v for k, v in state.items() if not k.startswith(SCALE_HEAD)}
    name, kwargs = match_registered(arch, None, family)
    try:
        net = create_model(name, **kwargs)
    except (TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{path}: cannot build the model it needs: {e}") from None
    # released weights without their yaml: that yaml's TEST settings (w48: LOCREF_STDEV 1.0)
    test = RELEASED_TEST.get(name, {}) if not kwargs else {}
    net.meta = replace(net.meta, source="official", test=dict(test))
    return net, state


# Modules the official CAL training initialises from ImageNet HRNet (PRETRAINED_LAYERS of
# every released yaml): the shared trunk and the heatmap branch's stage 4; the offset copy
# (transition3_om, stage4_om) and both heads start from scratch.
CAL_PRETRAINED_ROOTS = ("conv1", "bn1", "conv2", "bn2", "layer1", "transition1", "stage2",
                        "transition2", "stage3", "transition3", "stage4")
_HOURGLASS_ROOTS = ("pre", "kps", "cnvs", "inters", "inters_", "cnvs_")


def backbone_family(model: nn.Module) -> str | None:
    """"offsets" / "topdown" for a SimplePose / CAL network, None for other models."""
    from bupose.models.cal_hrnet import CALHRNet
    from bupose.models.hourglass import SimplePoseNet

    if isinstance(model, SimplePoseNet):
        return "offsets"
    return "topdown" if isinstance(model, CALHRNet) else None


def load_family_backbone(model: nn.Module, original: StateDict, path: Path,
                         include_head: bool = False) -> dict[str, list[str]]:
    """Initialise a SimplePose / CAL network for training from a file's weights.

    SimplePose: the hourglass basenet from an OffsetGuided checkpoint or a bare hourglass file
    (``hourglass_104_renamed.pth``: keys ``pre.* / kps.*`` without ``basenet.``); with
    ``include_head`` also ``headnets.*``. CAL: ``CAL_PRETRAINED_ROOTS`` from ImageNet HRNet
    weights or any CAL checkpoint (with ``include_head``: every key of the model). File keys
    the model lacks (e.g. the stride-32 branch of ImageNet stage 4 for the 3-branch 64x48
    models, the classification head) are ignored, as the official non-strict load does; every
    model key under those roots must be present with its shape, else CheckpointError.

    Returns:
        {"loaded": model keys copied, "ignored": file keys not used, "kept": model keys left
        as initialised}.
    """
    from bupose.models.checkpoint import check_state_dict

    own = model.state_dict()
    if backbone_family(model) == "offsets":
        state = {(f"basenet.{k}" if k.split(".", 1)[0] in _HOURGLASS_ROOTS else k): v
                 for k, v in original.items()}
        roots: tuple[str, ...] = ("basenet.", "headnets.") if include_head else ("basenet.",)

        def wanted(key: str) -> bool:
            return key.startswith(roots)
    else:
        state = dict(original)

        def wanted(key: str) -> bool:
            return include_head or key.split(".", 1)[0] in CAL_PRETRAINED_ROOTS

    load = {k: v for k, v in state.items() if wanted(k) and k in own}
    check_state_dict(model, load, path, "model's backbone", {k for k in own if wanted(k)})
    model.load_state_dict(load, strict=False)
    return {"loaded": sorted(load), "ignored": [k for k in state if k not in load],
            "kept": [k for k in own if k not in load]}
