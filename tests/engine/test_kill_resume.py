"""SIGKILL during a checkpoint write: the run resumes from the last complete checkpoint and ends
bit-identical to an uninterrupted run.

The killed run is ``bupose train`` in a child process started from a driver script that the test
writes (the package has no kill hook). The driver wraps ``torch.save``: when the object being
saved is the training state at a chosen (epoch, step), it writes it to the temporary file, cuts
that file to half its size, fsyncs and sends itself SIGKILL; the process dies inside
``atomic_write``, before the rename. Deterministic, no sleeping. Both kill points lose work: the
last complete checkpoint is one or two optimiser steps behind, so the resume redoes them.

Tiny recipe (``conftest.tiny_config``): 2 epochs x 4 steps, a checkpoint every 3 steps and at
each epoch end, i.e. at (epoch, step) = (0, 3), (1, 4), (1, 6), (2, 8).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from bupose.cli import main
from bupose.config import ExperimentCfg, save_config
from bupose.engine.checkpoint import LAST_NAME, load_state, progress_of
from bupose.engine.log import read_log
from bupose.engine.train import fit
from tests.engine.conftest import tiny_config

DRIVER = """
import os, signal, sys
import torch
from bupose.cli import main

recipe, out, kill_epoch, kill_step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
real_save = torch.save

def dying_save(obj, f, *args, **kwargs):
    real_save(obj, f, *args, **kwargs)
    progress = obj.get("progress") if isinstance(obj, dict) else None
    if progress and (progress["epoch"], progress["step"]) == (kill_epoch, kill_step):
        f.flush()
        f.truncate(f.tell() // 2)  # only the first half of the checkpoint reached the disk
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

torch.save = dying_save
raise SystemExit(main(["train", recipe, "--out", out]))
"""


@pytest.fixture(scope="module")
def recipe(synth_dir: Path) -> ExperimentCfg:
    return tiny_config(synth_dir, train={"checkpoint_every": 3})


@pytest.fixture(scope="module")
def reference(recipe: ExperimentCfg, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run."""
    out = tmp_path_factory.mktemp("uninterrupted")
    assert fit(recipe, out)["step"] == 8
    return out


def _train_steps(run: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_log(run / "log.jsonl") if r["kind"] == "train"]


def _assert_identical(a: Any, b: Any, where: str = "checkpoint") -> None:
    """Same structure and values; tensors compared with torch.equal (bitwise, dtype-aware)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            _assert_identical(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def _run_until_killed(recipe: ExperimentCfg, tmp_path: Path, epoch: int, step: int) -> Path:
    """``bupose train`` in a child that SIGKILLs itself halfway through writing the
    checkpoint of (epoch, step); returns its run directory."""
    save_config(recipe, tmp_path / "recipe.yaml")
    driver, out = tmp_path / "driver.py", tmp_path / "killed"
    driver.write_text(DRIVER)
    args = [str(tmp_path / "recipe.yaml"), str(out), str(epoch), str(step)]
    child = subprocess.run([sys.executable, str(driver), *args], capture_output=True, text=True,
                           env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    return out


@pytest.mark.parametrize(("kill_epoch", "kill_step", "last_complete"), [
    pytest.param(1, 4, (0, 3), id="end-of-epoch-save"),  # resumes mid-epoch 0, redoes step 4
    pytest.param(1, 6, (1, 4), id="mid-epoch-save"),  # resumes at epoch 1, redoes steps 5, 6
])
def test_sigkill_during_checkpoint_write_resumes_bit_identical(
        recipe: ExperimentCfg, reference: Path, tmp_path: Path, kill_epoch: int, kill_step: int,
        last_complete: tuple[int, int]) -> None:
    killed = _run_until_killed(recipe, tmp_path, kill_epoch, kill_step)
    assert max(s for s, _ in _train_steps(killed)) == kill_step  # work after last.pt was lost
    temporaries = [p for p in killed.iterdir() if p.name.startswith(f".{LAST_NAME}.")]
    assert len(temporaries) == 1 and temporaries[0].suffix == ".tmp"
    with pytest.raises(Exception):  # noqa: B017 - the half-written file is not a checkpoint
        torch.load(temporaries[0], weights_only=True)
    assert sorted(p.name for p in killed.glob("*.pt")) == [LAST_NAME]
    progress = progress_of(load_state(killed / LAST_NAME))  # the last complete checkpoint
    assert (progress.epoch, progress.step) == last_complete

    assert main(["train", "--resume", "--out", str(killed)]) == 0  # what a user runs next
    resumed = [r for r in read_log(killed / "log.jsonl") if r["kind"] == "run" and r["resumed"]]
    assert [r["step"] for r in resumed] == [last_complete[1]]  # from last.pt, not the .tmp
    assert _train_steps(killed) == _train_steps(reference)  # every step once, losses bitwise
    ref, end = load_state(reference / LAST_NAME), load_state(killed / LAST_NAME)
    assert progress_of(end) == progress_of(ref)
    for key in ("state_dict", "optimizer", "scaler", "rng", "config"):
        _assert_identical(ref[key], end[key], key)
