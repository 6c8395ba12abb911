"""Builders the training loop calls: model (with its initialisation), optimiser, data loader."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from bupose.config import ExperimentCfg, ModelCfg, OptimCfg
from bupose.engine.loader import EpochSampler, SeededDataset
from bupose.errors import ConfigError
from bupose.structures.spec import KeypointSpec


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (the model initialisation is then the same on every rank)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(
    cfg: ModelCfg, spec: KeypointSpec, device: torch.device | str = "cpu", init: bool = True
) -> nn.Module:
    """``create_model(cfg.name, spec=spec, **cfg.kwargs)`` on ``device``, then (with ``init``)
    ImageNet backbone weights and/or a fine-tuning checkpoint as the config asks.

    ``device="meta"`` builds the structure without allocating weights (for config checks).
    """
    from bupose.models import create_model

    with torch.device(device):
        try:
            model = create_model(cfg.name, spec=spec, **cfg.kwargs)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model {cfg.name!r}: bad model.kwargs {cfg.kwargs}: {e}") from None
    if init and str(device) != "meta":
        from bupose.models.checkpoint import load_backbone_weights

        if cfg.pretrained:
            load_backbone_weights(model, cfg.pretrained)
        if cfg.init_checkpoint:
            # Official PRETRAINED_LAYERS ['*'] fine-tuning (ALGORITHMS.md §5.5): backbone and
            # head from a trained pose model; layers it lacks (DaViT, fusion) keep their init.
            load_backbone_weights(model, cfg.init_checkpoint, include_head=True)
    return model


def build_optimizer(cfg: OptimCfg, model: nn.Module) -> torch.optim.Optimizer:
    """Adam / AdamW / SGD over the trainable parameters (lr is set every step by the schedule)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def set_train_mode(model: nn.Module, freeze_bn: bool) -> None:
    """``model.train()``; with ``freeze_bn`` BatchNorm layers stay in eval mode (running stats)."""
    model.train()
    if freeze_bn:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def build_loader(
    dataset: Dataset, cfg: ExperimentCfg, rank: int, world_size: int
) -> tuple[DataLoader, EpochSampler]:
    """Training loader over ``SeededDataset``: full batches only (``drop_last``), seeded order.

    Each ``iter(loader)`` draws the workers' base seed from the loader's own generator, not from
    the global torch RNG, so that starting an epoch (also the resumed part of one) leaves the
    model's random numbers (dropout, drop-path) where an uninterrupted run has them.
    """
    sampler = EpochSampler(len(dataset), rank, world_size, cfg.train.seed)  # type: ignore[arg-type]
    workers = cfg.data.workers
    loader = DataLoader(
        SeededDataset(dataset, cfg.train.seed), batch_size=cfg.train.batch_size,
        sampler=sampler, num_workers=workers, drop_last=True, pin_memory=torch.cuda.is_available(),
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )
    return loader, sampler


def describe(model: nn.Module) -> dict[str, Any]:
    """Parameter count for the log."""
    return {"params": sum(p.numel() for p in model.parameters())}
