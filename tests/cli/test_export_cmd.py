"""`bupose export`: the CLI writes the file, prints the parity line and fails when asked for a
format it does not know."""

from __future__ import annotations

import argparse

import pytest

from bupose.cli import main
from bupose.cli.export_cmd import parse_size
from tests.conftest import FIXTURES, require

TINY = FIXTURES / "tiny"


def test_export_onnx_dynamic_prints_parity(tmp_path, capsys):
    out = tmp_path / "tiny.onnx"
    argv = ["export", "--checkpoint", str(require(TINY / "tiny_model.pth")),
            "--official-config", str(require(TINY / "tiny_config.yaml")),
            "--format", "onnx", "--out", str(out), "--dynamic", "--input-size", "128"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "input (B, 3, 128, 128), dynamic H/W" in text
    line = next(s for s in text.splitlines() if s.startswith("parity"))
    assert "128x128" in line and "128x256" in line and line.endswith(": ok")
    diffs = [float(part.split(": ")[1]) for part in line.split("|diff| ")[1].split(" (")[0]
             .split(", ")]
    assert max(diffs) <= 1e-4


def test_parse_size():
    assert parse_size("512") == 512
    assert parse_size("256x192") == (256, 192)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("0")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size("axb")


def test_unknown_format_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit):
        main(["export", "--model", "higherhrnet_w32_512", "--format", "tflite",
              "--out", str(tmp_path / "m")])
