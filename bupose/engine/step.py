"""One optimiser step: forward under autocast, losses in fp32, backward, (accumulate), update."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bupose.engine import dist
from bupose.errors import BuposeError

LossFn = Callable[[tuple[Tensor, ...], dict[str, Any]], dict[str, Tensor]]


class NonFiniteLossError(BuposeError):
    """A loss term became NaN or infinite; training stops before the bad update."""


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.amp`` on ``device`` (None = full fp32).

    "auto" means fp16 on CUDA (with a grad scaler) and fp32 on CPU; "bf16" works on both.
    """
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16" or (amp == "auto" and device.type == "cuda"):
        if device.type != "cuda":
            raise BuposeError("train.amp=fp16 needs a CUDA device; use bf16 on the CPU")
        return torch.float16
    return None


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor of a (nested) batch to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def forward_loss(
    model: nn.Module, loss_fn: LossFn, batch: dict[str, Any], dtype: torch.dtype | None
) -> dict[str, Tensor]:
    """Model under autocast (when ``dtype``), then the loss on fp32 copies of the outputs.

    ``batch["image"]`` is (B, 3, H, W) float32; the loss gets the model outputs and the batch.
    """
    device_type = batch["image"].device.type
    with torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        outputs = model(batch["image"])
    with torch.autocast(device_type, enabled=False):
        outputs = tuple(o.float() for o in outputs)
        return loss_fn(outputs, batch)


def train_step(
    model: nn.Module,
    loss_fn: LossFn,
    micro_batches: Sequence[dict[str, Any]],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    dtype: torch.dtype | None,
    step: int,
    grad_clip: float = 0.0,
) -> dict[str, float]:
    """Accumulate gradients over ``micro_batches`` (already on the device), then update once.

    Each micro-batch's loss is divided by their number, so the update equals one on their
    concatenation when the loss is a mean over images. Under DDP, gradients are all-reduced only
    on the last micro-batch. Returns the loss terms (and "loss", their sum) averaged over the
    micro-batches on this rank.

    Raises:
        NonFiniteLossError: some term is NaN/inf on some rank (checked before any backward, so
            the parameters and the last checkpoint stay as they were).
    """
    n = len(micro_batches)
    totals: dict[str, float] = {}
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(micro_batches):
        sync = i == n - 1 or not hasattr(model, "no_sync")
        with contextlib.nullcontext() if sync else model.no_sync():
            terms = forward_loss(model, loss_fn, batch, dtype)
            loss = sum(terms.values())
            _check_finite(terms, loss, step)
            scaled = loss / n
            (scaler.scale(scaled) if scaler is not None else scaled).backward()
        for key, value in {**terms, "loss": loss}.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach()) / n
    if grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return totals


def _check_finite(terms: dict[str, Tensor], loss: Tensor, step: int) -> None:
    finite = bool(torch.isfinite(loss.detach()).all())
    if dist.all_true(finite, loss.device):
        return
    bad = [k for k, v in terms.items() if not bool(torch.isfinite(v.detach()).all())]
    where = f"term(s) {', '.join(bad)}" if bad else "another rank's loss"
    values = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in terms.items())
    raise NonFiniteLossError(
        f"non-finite loss at optimiser step {step} ({where}; {values}); training stopped, "
        "the last checkpoint is unchanged. Try a lower optim.lr, train.amp=none or grad clipping."
    )
