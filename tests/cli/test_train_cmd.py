"""``bupose train`` / ``bupose plot`` from the command line (in-process ``main``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from bupose.cli import main

RECIPE = """
model: {{name: higherhrnet_tiny, kwargs: {{width: 8}}}}
data:
  input_size: 64
  workers: 0
  synth: {{enabled: true, dir: {synth}, train_images: 4, val_images: 1, size: [64, 64]}}
train: {{epochs: 1, batch_size: 2, val_every: 0, log_every: 1, threads: 1,
         tensorboard: false, progress: false}}
"""


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(RECIPE.format(synth=tmp_path / "synth"))
    return path


def test_train_then_resume_then_plot(recipe: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--set", "train.max_steps=1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 1 and summary["stopped_early"] is True
    assert (run / "config.yaml").is_file() and (run / "last.pt").is_file()
    # --resume without CONFIG reads RUN_DIR/config.yaml (max_steps reset on the command line)
    assert main(["train", "--resume", "--out", str(run), "--set", "train.max_steps=0"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["epoch"] == 1

    assert main(["plot", str(run)]) == 0
    image = cv2.imread(str(run / "curves.png"))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 2 * image.shape[0]


def test_unknown_keys_exit_2_naming_them(recipe: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["train", str(recipe), "--set", "train.epoch=3"]) == 2
    assert "train.epoch" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(recipe.read_text() + "optim: {momentun: 0.9}\n")
    assert main(["train", str(bad), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "optim.momentun" in err


def test_print_config_and_existing_run(recipe: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    assert main(["train", str(recipe), "--print-config", "--set", "optim.lr=0.01"]) == 0
    assert "lr: 0.01" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--set", "train.max_steps=1"]) == 0
    assert main(["train", str(recipe), "--out", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err


def test_plot_without_log_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["plot", str(tmp_path)]) == 2
    assert "no training log" in capsys.readouterr().err
