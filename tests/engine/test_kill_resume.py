"""SIGKILL during a checkpoint write: the run resumes from the last complete checkpoint and ends
bit-identical to an uninterrupted run.

The killed run is a child process whose ``torch.save`` is wrapped (by the driver script the
test writes, not by the package): on its third call it writes the checkpoint into the temporary
file, cuts that file to half its size, and sends itself SIGKILL, i.e. the process dies in the
middle of ``atomic_write``, before the rename. Deterministic, no sleeping.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import torch

from bupose.engine.checkpoint import LAST_NAME, load_state, progress_of
from bupose.engine.log import read_log
from bupose.engine.train import fit

ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import os, signal, sys
from pathlib import Path
import torch
sys.path.insert(0, {root!r})
from tests.engine.conftest import tiny_config
from bupose.engine.train import fit

real_save, calls = torch.save, []

def dying_save(obj, f, *args, **kwargs):
    calls.append(1)
    real_save(obj, f, *args, **kwargs)
    if len(calls) == 3:  # the third checkpoint: half written, then killed before the rename
        f.flush()
        f.truncate(f.tell() // 2)
        f.flush()
        os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)

torch.save = dying_save
fit(tiny_config(Path(sys.argv[1]), train={{"checkpoint_every": 2}}), sys.argv[2])
"""


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(run / "log.jsonl") if r["kind"] == "train"}


def test_sigkill_during_checkpoint_write_resumes_bit_identical(make_config, synth_dir: Path,
                                                              tmp_path: Path) -> None:
    cfg = make_config(train={"checkpoint_every": 2})
    full = fit(cfg, tmp_path / "full")
    assert full["step"] == 8
    killed = tmp_path / "killed"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(root=str(ROOT)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    child = subprocess.run([sys.executable, str(driver), str(synth_dir), str(killed)],
                           env=env, capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    leftovers = [p for p in killed.iterdir() if p.name.startswith(f".{LAST_NAME}.")]
    assert leftovers and all(p.suffix == ".tmp" for p in leftovers)  # the half-written file
    step = progress_of(load_state(killed / LAST_NAME)).step  # the last complete checkpoint
    assert 0 < step < 8

    resumed = fit(cfg, killed, resume=True)
    assert resumed["step"] == 8
    a, b = _losses(tmp_path / "full"), _losses(killed)
    assert sorted(b) == list(range(1, 9))  # steps redone after the kill are not logged twice
    assert [b[s] for s in range(1, 9)] == [a[s] for s in range(1, 9)]  # bitwise equal
    ref, end = load_state(tmp_path / "full" / LAST_NAME), load_state(killed / LAST_NAME)
    assert all(torch.equal(ref["state_dict"][k], end["state_dict"][k]) for k in ref["state_dict"])
    opt_ref, opt_end = ref["optimizer"]["state"], end["optimizer"]["state"]
    assert opt_ref.keys() == opt_end.keys()
    assert all(torch.equal(opt_ref[i][name], opt_end[i][name])
               for i in opt_ref for name in opt_ref[i] if torch.is_tensor(opt_ref[i][name]))
