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
from dataclasses import dataclass, field, replace
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
from bupose.engine.tasks import Task, get_task
from bupose.errors import ConfigError
from bupose.structures.spec import KeypointSpec, load_spec


@dataclass
class _Run:
    """What one training run holds between its phases (built by ``_start``)."""

    cfg: ExperimentCfg
    info: dist.DistInfo
    out_dir: Path
    task: Task
    spec: KeypointSpec
    model: torch.nn.Module
    net: torch.nn.Module  # the model, or its DDP / SyncBN wrapper
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    dtype: torch.dtype | None
    progress: Progress
    loader: Any = None
    sampler: Any = None
    steps_per_epoch: int = 0
    global_batch: int = 0
    base_lr: float = 0.0
    logger: Any = None  # RunLogger, set by _prepare_loop
    val_reader: Any = None
    started: float = field(default_factory=time.monotonic)


def fit(cfg: ExperimentCfg, out_dir: str | Path, resume: bool = False) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir``; with ``resume``, continue exactly from ``out_dir/last.pt``.

    Returns:
        {"step", "epoch", "best_ap", "metrics" (last validation), "stopped_early"}.

    Raises:
        ConfigError: bad recipe, or ``out_dir`` already holds a run and ``resume`` is False.
        NonFiniteLossError: a loss term became NaN/inf (the last checkpoint is left as it was).
    """
    run = _start(cfg, Path(out_dir), resume)
    tc, stopped_early, metrics = run.cfg.train, False, {}
    for epoch in range(run.progress.epoch, tc.epochs):
        stopped_early = _train_epoch(run, epoch)
        if stopped_early:
            break
        run.progress = replace(run.progress, epoch=epoch + 1, step_in_epoch=0)
        _save_last(run)
        if run.val_reader is not None and ((epoch + 1) % tc.val_every == 0
                                           or epoch + 1 == tc.epochs):
            metrics = _validate(run, epoch)
    run.logger.close()
    dist.barrier()  # no rank leaves the group while another still writes or communicates
    return {"step": run.progress.step, "epoch": run.progress.epoch,
            "best_ap": run.progress.best_ap, "metrics": metrics, "stopped_early": stopped_early}


def _start(cfg: ExperimentCfg, out_dir: Path, resume: bool) -> _Run:
    """Build the run: data files, model (same initial weights on every rank), training set,
    loss, optimiser, the resumed state, the DDP wrapper, then the loop's loader and log."""
    info = dist.init_distributed(cfg.train.device)
    cfg = resolve_synthetic(cfg)
    device, tc = info.device, cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if not resume and (out_dir / LAST_NAME).exists():
        raise ConfigError(
            f"{out_dir} already holds a run ({LAST_NAME}); pass --resume to continue it, "
            "or choose another --out"
        )
    state = load_state(out_dir / LAST_NAME) if resume else None
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
    run = _Run(cfg, info, out_dir, task, spec, model, _wrap(model, cfg, info), loss_fn,
               optimizer, scaler, dtype, progress)
    _prepare_loop(run, state, train_set)
    return run


def _wrap(model: torch.nn.Module, cfg: ExperimentCfg, info: dist.DistInfo) -> torch.nn.Module:
    """The module that trains: the model itself, or (several processes) DDP around it, with
    SyncBatchNorm on CUDA when ``model.sync_bn``."""
    if not info.distributed:
        return model
    net = model
    if cfg.model.sync_bn and info.device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    elif cfg.model.sync_bn:
        warnings.warn("model.sync_bn needs CUDA devices; BatchNorm stays per process "
                      "(model.freeze_bn keeps it identical across processes)", stacklevel=2)
    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(net, device_ids=ids)


