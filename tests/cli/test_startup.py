"""Start-up cost of the command (issue 12): listing commands and models imports no torch.

Times are measured by ``bupose bench`` (start-up section), never asserted here; what is checked
is the cause of a slow start: which heavy modules a command imports before it needs them.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bupose.cli import COMMANDS, SUMMARIES, build_parser

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from bupose.cli import main
try:
    code = main({argv!r})
except SystemExit as e:
    code = e.code
print(json.dumps({{"code": code, "heavy": sorted(m for m in ("torch", "cv2", "numba", "scipy")
                                                 if m in sys.modules)}}))
"""


def _probe(argv: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["models"], ["models", "--json"]])
def test_listing_imports_no_heavy_module(argv: list[str]) -> None:
    out = _probe(argv)
    assert out["code"] in (0, None)
    assert out["heavy"] == [], f"bupose {' '.join(argv)} imported {out['heavy']}"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_registers_its_listed_help(name: str) -> None:
    """The one-line help `bupose --help` shows without importing a command is the help its
    module registers."""
    seen: dict[str, object] = {}

    class Recorder:
        def add_parser(self, command: str, **kwargs: object) -> argparse.ArgumentParser:
            seen[command] = kwargs.get("help")
            return argparse.ArgumentParser(prog=command)

    importlib.import_module(f"bupose.cli.{name}_cmd").add_parser(Recorder())
    assert seen == {name: SUMMARIES[name]}


def test_only_the_chosen_command_is_built() -> None:
    parser = build_parser(["models", "--json"])
    assert parser.parse_args(["models", "--json"]).json is True
    with pytest.raises(SystemExit):
        parser.parse_args(["nonsense"])


def test_cached_model_rows_equal_the_live_registry() -> None:
    from bupose.cli.models_cmd import rows

    assert rows() == rows(live=True)
