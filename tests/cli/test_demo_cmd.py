"""``bupose demo``: data, counts, contact sheets, the network end to end (model -> maps ->
grouping -> results, AP, pictures) and AE/HAE grouping of oracle maps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bupose.cli import main
from bupose.utils.io import read_image, read_json


def _random_tiny(path: Path) -> Path:
    import torch

    from bupose.models import create_model, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(path, create_model("higherhrnet_tiny"))


def test_demo_runs_the_network_and_scores_both_decoders(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    ckpt = _random_tiny(tmp_path / "tiny.safetensors")
    code = main(["demo", "--out", str(out), "--images", "4", "--network-images", "3",
                 "--checkpoint", str(ckpt)])
    assert code == 0
    text = capsys.readouterr().out
    assert "[5/5]" in text and "images:              4" in text
    assert "COCO keypoint AP" in text and "3 images" in text
    for name in ("gt_grid.jpg", "ae_grid.jpg", "network_grid.jpg"):
        grid = read_image(out / name)
        assert grid.shape[0] > 256 and grid.shape[1] > 256
    assert len(read_json(out / "data" / "annotations.json")["images"]) == 4
    assert isinstance(json.loads((out / "network" / "results.json").read_text()), list)
    assert set(json.loads((out / "network" / "ap.json").read_text())) >= {"AP", "AP50"}
    maps = sorted(p.name for p in (out / "maps").iterdir())
    assert len(maps) == 8 and all(n.endswith(("_heatmaps.jpg", "_joints.jpg", "_tags.jpg",
                                              "_grouping.jpg")) for n in maps)
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in text.splitlines() if line.startswith(("ae ", "hae "))}
    assert set(rows) == {"ae", "hae"}
    # perfect heatmaps: most people are found whatever the tag noise does
    assert all(0.3 < values[0] <= 1.0 for values in rows.values())
