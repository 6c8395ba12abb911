"""``bupose demo``: data, counts, contact sheets and AE/HAE grouping of oracle maps."""

from __future__ import annotations

import argparse

from bupose.cli import demo_cmd
from bupose.utils.io import read_image, read_json


def test_demo_writes_data_grids_and_scores_both_decoders(tmp_path, capsys):
    args = argparse.Namespace(out=str(tmp_path), images=4, seed=0)
    assert demo_cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "[4/4]" in out and "images:              4" in out
    for name in ("gt_grid.jpg", "ae_grid.jpg"):
        grid = read_image(tmp_path / name)
        assert grid.shape[0] > 256 and grid.shape[1] > 256
    data = read_json(tmp_path / "data" / "annotations.json")
    assert len(data["images"]) == 4
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]]
            for line in out.splitlines() if line.startswith(("ae ", "hae "))}
    assert set(rows) == {"ae", "hae"}
    # perfect heatmaps: most people are found whatever the tag noise does
    assert all(0.3 < values[0] <= 1.0 for values in rows.values())
