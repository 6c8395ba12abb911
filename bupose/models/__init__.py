"""Pose networks: images in, tensors out.

``create_model(name, **kwargs)`` builds a registered model (``list_models()``) with random
official initialisation and attaches ``model.meta`` (``ModelMeta``); ``load_checkpoint`` builds
one from weights (official HigherHRNet, mmpose 0.x, fusion, OffsetGuided, CAL, bupose).
``model_family(model)`` names its family: "ae", "offsets" (SimplePose) or "topdown" (CAL).
"""

from __future__ import annotations

from typing import Any

from bupose.models.checkpoint import load_backbone_weights, load_checkpoint, save_checkpoint
from bupose.models.outputs import StageOutput, split_stage
from bupose.models.posenet import ModelMeta, PoseNet
from bupose.models.zoo import FAMILIES, MODELS, ModelEntry, build_higherhrnet
from bupose.structures.spec import KeypointSpec, get_spec

# Spec assumed for a model's K when nothing names one (a CLI --spec or a checkpoint overrides).
DEFAULT_SPECS = {17: "coco17", 14: "crowdpose14", 16: "mpii16"}


def default_spec(num_keypoints: int) -> KeypointSpec | None:
    """The built-in spec usually meant by K keypoints (17 COCO, 14 CrowdPose, 16 MPII)."""
    name = DEFAULT_SPECS.get(num_keypoints)
    return get_spec(name) if name else None


def create_model(name: str, spec: KeypointSpec | None = None, **kwargs: Any) -> PoseNet:
    """A registered model, randomly initialised as the official code does, with ``.meta``.

    Args:
        name: a registered name (see ``list_models()``).
        spec: the keypoint spec; default ``default_spec(num_keypoints)``. Its K sets
            ``num_keypoints`` unless that is given.
        **kwargs: ``num_keypoints`` and any architecture override (see ``zoo.resolve_arch``).
    """
    entry = MODELS.get(name)
    if spec is not None:
        kwargs.setdefault("num_keypoints", spec.num_keypoints)
        if kwargs["num_keypoints"] != spec.num_keypoints:
            from bupose.errors import ConfigError

            raise ConfigError(f"spec {spec.name!r} has {spec.num_keypoints} keypoints but "
                              f"num_keypoints = {kwargs['num_keypoints']}")
    model = entry.build(**kwargs)
    k = model.num_keypoints
    model.meta = ModelMeta(name=name, kwargs=dict(kwargs), spec=spec or default_spec(k),
                           input_size=entry.input_size)
    return model


def model_family(model: Any) -> str:
    """The family ("ae", "offsets", "topdown") of a model built by ``create_model`` /
    ``load_checkpoint`` (read from ``model.meta.name``; DataParallel / DDP wrappers are seen
    through)."""
    net = getattr(model, "module", model)
    meta = getattr(net, "meta", None)
    if meta is None:
        raise ValueError("model_family needs a model with .meta (use create_model / "
                         "load_checkpoint)")
    return MODELS.get(meta.name).family


def list_models() -> list[str]:
    """Registered model names, sorted."""
    return MODELS.names()


__all__ = [
    "FAMILIES", "MODELS", "ModelEntry", "ModelMeta", "PoseNet", "StageOutput",
    "build_higherhrnet", "create_model", "default_spec", "list_models", "load_backbone_weights",
    "load_checkpoint", "model_family", "save_checkpoint", "split_stage",
]
