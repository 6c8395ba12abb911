"""Typed, frozen experiment configuration: the dataclasses a recipe YAML mirrors.

A recipe file has one mapping per section (``model``, ``data``, ``loss``, ``optim``, ``train``,
``eval``) plus the top-level ``method`` (which training task builds the dataset, loss and
predictor: "ae" for HigherHRNet / HAE / the fusion model, "offsets" for SimplePose V2, "cal" for
CAL). Every key is checked: an unknown key or a value of the wrong type is a ConfigError naming
the file and the key (the reader itself is ``bupose.utils.typed_config``).
Only the engine and the CLI read these objects; everything below them takes explicit arguments.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError
from bupose.utils.typed_config import build_dataclass, plain, set_dotted


@dataclass(frozen=True)
class ModelCfg:
    """Which network to build and how to initialise it.

    Attributes:
        name: a name from ``bupose.models.list_models()``.
        kwargs: extra keyword arguments for ``create_model`` (e.g. ``tag_dim``, a tiny width).
        pretrained: ImageNet backbone weights (``load_backbone_weights``), "" for none.
        init_checkpoint: a trained bupose/official model whose matching tensors are loaded before
            training (fine-tuning, e.g. the fusion model from HigherHRNet-W32), "" for none.
        sync_bn: convert BatchNorm to SyncBatchNorm under DDP (CUDA only).
        freeze_bn: keep BatchNorm layers in eval mode (running statistics) while training.
    """

    name: str = "higherhrnet_w32_512"
    kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: str = ""
    init_checkpoint: str = ""
    sync_bn: bool = False
    freeze_bn: bool = False


@dataclass(frozen=True)
class SynthCfg:
    """Built-in synthetic crowds (``bupose.data.synth``) used instead of the dataset files.

    When ``enabled``, train and val sets are generated (once) under ``dir`` — or, when ``dir`` is
    "", under a cache folder named after these settings — and the data paths point there.

    Attributes:
        train_images / val_images: images per split (val is drawn with a different seed).
        size: image (W, H). people: (min, max) persons per image. scale: (min, max) person height
            as a fraction of the image height. crowding, occluders: 0..1 (see ``SceneConfig``).
    """

    enabled: bool = False
    dir: str = ""
    train_images: int = 2000
    val_images: int = 100
    seed: int = 0
    size: tuple[int, int] = (256, 256)
    people: tuple[int, int] = (1, 4)
    scale: tuple[float, float] = (0.3, 0.9)
    crowding: float = 0.3
    occluders: float = 0.3


@dataclass(frozen=True)
class TopDownCfg:
    """Top-down person crops and CAL targets (method "cal", ALGORITHMS.md §6.2-6.3); the
    defaults are the W32-64x48 yaml. ``data.sigma`` is the heatmap σ (0.3 there) and
    ``data.flip_prob`` the flip probability.

    Attributes:
        input_size: crop (h, w) px (official IMAGE_SIZE is [w, h]); heatmaps are (h/4, w/4).
        padding: person box enlargement after the aspect fix (1.25).
        mask_sigma: σ of the dataset's Gaussian offset mask (MODEL.MASK_SIGMA).
        locref_stdev: offset unit in heatmap px (DATASET.LOCREF_STDEV).
        kpd: radius of the offset field in heatmap px (LOSS.KPD).
        half_body_prob / half_body_joints: half-body crop probability and the visible-joint
            count it needs (exclusive) (DATASET.PROB_HALF_BODY / NUM_JOINTS_HALF_BODY).
        scale_factor, rotation_factor, rotation_prob: DATASET.SCALE_FACTOR / ROT_FACTOR and the
            reference's fixed rotation probability 0.6.
    """

    input_size: tuple[int, int] = (64, 48)
    padding: float = 1.25
    mask_sigma: float = 0.3
    locref_stdev: float = 1.5
    kpd: float = 4.0
    half_body_prob: float = 0.3
    half_body_joints: int = 8
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    rotation_prob: float = 0.6


@dataclass(frozen=True)
class OffsetDataCfg:
    """SimplePose V2 targets and augmentation (method "offsets", ALGORITHMS.md §4.3-4.4).

    The shared keys keep their meaning: ``data.input_size`` is the square training crop (512),
    ``data.sigma`` the heatmap σ in INPUT pixels (7), ``data.flip_prob``, ``max_rotation``,
    ``min_scale`` / ``max_scale`` (of the original pixel size) and ``max_translate`` (px) the
    augmentation ranges (README: 0.5, 45, 0.5 / 2.0, 150).

    Attributes:
        stride: target stride (4). clip: heatmap values below it are 0 (0.01).
        fill_size: guiding-offset window in cells (7). min_jscale: smaller s_k are unsupervised.
        stretch: (min, max) independent x / y stretch (0.95, 1.05).
        augment: False uses the reference's fixed parameters (box re-centring only).
    """

    stride: int = 4
    clip: float = 0.01
    fill_size: int = 7
    min_jscale: float = 1.0
    stretch: tuple[float, float] = (0.95, 1.05)
    augment: bool = True


@dataclass(frozen=True)
class DataCfg:
    """Dataset files, keypoint spec and training augmentation (ALGORITHMS.md §2.2).

    Paths are relative to the working directory; the defaults are the official COCO layout.
    With ``synth.enabled`` the four paths are replaced by the generated synthetic sets.
    """

    spec: str = "coco17"
    train_ann: str = "data/coco/annotations/person_keypoints_train2017.json"
    train_images: str = "data/coco/images/train2017"
    val_ann: str = "data/coco/annotations/person_keypoints_val2017.json"
    val_images: str = "data/coco/images/val2017"
    input_size: int = 512
    sigma: float = 2.0
    max_people: int = 30
    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    max_translate: float = 40.0
    flip_prob: float = 0.5
    augment: str = "higherhrnet"  # crop/translation rule: "higherhrnet" or "mmpose" (HAE, §3.3)
    workers: int = 2
    synth: SynthCfg = field(default_factory=SynthCfg)
    topdown: TopDownCfg = field(default_factory=TopDownCfg)
    offsets: OffsetDataCfg = field(default_factory=OffsetDataCfg)


@dataclass(frozen=True)
class CalLossCfg:
    """The confidence-aware CAL loss (method "cal", ALGORITHMS.md §6.4).

    Attributes:
        offset_weight: OFFSET_WEIGHT (0.7 W32-64x48, 1.0 W48-64x48).
        gt_mask: official LOSS.GT_MASK: mask the offset L1 with the Gaussian-type mask (True)
            or with the 0/1 KPD disc (False).
        gmm: with gt_mask, rebuild that mask from the mini-batch GMM of argmax errors (the
            reference's training path); False keeps the dataset's Gaussian mask.
    """

    offset_weight: float = 0.7
    gt_mask: bool = True
    gmm: bool = True


@dataclass(frozen=True)
class OffsetLossCfg:
    """The SimplePose V2 loss (method "offsets", ALGORITHMS.md §4.5; ``losses.offset_loss``).

    Attributes:
        heatmap_weight, offset_weight, scale_weight: README lambdas 1, 10000, 10.
        stack_weights: relative per-stack weights (normalised; official (1, 1)).
        gamma: focal exponent; 1 = the published training (the reference ignores its
            ``--fgamma 2``); 2 = what that flag meant.
        tau: focal fore/background threshold. focal: False = plain L2 heatmap loss.
        margin, scale_margin: smaller offset / scale errors are not punished (1e-5, 0.1).
        sqrt_re: square-root re-weighting. instance_norm: offsets / instance scale.
    """

    heatmap_weight: float = 1.0
    offset_weight: float = 10000.0
    scale_weight: float = 10.0
    stack_weights: tuple[float, ...] = (1.0, 1.0)
    gamma: float = 1.0
    tau: float = 0.01
    focal: bool = True
    margin: float = 1e-5
    scale_margin: float = 0.1
    sqrt_re: bool = True
    instance_norm: bool = True


@dataclass(frozen=True)
class LossCfg:
    """Loss terms and weights (ALGORITHMS.md §2.3, §3.4).

    Attributes:
        heatmap_weights: one weight per output stage (lowest resolution first).
        tag_loss: "ae" (associative embedding), "hae" (hierarchical groups) or "none".
        pull_weight / push_weight: AE factors (0.001 in every reference recipe).
        ae_type: push form, "exp" (official) or "max" (hinge max(0, 1 - |h_i - h_j|), the
            official AE_LOSS_TYPE alternative), or the HAE code's "exp_focal" / "exp_topk"
            (``bupose.losses.hae``).
        groups: HAE group scheme name of the keypoint spec ("" = the spec's default).
        hae_weights: HAE (instance, keypoint-to-group, group-to-instance) pull weights (o, l, h).
        focal: focal pulling: "none", "iqr" (the HAE code's outlier ×2) or "gamma".
        gamma: exponent of focal "gamma" (our extrapolation: w = 1 + (d / max d)^gamma; the HAE
            code has no γ).
    """

    heatmap_weights: tuple[float, ...] = (1.0, 1.0)
    tag_loss: str = "ae"
    pull_weight: float = 0.001
    push_weight: float = 0.001
    ae_type: str = "exp"
    groups: str = ""
    hae_weights: tuple[float, float, float] = (0.0, 1.0, 1.5)
    focal: str = "none"
    gamma: float = 2.0
    cal: CalLossCfg = field(default_factory=CalLossCfg)
    offsets: OffsetLossCfg = field(default_factory=OffsetLossCfg)


@dataclass(frozen=True)
class OptimCfg:
    """Optimiser and learning-rate schedule (see ``bupose.engine.schedule.lr_at``).

    Attributes:
        name: "adam", "adamw" or "sgd".
        lr: base learning rate for ``reference_batch`` images per optimiser step.
        schedule: "multistep" (×lr_factor at each epoch of lr_steps), "constant", "cosine" or
            "offsetguided" (the SimplePose V2 step schedule, ``schedule.offsetguided_factor``).
        warmup_iters / warmup_ratio: linear warm-up from warmup_ratio·lr over that many steps.
        scale_lr_with_batch: multiply lr by (actual global batch / reference_batch).
        reference_batch: the global batch of the published recipe (0 = the actual one).
        grad_clip: max gradient L2 norm (0 = off).
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "multistep"
    lr_steps: tuple[int, ...] = (200, 260)
    lr_factor: float = 0.1
    warmup_iters: int = 0
    warmup_ratio: float = 0.001
    scale_lr_with_batch: bool = False
    reference_batch: int = 0
    grad_clip: float = 0.0


@dataclass(frozen=True)
class TrainCfg:
    """Loop settings.

    Attributes:
        batch_size: images per process and forward pass.
        accumulate: forward passes per optimiser step (global batch = batch_size·world·accumulate).
        amp: "none", "bf16", "fp16" or "auto" (fp16 on CUDA, none on CPU).
        val_every: validate every N epochs (0 = never; the last epoch is always validated if >0).
        checkpoint_every: also save "last" every N optimiser steps inside an epoch (0 = per epoch).
        max_steps_per_epoch: cap on optimiser steps per epoch (0 = the whole epoch; for smoke runs).
        max_steps: stop, with a checkpoint, after this many optimiser steps in all (0 = no cap).
        time_limit: stop cleanly (checkpoint saved) after this many minutes (0 = no limit).
        device: "auto", "cpu" or "cuda".
    """

    epochs: int = 300
    batch_size: int = 12
    accumulate: int = 1
    amp: str = "none"
    seed: int = 0
    val_every: int = 10
    checkpoint_every: int = 0
    log_every: int = 20
    max_steps_per_epoch: int = 0
    max_steps: int = 0
    time_limit: float = 0.0
    device: str = "auto"
    threads: int = 0
    progress: bool = True
    tensorboard: bool = True


@dataclass(frozen=True)
class OffsetEvalCfg:
    """SimplePose V2 validation (method "offsets"; ``OffsetPredictor``), defaults = the README
    evaluation flags; ``eval.flip`` is the flip test.

    Attributes:
        input_size: long edge (long-edge) or height (fixed-height) of the test input (640).
        resize_mode: "long-edge" or "fixed-height".
        thre_hmp, topk, dist_max, person_thre: ``OffsetParams`` (0.04, 32, 40, 0.04).
    """

    input_size: int = 640
    resize_mode: str = "long-edge"
    thre_hmp: float = 0.04
    topk: int = 32
    dist_max: float = 40.0
    person_thre: float = 0.04


@dataclass(frozen=True)
class EvalCfg:
    """Validation with the test-time pipeline (ALGORITHMS.md §2.5) and the evaluator (§1.2).

    The keys named like ``bupose.inference.settings.TestSettings`` keys (decoder, flip, scales,
    max_people, detection_threshold, tag_threshold, nms_kernel, adjust, refine) are the test
    settings, matched by name: validation uses them and trained checkpoints record them.

    Attributes:
        kind: "coco" or "crowdpose" (which AP protocol).
        decoder: a name from the DECODERS registry ("ae" fixed order, "hae" progressive).
        max_images: evaluate on the first N validation images (0 = all).
        in_vis_thre, oks_thre: top-down (method "cal") rescoring threshold on joint scores and
            OKS-NMS threshold (official TEST.IN_VIS_THRE 0.2, TEST.OKS_THRE 0.9).
        offsets: SimplePose V2 (method "offsets") test input and decoding settings.
    """

    kind: str = "coco"
    decoder: str = "ae"
    flip: bool = True
    scales: tuple[float, ...] = (1.0,)
    max_people: int = 30
    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    nms_kernel: int = 5
    adjust: bool = True
    refine: bool = True
    max_images: int = 0
    in_vis_thre: float = 0.2
    oks_thre: float = 0.9
    offsets: OffsetEvalCfg = field(default_factory=OffsetEvalCfg)


@dataclass(frozen=True)
class ExperimentCfg:
    """A whole training recipe."""

    method: str = "ae"
    model: ModelCfg = field(default_factory=ModelCfg)
    data: DataCfg = field(default_factory=DataCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    optim: OptimCfg = field(default_factory=OptimCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    eval: EvalCfg = field(default_factory=EvalCfg)


# Closed sets of values, checked when a config is read (``method`` and the model, decoder and spec
# names are checked where they are looked up, so that later methods need no edit here).
CHOICES: dict[str, tuple[str, ...]] = {
    "loss.tag_loss": ("ae", "hae", "none"),
    "loss.focal": ("none", "iqr", "gamma"),
    "loss.ae_type": ("exp", "max", "exp_focal", "exp_topk"),
    "data.augment": ("higherhrnet", "mmpose"),
    "optim.name": ("adam", "adamw", "sgd"),
    "optim.schedule": ("multistep", "constant", "cosine", "offsetguided"),
    "train.amp": ("none", "bf16", "fp16", "auto"),
    "train.device": ("auto", "cpu", "cuda"),
    "eval.kind": ("coco", "crowdpose"),
    "eval.offsets.resize_mode": ("long-edge", "fixed-height"),
}

# ---------------------------------------------------------------------------------------------
# Reading, overriding, writing


def load_config(path: str | os.PathLike) -> ExperimentCfg:
    """Read a recipe YAML into an ExperimentCfg; missing keys take the dataclass defaults.

    Raises:
        ConfigError: the file is missing or malformed, or a key is unknown or mistyped; the
            message names the file and the dotted key.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: malformed YAML: {e}") from None
    return config_from_dict(data, source=str(path))


def config_from_dict(data: Any, source: str = "config") -> ExperimentCfg:
    """Build an ExperimentCfg from nested plain data (the YAML form), checking every key."""
    cfg = build_dataclass(ExperimentCfg, data, source, CHOICES)
    _check_ranges(cfg, source)
    return cfg


# Values that no run can use (issue 14): (section, key, smallest allowed, is the bound exclusive).
_RANGES = (("train", "batch_size", 1, False), ("train", "accumulate", 1, False),
           ("train", "epochs", 1, False), ("data", "input_size", 1, False),
           ("optim", "lr", 0.0, False))


def _check_ranges(cfg: Any, source: str) -> None:
    """Raise ConfigError naming ``source`` and the key for an impossible value (batch 0, lr < 0)."""
    import math

    for section, key, low, _ in _RANGES:
        value = getattr(getattr(cfg, section, None), key, None)
        if isinstance(value, (int, float)) and not (math.isfinite(value) and value >= low):
            raise ConfigError(f"{source}: {section}.{key} must be >= {low}, got {value!r}")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Nested plain data (tuples as lists) that ``config_from_dict`` reads back unchanged."""
    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: ExperimentCfg) -> str:
    """The YAML text of ``cfg`` (every key, defaults included)."""
    import yaml

    class _Dumper(yaml.SafeDumper):
        pass

    def flow_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)

    _Dumper.add_representer(list, flow_list)
    return yaml.dump(config_to_dict(cfg), Dumper=_Dumper, sort_keys=False)


def save_config(cfg: ExperimentCfg, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML atomically."""
    from bupose.utils.io import atomic_write_bytes

    return atomic_write_bytes(path, dump_config(cfg).encode("utf-8"))


def apply_overrides(
    cfg: ExperimentCfg, overrides: list[str] | tuple[str, ...], source: str = "--set"
) -> ExperimentCfg:
    """Return ``cfg`` with ``["section.key=value", ...]`` applied, values coerced to the field type.

    Values are read as YAML (``true``, ``1e-3``, ``[1, 2]``) except for string fields, which take
    the text as is. Keys inside a dict field are reached with more dots (``model.kwargs.width=8``).
    """
    data = config_to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{source}: expected KEY=VALUE, got {item!r}")
        set_dotted(ExperimentCfg, data, key.split("."), text, source)
    return config_from_dict(data, source=source)
