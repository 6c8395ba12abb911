"""The ``offsets`` training method: SimplePose V2 / OffsetGuided (ALGORITHMS.md §4).

Training items are whole images warped into a square crop (``OffsetTrainDataset``: official
annotation preprocessing, mask_miss, augmentation) with stride-4 heatmap, guiding-offset and
scale targets; the loss is ``OffsetLoss`` (focal L2 + instance-normalised L1 offsets + scales,
README lambdas); validation runs the official test path (``OffsetPredictor``: resize, flip
fusion, greedy offset-guided grouping, back-projection) and scores COCO AP.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.data import Dataset

from bupose.config import ExperimentCfg
from bupose.errors import ConfigError
from bupose.structures.spec import KeypointSpec


def check_offsets(cfg: ExperimentCfg) -> None:
    """ConfigError naming the key when an ``offsets`` setting is out of range."""
    d, o, e = cfg.data, cfg.data.offsets, cfg.eval.offsets
    if o.stride < 1 or d.input_size % o.stride:
        raise ConfigError(f"data.input_size {d.input_size} must be a multiple of "
                          f"data.offsets.stride {o.stride}")
    positive = {"data.sigma": d.sigma, "data.offsets.clip": o.clip,
                "data.offsets.fill_size": o.fill_size, "data.min_scale": d.min_scale,
                "eval.offsets.input_size": e.input_size, "eval.offsets.topk": e.topk}
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    if not 0 <= d.flip_prob <= 1:
        raise ConfigError(f"data.flip_prob must be in [0, 1], got {d.flip_prob}")
    if d.max_scale < d.min_scale or o.stretch[1] < o.stretch[0] or o.stretch[0] <= 0:
        raise ConfigError("data.min_scale <= data.max_scale and 0 < data.offsets.stretch[0] <= "
                          "stretch[1] are required")
    if not o.clip < 1:
        raise ConfigError(f"data.offsets.clip must be < 1, got {o.clip}")


def offsets_test_meta(cfg: ExperimentCfg) -> tuple[int, dict[str, Any]]:
    """What a trained checkpoint records: the test input size and the decoding settings."""
    e = cfg.eval.offsets
    test = {"decoder": "offsets", "flip_test": cfg.eval.flip, "resize_mode": e.resize_mode,
            "thre_hmp": e.thre_hmp, "topk": e.topk, "dist_max": e.dist_max,
            "person_thre": e.person_thre}
    return int(e.input_size), test


class OffsetTask:
    """Heatmaps + guiding offsets + keypoint scales (SimplePose V2)."""

    def prepare_data(self, cfg: ExperimentCfg) -> None:
        check_offsets(cfg)
        if cfg.data.synth.enabled:
            from bupose.engine.synthetic import ensure_synthetic

            ensure_synthetic(cfg.data, progress=cfg.train.progress)

    def build_train_dataset(
        self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module
    ) -> Dataset:
        from bupose.data.coco import CocoKeypoints
        from bupose.data.offset_dataset import OffsetAugment, OffsetTrainDataset

        check_offsets(cfg)
        d, o = cfg.data, cfg.data.offsets
        multiple = int(getattr(model, "input_multiple", 1))
        if d.input_size % multiple:
            raise ConfigError(f"data.input_size {d.input_size} must be a multiple of "
                              f"{multiple} for model {cfg.model.name!r}")
        if getattr(model, "with_scale", True) is False and cfg.loss.offsets.scale_weight > 0:
            raise ConfigError("loss.offsets.scale_weight > 0 needs the scale head: set "
                              "model.kwargs.with_scale: true (or the weight to 0)")
        reader = CocoKeypoints(d.train_ann, d.train_images, spec, train_filter=True)
        augment = None
        if o.augment:
            augment = OffsetAugment(
                flip_prob=d.flip_prob, max_rotate=d.max_rotation, min_scale=d.min_scale,
                max_scale=d.max_scale, min_stretch=o.stretch[0], max_stretch=o.stretch[1],
                max_translate=d.max_translate)
        dataset = OffsetTrainDataset(reader, spec, d.input_size, o.stride, d.sigma, augment,
                                     seed=cfg.train.seed, clip=o.clip, fill_size=o.fill_size,
                                     min_jscale=o.min_jscale)
        if len(dataset) == 0:
            raise ConfigError(f"{d.train_ann}: no person with a labelled keypoint to train on")
        return dataset

    def build_loss(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> nn.Module:
        from bupose.losses.offset_loss import OffsetLoss

        c = cfg.loss.offsets
        stacks = int(getattr(model, "num_stacks", len(c.stack_weights)))
        weights = c.stack_weights * stacks if len(c.stack_weights) == 1 else c.stack_weights
        if len(weights) < stacks:
            raise ConfigError(f"loss.offsets.stack_weights has {len(weights)} entries for "
                              f"{stacks} stacks")
        return OffsetLoss(
            heatmap_weight=c.heatmap_weight, offset_weight=c.offset_weight,
            scale_weight=c.scale_weight, stack_weights=weights[:stacks], gamma=c.gamma,
            tau=c.tau, focal=c.focal, margin=c.margin, scale_margin=c.scale_margin,
            sqrt_re=c.sqrt_re, instance_norm=c.instance_norm)

    def build_val_reader(self, cfg: ExperimentCfg, spec: KeypointSpec) -> Any:
        from bupose.data.coco import CocoKeypoints

        return CocoKeypoints(cfg.data.val_ann, cfg.data.val_images, spec, train_filter=False)

    def build_predictor(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> Any:
        """SPI's ``OffsetPredictor`` with the ``eval.offsets`` settings."""
        from bupose.decoders.offsets import OffsetParams
        from bupose.inference.offset_predictor import OffsetPredictor

        e = cfg.eval.offsets
        param = next(iter(model.parameters()), None)
        try:
            params = OffsetParams(thre_hmp=e.thre_hmp, topk=e.topk, dist_max=e.dist_max,
                                  person_thre=e.person_thre)
            return OffsetPredictor(model, spec, params, input_size=e.input_size,
                                   resize_mode=e.resize_mode, flip=cfg.eval.flip,
                                   device=param.device if param is not None else "cpu")
        except ValueError as err:
            raise ConfigError(f"eval.offsets: {err}") from None

    def checkpoint_meta(self, cfg: ExperimentCfg) -> tuple[int, dict[str, Any]]:
        """Input size and test settings recorded in a trained checkpoint's ``meta``."""
        return offsets_test_meta(cfg)