def _prepare_loop(run: _Run, state: dict[str, Any] | None, train_set: Any) -> None:
    """Loader, steps per epoch, learning rate, log (truncated after the resumed step), RNG
    state, and the validation reader (test settings checked up front)."""
    cfg, info, tc = run.cfg, run.info, run.cfg.train
    run.loader, run.sampler = build_loader(train_set, cfg, info.rank, info.world_size)
    micro, acc = tc.batch_size, tc.accumulate
    run.steps_per_epoch = run.sampler.per_epoch // (micro * acc)
    if tc.max_steps_per_epoch > 0:
        run.steps_per_epoch = min(run.steps_per_epoch, tc.max_steps_per_epoch)
    if run.steps_per_epoch == 0:
        raise ConfigError(
            f"{len(train_set)} training images cannot fill one step of {micro} x {acc} images "  # type: ignore[arg-type]
            f"on each of {info.world_size} process(es); lower train.batch_size or train.accumulate"
        )
    run.global_batch = micro * acc * info.world_size
    run.base_lr = effective_base_lr(cfg.optim, run.global_batch)
    run.logger = RunLogger(run.out_dir, enabled=info.is_main, tensorboard=tc.tensorboard)
    if state is not None:
        run.logger.truncate_after(run.progress.step)
        restore_rng(state["rng"][min(info.rank, len(state["rng"]) - 1)])
    elif info.is_main:
        save_config(cfg, run.out_dir / "config.yaml")
    run.logger.log("run", run.progress.step, {
        "world_size": info.world_size, "global_batch": run.global_batch, "base_lr": run.base_lr,
        "steps_per_epoch": run.steps_per_epoch, "train_images": len(train_set),  # type: ignore[arg-type]
        "params": sum(p.numel() for p in run.model.parameters()), "resumed": state is not None})
    run.val_reader = run.task.build_val_reader(cfg, run.spec) if tc.val_every > 0 else None
    if run.val_reader is not None:
        run.task.build_predictor(cfg, run.spec, run.model)  # check the test settings now
    run.started = time.monotonic()


def _train_epoch(run: _Run, epoch: int) -> bool:
    """One epoch (from the resumed step within it): forward/backward steps with their
    learning rate, logs every ``log_every`` steps, periodic checkpoints. Returns whether
    training stops early (``max_steps`` or ``time_limit``)."""
    cfg, tc, device = run.cfg, run.cfg.train, run.info.device
    set_train_mode(run.net, cfg.model.freeze_bn)
    first = run.progress.step_in_epoch if epoch == run.progress.epoch else 0
    run.sampler.set_epoch(epoch, skip=first * tc.batch_size * tc.accumulate)
    batches = iter(run.loader)
    bar = _progress_bar(run.steps_per_epoch, first, f"epoch {epoch}",
                        tc.progress and run.info.is_main)
    meter, images, tic, stopped_early = MeanMeter(), 0, time.monotonic(), False
    for step_in_epoch in range(first, run.steps_per_epoch):
        micro_batches = [to_device(next(batches), device) for _ in range(tc.accumulate)]
        lr = lr_at(run.progress.step, run.steps_per_epoch, tc.epochs, cfg.optim, run.base_lr)
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        terms = train_step(run.net, run.loss_fn, micro_batches, run.optimizer, run.scaler,
                           run.dtype, step=run.progress.step + 1, grad_clip=cfg.optim.grad_clip)
        run.progress = replace(run.progress, step=run.progress.step + 1,
                               step_in_epoch=step_in_epoch + 1)
        meter.update(terms)
        images += run.global_batch
        bar.update(1)
        bar.set_postfix(loss=f"{terms['loss']:.4g}", lr=f"{lr:.2g}")
        stopped_early = _should_stop(tc, run.progress.step, run.started, device)
        if (run.progress.step % tc.log_every == 0 or step_in_epoch + 1 == run.steps_per_epoch
                or stopped_early):
            rate = images / max(time.monotonic() - tic, 1e-9)
            run.logger.log("train", run.progress.step, {
                "epoch": epoch, **dist.reduce_mean(meter.means(), device), "lr": lr,
                "images_per_s": rate})
            meter, images, tic = MeanMeter(), 0, time.monotonic()
        every = tc.checkpoint_every
        if stopped_early or (every > 0 and run.progress.step % every == 0):
            _save_last(run)
        if stopped_early:
            break
    bar.close()
    return stopped_early


def _save_last(run: _Run) -> None:
    """Write the full training state (every rank's RNG) to ``last.pt`` on rank 0."""
    rng = dist.all_gather_object(capture_rng())
    if run.info.is_main:
        save_training_state(run.out_dir / LAST_NAME, model=run.model, optimizer=run.optimizer,
                            scaler=run.scaler, progress=run.progress, rng=rng,
                            config=config_to_dict(run.cfg))


def _validate(run: _Run, epoch: int) -> dict[str, float]:
    """Validate, log, and keep ``best.pt`` (and best_ap in ``last.pt``) when AP improves."""
    metrics = validate(run.model, run.task, run.cfg, run.spec, run.val_reader,
                       run.cfg.train.progress)
    run.logger.log("val", run.progress.step,
                   {"epoch": epoch, "elapsed_s": time.monotonic() - run.started, **metrics})
    ap = metrics.get("AP", -1.0)
    if ap > run.progress.best_ap:
        run.progress = replace(run.progress, best_ap=ap)
        if run.info.is_main:
            save_model_checkpoint(run.out_dir / BEST_NAME, run.model, run.cfg, run.spec,
                                  metrics)
        _save_last(run)  # keeps best_ap for a resumed run
    return metrics


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
