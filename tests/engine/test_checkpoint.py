"""Training-state checkpoints: RNG round trip, atomic writes, clear errors."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from bupose.engine.checkpoint import (
    Progress,
    capture_rng,
    load_state,
    progress_of,
    restore_rng,
    save_state,
    save_training_state,
)
from bupose.errors import CheckpointError
from bupose.models import create_model
from bupose.models.checkpoint import load_checkpoint


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_rng_round_trip_through_weights_only_file(tmp_path: Path) -> None:
    state = capture_rng()
    expected = _draws()
    path = tmp_path / "rng.pt"
    save_state(path, {"rng": state})
    _draws()
    restore_rng(torch.load(path, weights_only=True)["rng"])
    assert _draws() == expected


def _save(path: Path, model: torch.nn.Module, step: int, **extra: object) -> Path:
    opt = torch.optim.Adam(model.parameters())
    config = {"method": "ae", **extra}
    return save_training_state(
        path, model=model, optimizer=opt, scaler=None, rng=[capture_rng()], config=config,
        progress=Progress(epoch=1, step=step, step_in_epoch=2),
    )


def test_training_state_is_also_a_model_checkpoint(tmp_path: Path) -> None:
    model = create_model("higherhrnet_tiny", width=4, num_blocks=1)
    path = _save(tmp_path / "last.pt", model, 5)
    state = load_state(path)
    assert progress_of(state) == Progress(epoch=1, step=5, step_in_epoch=2)
    assert state["optimizer"]["param_groups"] and state["config"]["method"] == "ae"
    loaded = load_checkpoint(path)  # what `bupose eval --checkpoint` does
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_failed_save_keeps_previous(tmp_path: Path) -> None:
    model = create_model("higherhrnet_tiny", width=4, num_blocks=1)
    path = _save(tmp_path / "last.pt", model, 5)
    with pytest.raises(Exception):  # noqa: B017 - any pickling error
        _save(path, model, 6, bad=lambda: None)  # torch.save fails half-way
    assert progress_of(load_state(path)).step == 5
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_state(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        load_state(junk)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a bupose training-state"):
        load_state(other)
