"""Training tasks: what a ``method`` needs besides the model, chosen by the config's ``method`` key.

A task builds the training dataset (targets of that method), the loss (named terms), the
validation reader and the test-time predictor. The engine's loop is the same for every method;
a new method (SimplePose offsets, CAL top-down crops) adds a task class and one ``TASKS`` entry.
"""

from __future__ import annotations

from typing import Any, Protocol

from torch import nn
from torch.utils.data import Dataset

from bupose.config import ExperimentCfg
from bupose.engine.cal_task import CALTask
from bupose.engine.offset_task import OffsetTask
from bupose.registry import Registry
from bupose.structures.spec import KeypointSpec


class Task(Protocol):
    """What the engine asks of a training method."""

    def prepare_data(self, cfg: ExperimentCfg) -> None:
        """Create generated data files if the recipe asks for them (rank 0 only; the paths in
        ``cfg`` are already resolved by ``engine.synthetic.resolve_synthetic``)."""

    def build_train_dataset(
        self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module
    ) -> Dataset:
        """Dataset of dicts with ``image`` (3, H, W) float32 and the method's targets."""

    def build_loss(
        self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module
    ) -> nn.Module:
        """``loss(outputs, batch) -> dict[str, Tensor]`` of named, weighted terms."""

    def build_val_reader(self, cfg: ExperimentCfg, spec: KeypointSpec) -> Any:
        """Reader of validation ``Sample``s (``len``, ``[i]``, ``image_ids``)."""

    def build_predictor(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> Any:
        """``predictor(image (H, W, 3) uint8) -> Poses`` in image pixels."""


class AETask:
    """Heatmaps + associative-embedding tags: HigherHRNet, bottom-up HRNet, HAE, fusion model."""

    def prepare_data(self, cfg: ExperimentCfg) -> None:
        if cfg.data.synth.enabled:
            from bupose.engine.synthetic import ensure_synthetic

            ensure_synthetic(cfg.data, progress=cfg.train.progress)

    def build_train_dataset(
        self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module
    ) -> Dataset:
        from bupose.data.ae_dataset import AETrainDataset
        from bupose.data.coco import CocoKeypoints
        from bupose.data.transforms import TrainAugment

        d = cfg.data
        reader = CocoKeypoints(d.train_ann, d.train_images, spec, train_filter=True)
        strides = [stage.stride for stage in model.output_layout]
        output_sizes = [d.input_size // s for s in strides]
        augment = TrainAugment(
            max_rotation=d.max_rotation, min_scale=d.min_scale, max_scale=d.max_scale,
            max_translate=d.max_translate, flip_prob=d.flip_prob, style=d.augment,
        )
        return AETrainDataset(
            reader, spec, d.input_size, output_sizes, sigma=d.sigma, max_people=d.max_people,
            augment=augment, seed=cfg.train.seed,
        )

    def build_loss(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> nn.Module:
        from bupose.losses import PoseLoss

        loss = cfg.loss
        layout = model.output_layout
        groups = spec.get_groups(loss.groups or None) if loss.tag_loss == "hae" else None
        o, l, h = loss.hae_weights
        return PoseLoss(
            layout, ae=loss.tag_loss, heatmaps_factor=_stages(loss.heatmap_weights, len(layout)),
            pull_factor=loss.pull_weight, push_factor=loss.push_weight, ae_type=loss.ae_type,
            groups=groups,
            o_weight=o, l_weight=l, h_weight=h, focal=loss.focal, gamma=loss.gamma,
        )

    def build_val_reader(self, cfg: ExperimentCfg, spec: KeypointSpec) -> Any:
        from bupose.data.coco import CocoKeypoints

        return CocoKeypoints(cfg.data.val_ann, cfg.data.val_images, spec, train_filter=False)

    def build_predictor(self, cfg: ExperimentCfg, spec: KeypointSpec, model: nn.Module) -> Any:
        from bupose.decoders import DECODERS
        from bupose.inference.predictor import Predictor

        settings = eval_settings(cfg)
        DECODERS.get(settings.decoder)  # an unknown name fails now, not after the first epoch
        return Predictor(model, spec, settings=settings, fast=False)


def eval_settings(cfg: ExperimentCfg) -> Any:
    """The recipe's ``TestSettings``: the training input size and the ``eval:`` section (keys
    matched by name), over the defaults. Validation uses them and checkpoints record them."""
    from bupose.inference.settings import TestSettings

    return TestSettings(input_size=cfg.data.input_size).updated_from(cfg.eval)


def _stages(weights: tuple[float, ...], n: int) -> tuple[float, ...]:
    """Per-stage weights: a single value applies to every stage; extra trailing ones are dropped
    (a recipe's (1.0, 1.0) also fits a one-output bottom-up HRNet)."""
    if len(weights) == 1:
        return weights * n
    return tuple(weights[:n])


TASKS: Registry[type] = Registry("training method")
TASKS.add("ae", AETask)
TASKS.add("cal", CALTask)
TASKS.add("offsets", OffsetTask)


def get_task(method: str) -> Task:
    """The task object of a config's ``method``."""
    return TASKS.get(method)()


def poses_to_results(poses: Any, image_id: int) -> list[dict[str, Any]]:
    """COCO result entries of one image's ``Poses``."""
    return poses.to_coco(int(image_id))
