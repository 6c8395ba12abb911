"""``bupose data synth`` / ``bupose data stats``: files written, counts printed match the JSON."""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys

import pytest

from bupose.cli import data_cmd
from bupose.data.synth import SceneConfig, write_synth
from tests.conftest import ROOT, SHARED_DATA, require

CROWDPOSE_VAL = SHARED_DATA / "crowdpose_val_annotations" / "crowdpose_val.json"


@functools.cache
def _parser_error() -> str:
    """'' when the shared CLI parser builds, else the end of its error (probed once)."""
    probe = subprocess.run([sys.executable, "-c", "import bupose.cli as c; c.build_parser()"],
                           cwd=ROOT, capture_output=True, text=True)
    return probe.stderr.strip()[-200:] if probe.returncode else ""


def run_bupose(*argv: str) -> subprocess.CompletedProcess:
    """``python -m bupose ARGV`` in a fresh interpreter; a CLI parser that cannot be built (a
    subcommand module failing to import) fails the test."""
    if _parser_error():
        pytest.fail(f"the bupose parser cannot be built: {_parser_error()}")
    return subprocess.run([sys.executable, "-m", "bupose", *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def run_data(argv: list[str]) -> int:
    """The data subcommand in this process (independent of the other CLI modules)."""
    parser = argparse.ArgumentParser(prog="bupose")
    data_cmd.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["data", *argv])
    return args.func(args)


def _counts(ann_file) -> dict:
    """Counts computed here, straight from the JSON."""
    data = json.loads(ann_file.read_text())
    v = [x for a in data["annotations"] for x in a["keypoints"][2::3]]
    ci = [im["crowdIndex"] for im in data["images"]]
    return {
        "images": len(data["images"]), "persons": len(data["annotations"]),
        "visible": v.count(2), "occluded": v.count(1),
        "easy": sum(c < 0.2 for c in ci), "hard": sum(c >= 0.8 for c in ci),
    }


def test_synth_then_stats_in_process(tmp_path, capsys):
    out = tmp_path / "synth"
    assert run_data(["synth", "--out", str(out), "--images", "3", "--size", "96x80",
                     "--people", "2,4", "--crowding", "0.7", "--seed", "5", "--quiet"]) == 0
    ann = out / "annotations.json"
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "000000000001.jpg", "000000000002.jpg", "000000000003.jpg"]
    data = json.loads(ann.read_text())
    assert all((im["width"], im["height"]) == (96, 80) for im in data["images"])
    assert all(sum(a["image_id"] == im["id"] for a in data["annotations"]) <= 4
               for im in data["images"]) and len(data["annotations"]) >= 3
    capsys.readouterr()
    assert run_data(["stats", str(ann), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    c = _counts(ann)
    assert (stats["images"], stats["persons"], stats["visible"], stats["occluded"]) == (
        c["images"], c["persons"], c["visible"], c["occluded"])
    assert stats["keypoints"] == c["visible"] + c["occluded"]
    assert (stats["crowd_index"]["easy"], stats["crowd_index"]["hard"]) == (c["easy"], c["hard"])
    assert sum(stats["crowd_index"][b] for b in ("easy", "medium", "hard")) == 3


def test_stats_subprocess_prints_counts_matching_the_json(tmp_path):
    ann = write_synth(tmp_path, 3, 1, SceneConfig(size=(64, 64), people=(3, 5), crowding=0.6))
    proc = run_bupose("data", "stats", str(ann))
    assert proc.returncode == 0, proc.stderr
    c = _counts(ann)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["images:", str(c["images"])]
    assert lines[1].split()[:2] == ["persons:", str(c["persons"])]
    assert f"({c['visible']} visible v=2, {c['occluded']} occluded v=1)" in lines[2]
    assert f"easy (<0.2) {c['easy']}," in lines[3] and f"hard (>=0.8) {c['hard']};" in lines[3]


def test_stats_of_crowdpose_val_match_its_readme(capsys):
    """shared/data/README.md: 2,000 images, 8,527 persons, buckets 411 / 1,240 / 349."""
    require(CROWDPOSE_VAL)
    assert run_data(["stats", str(CROWDPOSE_VAL), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["images"], stats["persons"]) == (2000, 8527)
    assert [stats["crowd_index"][b] for b in ("easy", "medium", "hard")] == [411, 1240, 349]


def test_bad_input_exits_2_without_traceback(tmp_path):
    proc = run_bupose("data", "stats", str(tmp_path / "missing.json"))
    assert proc.returncode == 2
    assert "missing.json: annotation file not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    with pytest.raises(SystemExit) as exit_info:  # argparse usage error, also status 2
        run_data(["synth", "--out", str(tmp_path), "--crowding", "2"])
    assert exit_info.value.code == 2
