"""Distributed data parallel on the CPU (gloo): two processes with 2 images each take the same
optimiser steps as one process with 4 images.

Why the two can be compared at all: (1) BatchNorm statistics are per process (2 images) under
DDP but over 4 images in one process, so BatchNorm is kept in eval mode (``model.freeze_bn``;
on GPUs ``model.sync_bn`` is the answer); (2) the loss is a mean over images and DDP averages
gradients over ranks, so the mean of two 2-image means is the 4-image mean; (3) the sampler deals
the same permutation out ``rank::2``, and every sample's augmentation is seeded by
(seed, epoch, index), so the union of the two ranks' batches is exactly the single batch;
(4) one thread per process, so the CPU kernels reduce in the same order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from bupose.config import apply_overrides, save_config
from bupose.engine.build import build_model, seed_everything
from bupose.engine.checkpoint import LAST_NAME, load_state
from bupose.engine.log import read_log
from bupose.engine.train import fit
from bupose.structures.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


def _initial_weights(cfg) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    seed_everything(cfg.train.seed)
    return build_model(cfg.model, load_spec(cfg.data.spec)).state_dict()


def test_two_gloo_processes_equal_one_process(make_config, tmp_path: Path) -> None:
    over = {"epochs": 2, "max_steps": 3, "threads": 1}  # 2 steps per epoch
    cfg = make_config(model={"freeze_bn": True}, train={**over, "batch_size": 4})
    single = fit(cfg, tmp_path / "single")
    assert single["step"] == 3

    ddp_cfg = apply_overrides(cfg, ["train.batch_size=2"])
    config = save_config(ddp_cfg, tmp_path / "ddp.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "bupose", "train", str(config), "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    a = load_state(tmp_path / "single" / LAST_NAME)["state_dict"]
    b = load_state(tmp_path / "ddp" / LAST_NAME)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)
    init = _initial_weights(cfg)
    assert max(float((a[k] - init[k]).abs().max()) for k in a) > 1e-4  # training moved them
    la = [r["loss"] for r in read_log(tmp_path / "single" / "log.jsonl") if r["kind"] == "train"]
    lb = [r["loss"] for r in read_log(tmp_path / "ddp" / "log.jsonl") if r["kind"] == "train"]
    assert len(lb) == 3  # rank 0 logs the rank-averaged loss terms
    torch.testing.assert_close(torch.tensor(lb), torch.tensor(la), rtol=1e-5, atol=1e-7)
