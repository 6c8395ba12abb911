"""Load and save pose-model weights in every format bupose meets (see ``keymap`` for layouts).

Readers never execute pickled code: ``torch.load(..., weights_only=True)`` (plain numpy scalars
and arrays, as in training snapshots' metadata, are allowed by name), or ``.safetensors``.
Loading is strict: a mismatch raises ``CheckpointError`` listing missing keys, unexpected keys
and shape mismatches; only a missing BatchNorm ``num_batches_tracked`` counter is tolerated.

bupose format (``save_checkpoint``): a dict {"format": "bupose", "format_version": 1, "model",
"model_kwargs", "spec", "input_size", "test", "config", "state_dict", **extra}; as
``.safetensors`` the tensors plus that header (without state_dict/extra) as JSON metadata.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from bupose.errors import CheckpointError, ConfigError
from bupose.models.checkpoint_families import (
    FAMILY_LAYOUTS,
    backbone_family,
    build_for_family,
    family_layout,
    load_family_backbone,
)
from bupose.models.checkpoint_io import read_file
from bupose.models.keymap import (
    CLASSIFICATION_ROOTS,
    StateDict,
    detect_layout,
    infer_arch,
    strip_wrappers,
    to_bupose,
)
from bupose.models.official_cal_config import is_cal_config
from bupose.models.posenet import ModelMeta, PoseNet
from bupose.structures.spec import KeypointSpec, get_spec
from bupose.utils.io import atomic_write, atomic_write_bytes

FORMAT = "bupose"
FORMAT_VERSION = 1
def _state_dict_of(obj: Any, path: Path) -> StateDict:
    """The tensor dict inside a checkpoint object (plain, or under state_dict / model ...)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "best_state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not any(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds no state dict (a dict of tensors)")
    if not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path}: its state dict holds values that are not tensors")
    return strip_wrappers(dict(obj))


def read_state_dict(path: str | os.PathLike) -> StateDict:
    """The weights of any supported checkpoint file under bupose keys (wrappers stripped, fp32;
    an ImageNet classification head dropped)."""
    obj, _ = read_file(path)
    state = _state_dict_of(obj, Path(path))
    return to_bupose(state, detect_layout(state))


def _listing(title: str, items: list[str]) -> str:
    shown = "\n    ".join(items[:10])
    more = f"\n    ... and {len(items) - 10} more" if len(items) > 10 else ""
    return f"\n  {len(items)} {title}:\n    {shown}{more}"


def check_state_dict(model: nn.Module, state: StateDict, path: str | os.PathLike,
                     what: str = "model", required: set[str] | None = None) -> None:
    """Raise CheckpointError unless ``state`` fits ``model`` exactly (keys and shapes).

    ``required``: the model keys ``state`` must hold (default all but BN counters)."""
    own = model.state_dict()
    need = own.keys() if required is None else required
    missing = [k for k in own if k in need and k not in state
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs {what} {tuple(own[k].shape)}"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        msg = f"{path}: the checkpoint does not fit the {what}"
        if missing:
            msg += _listing("missing keys", missing)
        if unexpected:
            msg += _listing("unexpected keys", unexpected)
        if shapes:
            msg += _listing("shape mismatches", shapes)
        raise CheckpointError(msg)


def load_state(model: nn.Module, state: StateDict, path: str | os.PathLike,
               what: str = "model") -> None:
    """Strictly copy ``state`` into ``model`` (after ``check_state_dict``)."""
    check_state_dict(model, state, path, what)
    model.load_state_dict(state, strict=False)


def _spec_from(value: Any, k: int) -> KeypointSpec | None:
    from bupose.models import default_spec

    if isinstance(value, KeypointSpec):
        spec = value
    elif isinstance(value, dict):
        spec = KeypointSpec.from_dict(value, source="checkpoint spec")
    elif isinstance(value, str) and value:
        spec = get_spec(value)
    else:
        return default_spec(k)
    return spec if spec.num_keypoints == k else None


def as_input_size(value: Any) -> int | tuple[int, int]:
    """S (int) or (h, w) from a header / JSON value (a list becomes a tuple)."""
    if isinstance(value, (list, tuple)):
        h, w = (int(v) for v in value)
        return (h, w)
    return int(value)


def _load_bupose(header: dict[str, Any], state: StateDict, path: Path) -> PoseNet:
    from bupose.models import create_model

    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: bupose checkpoint format version {version!r} is newer "
                              f"than this bupose reads ({FORMAT_VERSION})")
    try:
        model = create_model(header["model"], **dict(header.get("model_kwargs") or {}))
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{path}: cannot rebuild the model it names: {e}") from None
    load_state(model, strip_wrappers(state), path)
    model.meta = ModelMeta(
        name=header["model"], kwargs=dict(header.get("model_kwargs") or {}),
        spec=_spec_from(header.get("spec"), model.num_keypoints),
        input_size=as_input_size(header.get("input_size") or model.meta.input_size),
        test=dict(header.get("test") or {}), source="bupose")
    return model


