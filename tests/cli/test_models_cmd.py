"""`bupose models` and the shared model arguments (--model/--checkpoint/--config/--spec)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bupose.cli.common import add_model_args, model_from_args
from bupose.errors import CheckpointError, ConfigError
from bupose.models import list_models
from tests.conftest import FIXTURES, require

ROOT = Path(__file__).resolve().parents[2]


def test_models_json_subprocess() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "bupose", "models", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    rows = {r["name"]: r for r in json.loads(done.stdout)}
    assert set(rows) == set(list_models())
    assert all(set(r) >= {"name", "input_size", "params", "gmacs", "gflops_paper"}
               for r in rows.values())
    w32 = rows["higherhrnet_w32_512"]
    assert (w32["input_size"], w32["params"]) == (512, 28_645_331)
    assert w32["gmacs"] == pytest.approx(46.20, abs=0.01)
    assert w32["gflops_paper"] == pytest.approx(47.86, abs=0.01)
    assert rows["higherhrnet_w32_davit_512"]["gflops_paper"] == pytest.approx(330.5, abs=0.01)


def test_models_rows_of_new_families() -> None:
    from bupose.cli.models_cmd import rows

    table = {r["name"]: r for r in rows()}
    hg = table["simplepose_hg104"]
    assert (hg["family"], hg["input_size"], hg["params"]) == ("offsets", 640, 187_728_622)
    cal = table["cal_hrnet_w48_128x96"]
    assert (cal["family"], cal["input_size"], cal["params"]) == ("topdown", [128, 96],
                                                                 117_211_683)
    assert table["higherhrnet_w32_512"]["family"] == "ae"
    assert table["cal_hrnet_w32_256x256_mpii"]["params"] == 49_314_032  # K = 16


def test_models_table_prints_h_x_w(capsys: pytest.CaptureFixture[str]) -> None:
    from bupose.cli.models_cmd import run

    assert run(argparse.Namespace(json=False)) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines()
                if ln.startswith("cal_hrnet_w32_64x48 "))
    assert "64x48" in line and "17,846,739" in line


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_args(parser)
    return parser.parse_args(list(argv))


def test_model_from_args() -> None:
    model = model_from_args(_parse("--model", "higherhrnet_tiny", "--spec", "crowdpose14"))
    assert model.num_keypoints == 14 and model.meta.spec.name == "crowdpose14"
    model = model_from_args(_parse("--model", "higherhrnet_tiny", "--num-keypoints", "5"))
    assert model.num_keypoints == 5
    tiny = require(FIXTURES / "tiny")
    model = model_from_args(_parse("--checkpoint", str(tiny / "tiny_model.pth"),
                                   "--config", str(tiny / "tiny_config.yaml")))
    assert model.meta.source == "official" and not model.training
    model = model_from_args(_parse("--config", str(tiny / "tiny_config.yaml")))
    assert model.meta.name == "higherhrnet_tiny" and model.meta.test["nms_kernel"] == 5


def test_model_args_errors() -> None:
    with pytest.raises(ConfigError, match="--model NAME"):
        model_from_args(_parse())
    with pytest.raises(ConfigError, match="14 keypoints"):
        model_from_args(_parse("--model", "higherhrnet_tiny", "--spec", "crowdpose14",
                               "--num-keypoints", "17"))


def test_bad_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth"):
        model_from_args(_parse("--checkpoint", str(bad)))
