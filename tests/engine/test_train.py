"""The training loop: exact resume, gradient accumulation, non-finite loss stop, AMP bf16."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bupose.engine.checkpoint import LAST_NAME, load_state, progress_of
from bupose.engine.log import read_log
from bupose.engine.step import NonFiniteLossError
from bupose.engine.train import fit
from bupose.errors import ConfigError


def _losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(run / "log.jsonl") if r["kind"] == "train"}


def _params(run: Path) -> dict[str, torch.Tensor]:
    return load_state(run / LAST_NAME)["state_dict"]


def test_stopped_run_resumes_exactly(make_config, tmp_path: Path) -> None:
    # 2 epochs x 4 steps; the interrupted run stops mid-epoch 0 after step 3 and resumes.
    cfg = make_config()
    full = fit(cfg, tmp_path / "full")
    assert full["step"] == 8
    stopped = fit(make_config(train={"max_steps": 3}), tmp_path / "resumed")
    assert stopped["stopped_early"] and stopped["step"] == 3
    assert progress_of(load_state(tmp_path / "resumed" / LAST_NAME)).step_in_epoch == 3
    resumed = fit(cfg, tmp_path / "resumed", resume=True)
    assert resumed["step"] == 8
    a, b = _losses(tmp_path / "full"), _losses(tmp_path / "resumed")
    assert sorted(b) == list(range(1, 9))  # no duplicated or missing log records
    assert [b[s] for s in range(1, 9)] == [a[s] for s in range(1, 9)]  # bitwise equal
    pa, pb = _params(tmp_path / "full"), _params(tmp_path / "resumed")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_existing_run_needs_resume(make_config, tmp_path: Path) -> None:
    fit(make_config(train={"max_steps": 1}), tmp_path / "run")
    with pytest.raises(ConfigError, match="--resume"):
        fit(make_config(), tmp_path / "run")


def test_accumulation_equals_the_larger_batch(make_config, tmp_path: Path) -> None:
    # BatchNorm in eval mode: with batch statistics, 2 x 2 images would differ from 4 images.
    over = {"epochs": 1, "max_steps": 2}
    big = fit(make_config(model={"freeze_bn": True}, train={**over, "batch_size": 4}),
              tmp_path / "big")
    acc = fit(make_config(model={"freeze_bn": True}, train={**over, "accumulate": 2}),
              tmp_path / "acc")
    assert big["step"] == acc["step"] == 2
    pa, pb = _params(tmp_path / "big"), _params(tmp_path / "acc")
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-6)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(make_config, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from bupose.engine import tasks

    build = tasks.AETask.build_loss

    class Poisoned(torch.nn.Module):
        """The real loss, with heatmap/0 turned into NaN on its third call."""

        def __init__(self, loss: torch.nn.Module) -> None:
            super().__init__()
            self.loss, self.calls = loss, 0

        def forward(self, outputs, batch):  # type: ignore[no-untyped-def]
            terms = self.loss(outputs, batch)
            self.calls += 1
            if self.calls == 3:
                terms["heatmap/0"] = terms["heatmap/0"] * float("nan")
            return terms

    monkeypatch.setattr(tasks.AETask, "build_loss",
                        lambda self, cfg, spec, model: Poisoned(build(self, cfg, spec, model)))
    run = tmp_path / "nan"
    with pytest.raises(NonFiniteLossError, match=r"step 3 \(term\(s\) heatmap/0"):
        fit(make_config(train={"checkpoint_every": 1}), run)
    state = load_state(run / LAST_NAME)
    assert progress_of(state).step == 2
    weights = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)
    assert max(_losses(run)) == 2


def test_bf16_autocast_step_is_finite(make_config, tmp_path: Path) -> None:
    out = fit(make_config(train={"amp": "bf16", "epochs": 1, "max_steps": 2}), tmp_path / "bf16")
    assert out["step"] == 2
    records = [r for r in read_log(tmp_path / "bf16" / "log.jsonl") if r["kind"] == "train"]
    assert records and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)
    assert {"heatmap/0", "heatmap/1", "ae/pull", "ae/push", "lr", "images_per_s"} <= set(records[0])
