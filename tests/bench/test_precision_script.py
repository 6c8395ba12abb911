"""benchmarks/bench_precision.py: map and pose agreement of each precision with fp32."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_precision():  # noqa: ANN201
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_precision

        yield bench_precision
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_agreement_table_on_synthetic_images(bench_precision, tmp_path: Path,  # noqa: ANN001
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "precision.json"
    bench_precision.main(["--count", "3", "--variants", "fp32-plain,bf16", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["images"] == 3 and result["synthetic"]
    rows = result["variants"]
    assert list(rows) == ["fp32", "fp32-plain", "bf16"]
    assert rows["fp32"]["heatmaps"] == 0 and len(rows["fp32"]["oks"]) > 0
    assert all(oks == pytest.approx(1.0) for _, oks in rows["fp32"]["oks"])
    assert 0 < rows["fp32-plain"]["heatmaps"] < 1e-4  # folding BatchNorm: rounding only
    assert 1e-4 < rows["bf16"]["heatmaps"] < 0.1  # 8 mantissa bits: visible, bounded
    assert len(rows["bf16"]["oks"]) == len(rows["fp32"]["oks"])  # one entry per fp32 person
    assert 0 < rows["fp32"]["ap"] <= 1  # the trained default model finds the synthetic people
    printed = capsys.readouterr().out
    assert "| fp32-plain |" in printed and "of those scoring >= 0.1" in printed


def test_unknown_variant_is_refused(bench_precision) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit):
        bench_precision.main(["--variants", "fp64"])


def test_images_folder_must_hold_images(bench_precision, tmp_path: Path) -> None:  # noqa: ANN001
    with pytest.raises(SystemExit, match="no .jpg or .png images"):
        bench_precision.main(["--images", str(tmp_path)])
    with pytest.raises(SystemExit, match="not a folder"):
        bench_precision.main(["--images", str(tmp_path / "missing")])
