"""``bupose demo``: data, counts, contact sheets, the network end to end (the shipped default model
-> maps -> grouping -> results, AP, pictures) and AE/HAE grouping of oracle maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bupose.cli import main
from bupose.utils.io import read_image, read_json


def test_demo_runs_the_network_and_scores_both_decoders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--images", "4", "--network-images", "3"])
    assert code == 0
    captured = capsys.readouterr()
    text = captured.out
    notes = [line for line in captured.err.splitlines() if "default model" in line]
    assert len(notes) == 1 and "synthetic" in notes[0] and "zoo:" in notes[0]
    assert "[5/5]" in text and "images:              4" in text
    assert "COCO keypoint AP" in text and "3 images" in text
    for name in ("gt_grid.jpg", "ae_grid.jpg", "network_grid.jpg"):
        grid = read_image(out / name)
        assert grid.shape[0] > 256 and grid.shape[1] > 256
    assert len(read_json(out / "data" / "annotations.json")["images"]) == 4
    results = json.loads((out / "network" / "results.json").read_text())
    assert len(results) >= 3  # the shipped model finds the held-out people
    assert set(json.loads((out / "network" / "ap.json").read_text())) >= {"AP", "AP50"}
    maps = sorted(p.name for p in (out / "maps").iterdir())
    assert len(maps) == 8 and all(n.endswith(("_heatmaps.jpg", "_joints.jpg", "_tags.jpg",
                                              "_grouping.jpg")) for n in maps)
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in text.splitlines() if line.startswith(("ae ", "hae "))}
    assert set(rows) == {"ae", "hae"}
    # perfect heatmaps: most people are found whatever the tag noise does
    assert all(0.3 < values[0] <= 1.0 for values in rows.values())
