"""The ``cal`` training method: top-down CAL (ALGORITHMS.md §6).

Training items are person crops of the ground-truth boxes (``TopDownDataset``) with heatmap,
offset and mask targets; the loss is the confidence-aware ``CALLoss``; validation runs the
official test path (``TopDownPredictor.predict_sample``: GT boxes cleaned as the reference, flip,
argmax + offset read-out, rescoring, OKS-NMS) on every validation image and scores COCO AP.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.utils.data import Dataset

from bupose.config import ExperimentCfg
from bupose.errors import ConfigError
from bupose.structures.spec import KeypointSpec


def check_topdown(cfg: ExperimentCfg) -> None:
    """ConfigError naming the key when a top-down setting is out of range."""
    t, d = cfg.data.topdown, cfg.data
    h, w = t.input_size
    if h < 8 or w < 8 or h % 4 or w % 4:
        raise ConfigError(f"data.topdown.input_size must be (h, w) multiples of 4 and >= 8, got "
                          f"{list(t.input_size)}")
    positive = {"data.sigma": d.sigma, "data.topdown.mask_sigma": t.mask_sigma,
                "data.topdown.locref_stdev": t.locref_stdev, "data.topdown.kpd": t.kpd,
                "data.topdown.padding": t.padding}
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    probs = {"data.topdown.half_body_prob": t.half_body_prob, "data.flip_prob": d.flip_prob,
             "data.topdown.rotation_prob": t.rotation_prob}
    for key, value in probs.items():
        if not 0 <= value <= 1:
            raise ConfigError(f"{key} must be in [0, 1], got {value}")
    if not 0 <= t.scale_factor < 1 or t.rotation_factor < 0:
        raise ConfigError("data.topdown.scale_factor must be in [0, 1) and rotation_factor >= 0")
    if cfg.loss.cal.offset_weight < 0:
        raise ConfigError(f"loss.cal.offset_weight must be >= 0, got {cfg.loss.cal.offset_weight}")


def check_model_input(model: nn.Module, input_size: tuple[int, int]) -> None:
    """ConfigError unless ``model`` maps a (h, w) crop to (h/4, w/4) maps (a dry forward of
    one zero crop on the model's device; shapes only on the meta device)."""
    import torch

    h, w = input_size
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            heatmaps, offsets = model(torch.zeros(1, 3, h, w, device=device))[:2]
    except RuntimeError as e:
        raise ConfigError(f"data.topdown.input_size {[h, w]} does not fit the model (its "
                          f"lower-resolution branches need other multiples): {e}") from None
    finally:
        model.train(was_training)
    if tuple(heatmaps.shape[-2:]) != (h // 4, w // 4) or offsets.shape[1] != 2 * heatmaps.shape[1]:
        raise ConfigError(f"data.topdown.input_size {[h, w]}: the model gives maps "
                          f"{tuple(heatmaps.shape)} / {tuple(offsets.shape)}, expected "
                          f"(K, {h // 4}, {w // 4}) heatmaps and 2K offset channels")


def cal_test_meta(cfg: ExperimentCfg) -> tuple[tuple[int, int], dict[str, Any]]:
    """What a trained CAL checkpoint records: the input (h, w) and its test settings under the
    official (lower-case) key names ``TopDownPredictor`` reads."""
    e, t = cfg.eval, cfg.data.topdown
    test = {"flip_test": e.flip, "locref_stdev": t.locref_stdev, "in_vis_thre": e.in_vis_thre,
            "oks_thre": e.oks_thre, "decoder": "cal"}
    return (int(t.input_size[0]), int(t.input_size[1])), test


class CALTask:
    """Top-down crops + heatmaps and confidence-aware offsets (CAL)."""

    def prepare_data(self, cfg: ExperimentCfg) -> None:
        check_topdown(cfg)
        if cfg.data.synth.enabled:
            from bupose.engine.synthetic import ensure_synthetic

            ensure_synthetic(cfg.data, progress=cfg.train.progress)

    def build_train_dataset(
        self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module
    ) -> Dataset:
        from bupose.data.coco import CocoKeypoints
        from bupose.data.topdown import TopDownAugment
        from bupose.data.topdown_dataset import TopDownDataset

        check_topdown(cfg)
        d, t = cfg.data, cfg.data.topdown
        check_model_input(model, t.input_size)
        reader = CocoKeypoints(d.train_ann, d.train_images, spec, train_filter=True)
        augment = TopDownAugment(
            half_body_prob=t.half_body_prob, half_body_joints=t.half_body_joints,
            scale_factor=t.scale_factor, rotation_factor=t.rotation_factor,
            rotation_prob=t.rotation_prob, flip_prob=d.flip_prob)
        dataset = TopDownDataset(
            reader, spec, t.input_size, sigma=d.sigma, locref_stdev=t.locref_stdev,
            mask_sigma=t.mask_sigma, kpd=t.kpd, augment=augment, seed=cfg.train.seed,
            padding=t.padding)
        if len(dataset) == 0:
            raise ConfigError(f"{d.train_ann}: no person with a labelled keypoint to train on")
        return dataset

    def build_loss(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> nn.Module:
        from bupose.losses.cal_loss import CALLoss

        c = cfg.loss.cal
        mask = ("gmm" if c.gmm else "gaussian") if c.gt_mask else "01"
        return CALLoss(offset_weight=c.offset_weight, offset_mask=mask)

    def build_val_reader(self, cfg: ExperimentCfg, spec: KeypointSpec) -> Any:
        from bupose.data.coco import CocoKeypoints

        return CocoKeypoints(cfg.data.val_ann, cfg.data.val_images, spec, train_filter=False)

    def build_predictor(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> Any:
        """``TopDownPredictor``; validation calls its ``predict_sample`` (GT boxes)."""
        from bupose.inference.topdown import TopDownPredictor

        size, test = cal_test_meta(cfg)
        return TopDownPredictor(model, spec, input_size_hw=size,
                                locref_stdev=test["locref_stdev"], in_vis_thre=test["in_vis_thre"],
                                oks_thre=test["oks_thre"], flip=test["flip_test"],
                                batch_size=max(1, cfg.train.batch_size))

    def checkpoint_meta(self, cfg: ExperimentCfg) -> tuple[tuple[int, int], dict[str, Any]]:
        """Input size and test settings recorded in a trained checkpoint's ``meta``."""
        return cal_test_meta(cfg)