def _build(state: StateDict, path: Path, layout: str, config: str | os.PathLike | None,
           model: str | None, num_keypoints: int | None,
           model_kwargs: dict[str, Any]) -> tuple[PoseNet, dict[str, Any], int, str | None]:
    """The model a checkpoint needs, and (test settings, input size, spec name) for its meta."""
    from bupose.models import MODELS, create_model
    from bupose.models.keymap import infer_davit
    from bupose.models.official_config import read_official_config
    from bupose.models.zoo import match_registered, resolve_arch

    if model is not None:
        if num_keypoints is None:
            try:
                num_keypoints = infer_arch(state)["num_keypoints"]
            except (KeyError, ValueError):
                num_keypoints = 17
        net = create_model(model, num_keypoints=num_keypoints, **model_kwargs)
        return net, {}, MODELS.get(model).input_size, None
    if config is not None:
        cfg = read_official_config(config)
        arch = cfg.arch
        davit = infer_davit(state)
        if davit is not None:  # the fusion code reads the same YAML; its weights say DaViT
            arch = resolve_arch(**{**arch, "davit": davit})
        name, kwargs = match_registered(arch, cfg.input_size)
        return create_model(name, **kwargs), cfg.test, cfg.input_size, cfg.spec_name
    try:
        arch = infer_arch(state, num_keypoints)
    except (KeyError, ValueError) as e:
        raise CheckpointError(
            f"{path}: cannot infer the architecture of this {layout} checkpoint ({e}); "
            "give its official config (--config) or a model name (--model)") from None
    name, kwargs = match_registered(arch)
    return create_model(name, **kwargs), {}, MODELS.get(name).input_size, None


def load_checkpoint(path: str | os.PathLike, config: str | os.PathLike | None = None, *,
                    model: str | None = None, spec: KeypointSpec | None = None,
                    num_keypoints: int | None = None, **model_kwargs: Any) -> PoseNet:
    """A ready model (eval mode, ``.meta`` set) from any supported checkpoint.

    Args:
        path: bupose checkpoint (.pth or .safetensors; needs nothing else), official HigherHRNet
            or fusion weights (plain, ``module.``- or ``1.``-prefixed / fp16, or a
            ``checkpoint.pth.tar`` dict: its ``state_dict`` is used), an mmpose 0.x
            checkpoint (``backbone.*`` / ``keypoint_head.*``), an official OffsetGuided
            checkpoint (``model_state_dict``; the scale head is kept when present unless
            ``with_scale=False``) or official CAL weights (see ``checkpoint_families``).
        config: the official experiment YAML of official weights (HigherHRNet or CAL, any
            released CAL yaml as it is): architecture and TEST settings (CAL: also the crop
            size and LOCREF_STDEV). Without it (and without ``model``) the architecture is
            inferred from the keys and shapes.
        model: build this registered model instead (with ``num_keypoints``, ``model_kwargs``).
        spec: keypoint spec of the outputs (default: from the checkpoint / config / K).
    """
    path = Path(path)
    obj, st_meta = read_file(path)
    if st_meta.get("format") == FORMAT:
        net = _load_bupose(json.loads(st_meta.get("bupose", "{}")), obj, path)
    elif isinstance(obj, dict) and obj.get("format") == FORMAT:
        net = _load_bupose(obj, _state_dict_of(obj.get("state_dict"), path), path)
    else:
        state = _state_dict_of(obj, path)
        layout = family_layout(state) or detect_layout(state)
        if layout in FAMILY_LAYOUTS or (config is not None and is_cal_config(config)):
            if num_keypoints is not None:
                model_kwargs["num_keypoints"] = num_keypoints
            net, state = build_for_family(state, path, layout, config, model, model_kwargs)
            load_state(net, state, path)
            return _with_spec(net.eval(), spec, path)
        if layout == "classification":
            raise CheckpointError(
                f"{path}: ImageNet classification weights hold no pose head; they initialise "
                "a backbone for training (load_backbone_weights / --pretrained)")
        state = to_bupose(state, layout)
        net, test, input_size, spec_name = _build(state, path, layout, config, model,
                                                  num_keypoints, model_kwargs)
        load_state(net, state, path)
        net.meta = ModelMeta(net.meta.name, net.meta.kwargs,
                             _spec_from(spec_name, net.num_keypoints), input_size, test, layout)
    if num_keypoints is not None and num_keypoints != net.num_keypoints:  # bupose files carry K
        raise CheckpointError(f"{path}: the model has {net.num_keypoints} keypoints, not "
                              f"{num_keypoints}")
    return _with_spec(net.eval(), spec, path)


