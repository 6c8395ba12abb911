"""Training-state checkpoints: everything needed to continue a run exactly.

``last.pt`` is a bupose model checkpoint (``bupose.models.checkpoint.save_checkpoint``: weights,
model name and kwargs, spec, test settings) that also holds the optimiser and grad-scaler states,
the progress counters (epoch, optimiser step, step within the epoch; the learning rate is a pure
function of the step), the RNG states of every rank, the best AP so far and the config.
``best.pt`` holds the weights with the best validation AP. Files are written atomically
(temporary file, then rename), so a crash while saving leaves the previous checkpoint intact, and
they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bupose.errors import CheckpointError
from bupose.utils.io import atomic_write

TRAIN_STATE_FORMAT = 1
TRAIN_STATE_KIND = "training_state"
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"


@dataclass(frozen=True)
class Progress:
    """Training progress: ``step`` optimiser steps done, ``step_in_epoch`` of them in ``epoch``.

    ``step_in_epoch == 0`` means the epoch has not started (a checkpoint saved at the end of
    epoch e stores ``epoch = e + 1, step_in_epoch = 0``).
    """

    epoch: int = 0
    step: int = 0
    step_in_epoch: int = 0
    best_ap: float = -1.0


def capture_rng() -> dict[str, Any]:
    """This process's Python, NumPy, torch (and CUDA) RNG states in weights_only-loadable form."""
    version, mt_state, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(mt_state), gauss],
        "numpy": {
            "key": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Inverse of ``capture_rng``."""
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    npst = state["numpy"]
    key = npst["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, npst["pos"], npst["has_gauss"], npst["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (or ``model`` itself)."""
    return getattr(model, "module", model)


def save_training_state(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    progress: Progress,
    rng: list[dict[str, Any]],
    config: dict[str, Any],
) -> Path:
    """Write ``last.pt``: a bupose model checkpoint (``save_checkpoint``, so ``load_checkpoint``
    and ``bupose eval`` read it too) plus the training state. ``rng``: one ``capture_rng()``
    per rank. Atomic."""
    from bupose.models.checkpoint import save_checkpoint

    return save_checkpoint(
        path, unwrap(model), config=config, kind=TRAIN_STATE_KIND,
        train_format=TRAIN_STATE_FORMAT, optimizer=optimizer.state_dict(),
        scaler=scaler.state_dict() if scaler is not None else None,
        progress=asdict(progress), rng=rng,
    )


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` any dict to a temporary file beside ``path``, then rename over it."""
    return atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training-state checkpoint on the CPU.

    Raises:
        CheckpointError: the file is missing, unreadable, or not a bupose training state.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (nothing to resume)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip errors come in many types
        raise CheckpointError(f"{path}: cannot read checkpoint: {e}") from None
    if not isinstance(state, dict) or state.get("kind") != TRAIN_STATE_KIND:
        raise CheckpointError(f"{path}: not a bupose training-state checkpoint")
    if state.get("train_format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(
            f"{path}: training-state format {state.get('train_format')} is not supported "
            f"(this bupose reads format {TRAIN_STATE_FORMAT})"
        )
    return state


def progress_of(state: dict[str, Any]) -> Progress:
    return Progress(**state["progress"])
