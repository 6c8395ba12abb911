"""Shared model arguments: --official-config, and the old --config spelling with its note."""

from __future__ import annotations

import argparse
from pathlib import Path

from bupose.cli.common import add_model_args


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_model_args(parser)
    return parser.parse_args(argv)


def test_official_config_and_deprecated_config_spelling(capsys):
    new = _parse(["--official-config", "w32.yaml"])
    assert new.config == Path("w32.yaml") and capsys.readouterr().err == ""
    old = _parse(["--config", "w32.yaml"])
    assert old.config == Path("w32.yaml")
    err = capsys.readouterr().err
    assert "deprecated" in err and "--official-config" in err and err.count("\n") == 1
    assert _parse([]).config is None