def _with_spec(net: Any, spec: KeypointSpec | None, path: Path) -> Any:
    if spec is not None:
        if spec.num_keypoints != net.num_keypoints:
            raise CheckpointError(f"{path}: the model has {net.num_keypoints} keypoints but "
                                  f"spec {spec.name!r} has {spec.num_keypoints}")
        net.meta = ModelMeta(net.meta.name, net.meta.kwargs, spec, net.meta.input_size,
                             net.meta.test, net.meta.source)
    return net


def model_from_official_config(config: str | os.PathLike) -> PoseNet:
    """A randomly initialised model with an official YAML's architecture and TEST settings
    (HigherHRNet, or CAL: see ``checkpoint_families.model_from_cal_config``)."""
    if is_cal_config(config):
        from bupose.models.checkpoint_families import model_from_cal_config

        return model_from_cal_config(config)
    from bupose.models import create_model
    from bupose.models.official_config import read_official_config
    from bupose.models.zoo import match_registered

    cfg = read_official_config(config)
    name, kwargs = match_registered(cfg.arch, cfg.input_size)
    net = create_model(name, **kwargs)
    net.meta = ModelMeta(name, kwargs, _spec_from(cfg.spec_name, net.num_keypoints),
                         cfg.input_size, cfg.test, "random")
    return net


def load_backbone_weights(model: PoseNet, path: str | os.PathLike,
                          include_head: bool = False) -> dict[str, list[str]]:
    """Initialise ``model``'s HRNet backbone (for training) from ImageNet HRNet classification
    weights (``hrnet_w32-36af842e.pth`` layout) or any pose checkpoint's backbone (with
    ``include_head`` also its head: fine-tuning from a trained pose model).

    Ignored: the classification head (incre_modules, downsamp_modules, final_layer,
    classifier) and the fuse layers of a multi-scale last stage-4 module (the pose model keeps
    only its stride-4 output). A fusion model's DaViT branch and fusion convs stay initialised
    when the file lacks them. Every other key must be present with its shape, else
    CheckpointError. SimplePose and CAL networks: ``checkpoint_families.load_family_backbone``.

    Returns:
        {"loaded": model keys copied, "ignored": file keys not used, "kept": model keys left
        as initialised}.
    """
    import re

    path = Path(path)
    obj, _ = read_file(path)
    original = _state_dict_of(obj, path)
    if backbone_family(model) is not None:  # SimplePose / CAL: see load_family_backbone
        return load_family_backbone(model, original, path, include_head)
    layout = detect_layout(original)
    state = to_bupose(original, layout)
    roots = ("backbone.", "head.") if include_head else ("backbone.",)
    own = model.state_dict()
    extra_fuse = re.compile(r"backbone\.stage4\.\d+\.fuse_layers\.[1-9]")
    fusion_only = re.compile(r"backbone\.(davit\.|conv_\d+\.|bn1_\d+\.)")
    ignored = [k for k in original if k.split(".", 1)[0] in CLASSIFICATION_ROOTS
               and layout == "classification"]
    ignored += [k for k in state if not k.startswith(roots)
                or (k not in own and extra_fuse.match(k))]
    load = {k: v for k, v in state.items() if k not in set(ignored)}
    required = {k for k in own if k.startswith(roots)
                and not (fusion_only.match(k) and k not in load)}
    check_state_dict(model, load, path, "model's backbone", required)
    model.load_state_dict(load, strict=False)
    return {"loaded": sorted(load), "ignored": ignored,
            "kept": [k for k in own if k not in load]}


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **extra: Any) -> Path:
    """Write ``model`` (with ``.meta``) in the bupose format, atomically.

    ``extra`` (e.g. optimizer=..., epoch=..., config=dict) is stored beside the weights; in a
    ``.safetensors`` file only JSON-compatible extras are allowed (they go into the header).
    """
    net = getattr(model, "module", model)
    meta: ModelMeta | None = getattr(net, "meta", None)
    if meta is None:
        raise ValueError("save_checkpoint needs a model with .meta (use create_model / "
                         "load_checkpoint)")
    header: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model": meta.name,
        "model_kwargs": meta.kwargs, "spec": meta.spec.to_dict() if meta.spec else None,
        "input_size": meta.input_size, "test": meta.test, "config": extra.pop("config", None),
    }
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        try:
            text = json.dumps({**header, **extra})
        except TypeError as e:
            raise ValueError(f"{path}: .safetensors holds only JSON-compatible extras "
                             f"({e}); save as .pth") from None
        data = save({k: v.contiguous() for k, v in state.items()},
                    metadata={"format": FORMAT, "bupose": text})
        return atomic_write_bytes(path, data)
    payload = {**header, "state_dict": state, **extra}
    return atomic_write(path, lambda f: torch.save(payload, f))
