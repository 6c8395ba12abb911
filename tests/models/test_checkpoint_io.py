"""Reading checkpoint files: numpy metadata allowed by name, pickled objects refused, safetensors
metadata, errors that name the file (loading through load_checkpoint: test_checkpoint.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bupose.errors import CheckpointError
from bupose.models.checkpoint_io import read_file


class Opaque:
    """A class a checkpoint must never instantiate."""


def test_numpy_metadata_is_read(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.ones(2)}, "perf": np.float64(0.5),
                "hist": np.arange(3)}, tmp_path / "snap.pth")
    obj, meta = read_file(tmp_path / "snap.pth")
    assert meta == {} and float(obj["perf"]) == 0.5 and list(obj["hist"]) == [0, 1, 2]
    assert torch.equal(obj["state_dict"]["w"], torch.ones(2))


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(1), "obj": Opaque()}, tmp_path / "obj.pth")
    with pytest.raises(CheckpointError, match=r"obj.pth: holds pickled objects.*Opaque"):
        read_file(tmp_path / "obj.pth")


def test_safetensors_with_metadata(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file({"a": torch.arange(4.0)}, str(tmp_path / "w.safetensors"), metadata={"k": "v"})
    obj, meta = read_file(tmp_path / "w.safetensors")
    assert meta == {"k": "v"} and torch.equal(obj["a"], torch.arange(4.0))
    with pytest.raises(CheckpointError, match="nothing.pth: checkpoint file not found"):
        read_file(tmp_path / "nothing.pth")
