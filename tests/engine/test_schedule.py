"""Learning-rate schedule: equals torch's MultiStepLR per epoch, linear warm-up, LR scaling."""

from __future__ import annotations

import math

import pytest
import torch

from bupose.config import OptimCfg
from bupose.engine.schedule import effective_base_lr, lr_at


def test_multistep_matches_torch_multisteplr() -> None:
    optim = OptimCfg(lr=1e-3, lr_steps=(2, 4), lr_factor=0.1)
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.1)
    steps_per_epoch = 3
    for epoch in range(6):
        expected = opt.param_groups[0]["lr"]
        for i in range(steps_per_epoch):
            got = lr_at(epoch * steps_per_epoch + i, steps_per_epoch, 6, optim, 1e-3)
            assert got == pytest.approx(expected, rel=1e-12)
        opt.step()
        sched.step()


def test_linear_warmup_from_ratio() -> None:
    # mmcv linear warm-up: lr(s) = lr * (r + (1 - r) * s / W) for s < W, then the schedule.
    optim = OptimCfg(lr=1.5e-3, warmup_iters=500, warmup_ratio=0.001, lr_steps=(200, 260))
    assert lr_at(0, 100, 300, optim, 1.5e-3) == pytest.approx(1.5e-6)
    assert lr_at(250, 100, 300, optim, 1.5e-3) == pytest.approx(1.5e-3 * (0.001 + 0.999 * 0.5))
    assert lr_at(500, 100, 300, optim, 1.5e-3) == pytest.approx(1.5e-3)
    assert lr_at(200 * 100, 100, 300, optim, 1.5e-3) == pytest.approx(1.5e-4)


def test_constant_and_cosine() -> None:
    assert lr_at(10_000, 10, 100, OptimCfg(schedule="constant"), 1e-3) == 1e-3
    cos = OptimCfg(schedule="cosine")
    assert lr_at(0, 10, 10, cos, 1.0) == pytest.approx(1.0)
    assert lr_at(50, 10, 10, cos, 1.0) == pytest.approx(0.5)
    assert lr_at(25, 10, 10, cos, 1.0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_at(100, 10, 10, cos, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_lr_scaling_with_global_batch() -> None:
    optim = OptimCfg(lr=1e-3, reference_batch=48, scale_lr_with_batch=True)
    assert effective_base_lr(optim, 12) == pytest.approx(2.5e-4)  # 1 GPU x 12 of 4 x 12
    assert effective_base_lr(OptimCfg(lr=1e-3, reference_batch=48), 12) == 1e-3  # off


def test_offsetguided_schedule_equals_official() -> None:
    from tests.conftest import SHARED, require

    path = require(SHARED / "fixtures" / "official_offsetguided" / "losses" / "losses.json")
    import json

    ref = json.loads(path.read_text())["lr_schedule_readme"]["epoch_lr"]
    optim = OptimCfg(lr=1.25e-4, schedule="offsetguided")
    base = 1.25e-4 * 4  # lr x world size (4 GPUs in the recorded call)
    for epoch, lr in ref:
        assert lr_at(epoch * 10 + 3, 10, 140, optim, base) == pytest.approx(lr, rel=1e-12)
