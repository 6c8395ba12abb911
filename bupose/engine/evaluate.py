"""Validation during training: the test-time Predictor on every validation image, then the AP
evaluator. Under DDP each rank predicts every world_size-th image; rank 0 scores the gathered
results and every rank receives the metrics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bupose.config import ExperimentCfg, config_to_dict
from bupose.engine import dist
from bupose.engine.checkpoint import unwrap
from bupose.structures.spec import KeypointSpec
from bupose.utils.io import read_json


def predict_reader(
    predictor: Any, reader: Any, indices: list[int], progress: bool = False
) -> list[dict[str, Any]]:
    """COCO result entries for ``reader[i]`` for each ``i`` in ``indices``."""
    from tqdm.auto import tqdm

    results: list[dict[str, Any]] = []
    for i in tqdm(indices, desc="validate", disable=not progress, leave=False, dynamic_ncols=True):
        sample = reader[i]
        by_sample = getattr(predictor, "predict_sample", None)  # top-down: the sample's GT boxes
        poses = by_sample(sample) if by_sample is not None else predictor(sample.image)
        results.extend(poses.to_coco(int(sample.image_id)))
    return results


def ground_truth_subset(ann_file: str | os.PathLike, image_ids: list[int]) -> dict[str, Any]:
    """The annotation file restricted to ``image_ids`` (so AP counts only the images predicted)."""
    gt = read_json(ann_file, "COCO annotation file")
    keep = set(image_ids)
    return {
        **gt,
        "images": [im for im in gt["images"] if im["id"] in keep],
        "annotations": [a for a in gt.get("annotations", []) if a["image_id"] in keep],
    }


def validate(
    model: nn.Module,
    task: Any,
    cfg: ExperimentCfg,
    spec: KeypointSpec,
    reader: Any,
    progress: bool = False,
) -> dict[str, float]:
    """AP statistics (``evaluate_keypoints`` names: "AP", "AP50" ...) on the validation reader.

    The model is left in eval mode. ``cfg.eval.max_images`` > 0 scores the first N images only.
    """
    from bupose.evaluation import evaluate_keypoints

    net = unwrap(model)
    net.eval()
    predictor = task.build_predictor(cfg, spec, net)
    n = len(reader) if cfg.eval.max_images <= 0 else min(len(reader), cfg.eval.max_images)
    mine = list(range(dist.get_rank(), n, dist.get_world_size()))
    with torch.inference_mode():
        local = predict_reader(predictor, reader, mine, progress and dist.is_main())
    gathered = dist.all_gather_object(local)
    metrics: dict[str, float] = {}
    if dist.is_main():
        results = [r for part in gathered for r in part]
        ids = [int(i) for i in reader.image_ids[:n]]
        annotations: Any = cfg.data.val_ann
        if n < len(reader):
            annotations = ground_truth_subset(cfg.data.val_ann, ids)
        metrics = dict(evaluate_keypoints(results, annotations, kind=cfg.eval.kind, spec=spec))
    return dist.broadcast_object(metrics)


def attach_test_settings(model: nn.Module, cfg: ExperimentCfg) -> None:
    """Record the training input size and the validation settings (``tasks.eval_settings``) in
    ``model.meta`` (``TestSettings.to_meta``: official TEST key names), so that a saved
    checkpoint is tested as it was validated (``Predictor(model)``, ``bupose infer``)."""
    from dataclasses import replace

    from bupose.engine.tasks import get_task

    own_meta = getattr(get_task(cfg.method), "checkpoint_meta", None)
    if own_meta is not None:  # top-down (CAL): (h, w) input and its own test keys
        size, test = own_meta(cfg)
        unwrap(model).meta = replace(unwrap(model).meta, input_size=size, test=test)
        return
    from bupose.engine.tasks import eval_settings

    settings = eval_settings(cfg)
    net = unwrap(model)
    net.meta = replace(net.meta, input_size=settings.input_size, test=settings.to_meta())


def save_model_checkpoint(
    path: str | Path, model: nn.Module, cfg: ExperimentCfg, spec: KeypointSpec,
    metrics: dict[str, float],
) -> Path:
    """Weights-only checkpoint (``bupose.models.load_checkpoint`` reads it) with the training
    config, the keypoint spec and the validation metrics as extra keys."""
    from bupose.models.checkpoint import save_checkpoint

    net = unwrap(model)
    return save_checkpoint(path, net, config=config_to_dict(cfg), metrics=dict(metrics))
