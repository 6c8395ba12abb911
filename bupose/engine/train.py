"""The training loop: ``fit(cfg, out_dir, resume)``, readable top to bottom.

Single process: ``bupose train CONFIG.yaml``. Several: ``torchrun --nproc_per_node N -m bupose
train CONFIG.yaml`` (gloo on CPU, NCCL on GPUs): each process takes ``batch_size`` images per
forward pass, gradients are averaged by DDP, rank 0 writes logs and checkpoints.

Run directory: ``config.yaml`` (the resolved config), ``log.jsonl`` (+ ``tb/``), ``last.pt``
(full training state, see ``engine.checkpoint``), ``best.pt`` (weights with the best AP).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel

from bupose.config import ExperimentCfg, TrainCfg, config_to_dict, save_config
from bupose.engine import dist
from bupose.engine.build import (
    build_loader,
    build_model,
    build_optimizer,
    seed_everything,
    set_train_mode,
)
from bupose.engine.checkpoint import (
    BEST_NAME,
    LAST_NAME,
    Progress,
    capture_rng,
    load_state,
    progress_of,
    restore_rng,
    save_training_state,
)
from bupose.engine.evaluate import attach_test_settings, save_model_checkpoint, validate
from bupose.engine.log import MeanMeter, RunLogger
from bupose.engine.schedule import effective_base_lr, lr_at
from bupose.engine.step import amp_dtype, to_device, train_step
from bupose.engine.synthetic import resolve_synthetic
from bupose.engine.tasks import get_task
from bupose.errors import ConfigError
from bupose.structures.spec import load_spec


def fit(cfg: ExperimentCfg, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; with ``resume``, continue exactly from ``out_dir/last.pt``.

    Returns:
        {"step", "epoch", "best_ap", "metrics" (last validation), "stopped_early"}.

    Raises:
        ConfigError: bad recipe, or ``out_dir`` already holds a run and ``resume`` is False.
        NonFiniteLossError: a loss term became NaN/inf (the last checkpoint is left as it was).
    """
    info = dist.init_distributed(cfg.train.device)
    cfg = resolve_synthetic(cfg)
    out_dir, device, tc = Path(out_dir), info.device, cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if not resume and (out_dir / LAST_NAME).exists():
        raise ConfigError(
            f"{out_dir} already holds a run ({LAST_NAME}); pass --resume to continue it, "
            "or choose another --out"
        )
    state = load_state(out_dir / LAST_NAME) if resume else None

    # Build: data files, model (same initial weights on every rank), data, loss, optimiser.
    task, spec = get_task(cfg.method), load_spec(cfg.data.spec)
    if info.is_main:
        task.prepare_data(cfg)
    dist.barrier()
    seed_everything(tc.seed)
    model = build_model(cfg.model, spec, init=state is None).to(device)
    attach_test_settings(model, cfg)
    train_set = task.build_train_dataset(cfg, spec, model)
    loss_fn = task.build_loss(cfg, spec, model).to(device)
    optimizer = build_optimizer(cfg.optim, model)
    dtype = amp_dtype(tc.amp, device)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    progress = Progress()
    if state is not None:
        model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        progress = progress_of(state)
    net: torch.nn.Module = model
    if info.distributed:
        if cfg.model.sync_bn and device.type == "cuda":
            net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
        elif cfg.model.sync_bn:
            warnings.warn("model.sync_bn needs CUDA devices; BatchNorm stays per process "
                          "(model.freeze_bn keeps it identical across processes)", stacklevel=2)
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(net, device_ids=ids)

    loader, sampler = build_loader(train_set, cfg, info.rank, info.world_size)
    micro, acc = tc.batch_size, tc.accumulate
    steps_per_epoch = sampler.per_epoch // (micro * acc)
    if tc.max_steps_per_epoch > 0:
        steps_per_epoch = min(steps_per_epoch, tc.max_steps_per_epoch)
    if steps_per_epoch == 0:
        raise ConfigError(
            f"{len(train_set)} training images cannot fill one step of {micro} x {acc} images "  # type: ignore[arg-type]
            f"on each of {info.world_size} process(es); lower train.batch_size or train.accumulate"
        )
    global_batch = micro * acc * info.world_size
    base_lr = effective_base_lr(cfg.optim, global_batch)
    logger = RunLogger(out_dir, enabled=info.is_main, tensorboard=tc.tensorboard)
    if state is not None:
        logger.truncate_after(progress.step)
        restore_rng(state["rng"][min(info.rank, len(state["rng"]) - 1)])
    elif info.is_main:
        save_config(cfg, out_dir / "config.yaml")
    logger.log("run", progress.step, {
        "world_size": info.world_size, "global_batch": global_batch, "base_lr": base_lr,
        "steps_per_epoch": steps_per_epoch, "train_images": len(train_set),  # type: ignore[arg-type]
        "params": sum(p.numel() for p in model.parameters()), "resumed": state is not None})
    val_reader = task.build_val_reader(cfg, spec) if tc.val_every > 0 else None
    if val_reader is not None:
        task.build_predictor(cfg, spec, model)  # check the test-time settings before training

    def save_last() -> None:
        rng = dist.all_gather_object(capture_rng())
        if info.is_main:
            save_training_state(out_dir / LAST_NAME, model=model, optimizer=optimizer,
                                scaler=scaler, progress=progress, rng=rng,
                                config=config_to_dict(cfg))

    started, stopped_early, metrics = time.monotonic(), False, {}
    for epoch in range(progress.epoch, tc.epochs):
        set_train_mode(net, cfg.model.freeze_bn)
        first = progress.step_in_epoch if epoch == progress.epoch else 0
        sampler.set_epoch(epoch, skip=first * micro * acc)
        batches = iter(loader)
        bar = _progress_bar(steps_per_epoch, first, f"epoch {epoch}", tc.progress and info.is_main)
        meter, images, tic = MeanMeter(), 0, time.monotonic()
        for step_in_epoch in range(first, steps_per_epoch):
            micro_batches = [to_device(next(batches), device) for _ in range(acc)]
            lr = lr_at(progress.step, steps_per_epoch, tc.epochs, cfg.optim, base_lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            terms = train_step(net, loss_fn, micro_batches, optimizer, scaler, dtype,
                               step=progress.step + 1, grad_clip=cfg.optim.grad_clip)
            progress = replace(progress, step=progress.step + 1, step_in_epoch=step_in_epoch + 1)
            meter.update(terms)
            images += global_batch
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.4g}", lr=f"{lr:.2g}")
            stopped_early = _should_stop(tc, progress.step, started, device)
            last_in_epoch = step_in_epoch + 1 == steps_per_epoch
            if progress.step % tc.log_every == 0 or last_in_epoch or stopped_early:
                means = dist.reduce_mean(meter.means(), device)
                rate = images / max(time.monotonic() - tic, 1e-9)
                logger.log("train", progress.step,
                           {"epoch": epoch, **means, "lr": lr, "images_per_s": rate})
                meter, images, tic = MeanMeter(), 0, time.monotonic()
            every = tc.checkpoint_every
            if stopped_early or (every > 0 and progress.step % every == 0):
                save_last()
            if stopped_early:
                break
        bar.close()
        if stopped_early:
            break
        progress = replace(progress, epoch=epoch + 1, step_in_epoch=0)
        save_last()
        if val_reader is not None and ((epoch + 1) % tc.val_every == 0 or epoch + 1 == tc.epochs):
            metrics = validate(model, task, cfg, spec, val_reader, tc.progress)
            logger.log("val", progress.step,
                       {"epoch": epoch, "elapsed_s": time.monotonic() - started, **metrics})
            ap = metrics.get("AP", -1.0)
            if ap > progress.best_ap:
                progress = replace(progress, best_ap=ap)
                if info.is_main:
                    save_model_checkpoint(out_dir / BEST_NAME, model, cfg, spec, metrics)
                save_last()  # keeps best_ap for a resumed run
    logger.close()
    return {"step": progress.step, "epoch": progress.epoch, "best_ap": progress.best_ap,
            "metrics": metrics, "stopped_early": stopped_early}


def _should_stop(tc: TrainCfg, step: int, started: float, device: torch.device) -> bool:
    """``train.max_steps`` reached, or ``train.time_limit`` minutes used (agreed by all ranks)."""
    if tc.max_steps > 0 and step >= tc.max_steps:
        return True
    if tc.time_limit > 0:
        over = time.monotonic() - started > tc.time_limit * 60.0
        return not dist.all_true(not over, device)
    return False


def _progress_bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False,
                dynamic_ncols=True)
