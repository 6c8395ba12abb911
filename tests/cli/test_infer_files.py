"""`bupose infer` on a folder of the real samples with one corrupt file: skipped with a warning,
listed at the end, exit 0; --strict stops at it; every input bad -> exit 2; --show-maps and
--draw pictures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bupose.cli import main
from bupose.utils.io import read_image
from tests.conftest import FIXTURES, SHARED_DATA, require

TINY = FIXTURES / "tiny"
SAMPLES = SHARED_DATA / "samples" / "coco"


def _model() -> list[str]:
    return ["--checkpoint", str(require(TINY / "tiny_model.pth")),
            "--official-config", str(require(TINY / "tiny_config.yaml")), "--no-flip"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two real samples and a corrupt '.jpg' between them (sorted order)."""
    out = tmp_path / "images"
    out.mkdir()
    good = sorted(require(SAMPLES).glob("*.jpg"))[:2]
    shutil.copy(good[0], out / "a.jpg")
    (out / "b_corrupt.jpg").write_bytes(b"\xff\xd8 this is not a JPEG" * 20)
    shutil.copy(good[1], out / "c.jpg")
    return out


def test_bad_file_is_skipped_listed_and_exit_0(folder: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code = main(["infer", str(folder), *_model(), "--json", str(out),
                 "--show-maps", str(tmp_path / "maps"), "--draw", str(tmp_path / "drawn")])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning: skipped" in line]
    assert len(warnings) == 1 and "b_corrupt.jpg" in warnings[0]
    assert "1 of 3 files skipped:" in err and "\n2 images, " in err
    names = {e["file_name"] for e in json.loads(out.read_text())}
    assert names <= {"a.jpg", "c.jpg"} and "b_corrupt.jpg" not in names
    shown = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert shown == sorted(f"{s}_{k}.jpg" for s in "ac"
                           for k in ("heatmaps", "joints", "tags", "grouping"))
    assert sorted(p.name for p in (tmp_path / "drawn").iterdir()) == ["a.jpg", "c.jpg"]
    assert read_image(tmp_path / "maps" / "a_tags.jpg").shape == read_image(folder / "a.jpg").shape
    assert not list((tmp_path / "maps").glob(".*"))  # no temporary files left


def test_strict_stops_at_the_first_bad_file(folder: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    assert main(["infer", str(folder), *_model(), "--json", str(out), "--strict"]) == 2
    assert "b_corrupt.jpg: cannot decode image" in capsys.readouterr().err
    assert not out.exists()


def test_every_input_bad_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["infer", str(bad), *_model()]) == 2
    assert "every input failed" in capsys.readouterr().err
