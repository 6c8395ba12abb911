"""The decoders without torch: importing them does not import it, the numpy pooling and top-k
equal torch's (top-k up to the order of bit-identical values), and a decode in an interpreter
without torch equals the same decode with torch loaded."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bupose.decoders import GroupingInputs, GroupingParams, decode_grouping, grouping_decoder
from bupose.decoders.peaks import top_k_rows, top_k_rows_numpy
from bupose.decoders.pooling import pool_cols, pool_grid, pool_rows
from bupose.structures.spec import get_spec
from tests.conftest import ROOT
from tests.decoders.helpers import load_fixture, synthetic_maps

COCO_ORDER = get_spec("coco17").joint_order


def _run(script: str, *args: str) -> str:
    """Run ``script`` in a fresh interpreter from the checkout; its stdout (fails on error)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_importing_the_decoders_does_not_import_torch():
    out = _run("""
        import sys
        import bupose.decoders, bupose.inference.settings
        from bupose.decoders.pooling import one_thread
        with one_thread():
            pass
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """)
    assert out.strip() == "[]"


def _tied_maps(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values on a coarse grid (many exact ties, signed), float32."""
    return np.round(rng.normal(0, 1, shape), 1).astype(np.float32)


@pytest.mark.parametrize("rows, cols, side, channels", [(3, 5, 8, 1), (7, 3, 5, 2), (1, 1, 3, 1)])
@pytest.mark.parametrize("largest", [True, False])
def test_numpy_pooling_equals_torch(rng, rows, cols, side, channels, largest):
    x = _tied_maps(rng, (3, rows * side, cols * side * channels))
    x[0, 0, 0] = np.nan  # NaN propagates in both
    rows_np = pool_rows(x, rows, largest)
    rows_t = pool_rows(torch.from_numpy(x), rows, largest).numpy()
    np.testing.assert_array_equal(rows_np, rows_t)
    assert np.isnan(rows_np[0, 0, 0]) and not np.isnan(rows_np[1:]).any()
    cols_np = pool_cols(rows_np, cols, channels, largest)
    np.testing.assert_array_equal(
        cols_np, pool_cols(torch.from_numpy(rows_t), cols, channels, largest).numpy())
    ref = x.reshape(3, rows, side, cols, side, channels)
    ref = (np.max if largest else np.min)(ref, axis=(2, 4))
    np.testing.assert_array_equal(cols_np, ref)
    # with torch loaded pool_grid runs in torch: the same values
    np.testing.assert_array_equal(pool_grid(x, rows, cols, channels, largest), cols_np)


def test_numpy_pool_rows_writes_out(rng):
    x = _tied_maps(rng, (2, 12, 7))
    out = np.empty((2, 4, 7), np.float32)
    assert pool_rows(x, 4, largest=False, out=out) is out
    np.testing.assert_array_equal(out, x.reshape(2, 4, 3, 7).min(axis=2))


@pytest.mark.parametrize("n, k", [(1, 1), (97, 5), (97, 97), (4096, 30)])
def test_numpy_top_k_equals_torch_without_ties(rng, n, k):
    x = (rng.permutation(3 * n) - n).reshape(3, n).astype(np.float32)  # distinct values
    vals, ind = top_k_rows_numpy(x, k)
    ref_vals, ref_ind = torch.from_numpy(x).topk(k, dim=1)
    np.testing.assert_array_equal(vals, ref_vals.numpy())
    np.testing.assert_array_equal(ind, ref_ind.numpy())
    assert vals.dtype == np.float32 and ind.dtype == np.int64
    np.testing.assert_array_equal(top_k_rows(x, k)[1], ind)  # torch loaded: torch.topk


def _check_tie_order(x: np.ndarray, vals: np.ndarray, ind: np.ndarray) -> None:
    """Descending values, equal values by ascending index, and at the cut the lowest indices."""
    np.testing.assert_array_equal(np.take_along_axis(x, ind, axis=1), vals)
    for row, i in zip(x, ind):
        np.testing.assert_array_equal(i, np.lexsort((np.arange(len(row)), -row))[: len(i)])


@pytest.mark.parametrize("k", [10, 40, 200])
def test_numpy_top_k_with_ties_same_values_index_order(rng, k):
    x = _tied_maps(rng, (4, 200))
    vals, ind = top_k_rows_numpy(x, k)
    ref_vals, ref_ind = torch.from_numpy(x).topk(k, dim=1)
    np.testing.assert_array_equal(vals, ref_vals.numpy())  # same values in the same order
    assert (vals[:, 1:] == vals[:, :-1]).any(axis=1).all()  # every row has ties
    for a, b, v in zip(ind, ref_ind.numpy(), vals):
        above_cut = v > v[-1]  # the cut may take other tied indices, never other values
        assert set(a[above_cut]) == set(b[above_cut])
    _check_tie_order(x, vals, ind)


def test_numpy_top_k_on_a_fixture_with_tied_peaks():
    from bupose.decoders.peaks import as_maps, nms

    data = load_fixture("000000197388_ambiguous")
    heat, _ = as_maps(data["det"], data["tag"])
    suppressed = nms(heat, 5).reshape(len(heat), -1)
    vals, ind = top_k_rows_numpy(suppressed, 30)
    ref_vals, ref_ind = top_k_rows(suppressed, 30)  # torch loaded: torch.topk
    np.testing.assert_array_equal(vals, ref_vals)
    keep = vals > 0.1  # the peaks that matter (below them: ties at 0 everywhere)
    assert ((vals[:, 1:] == vals[:, :-1]) & keep[:, 1:]).any()  # tied peaks above 0.1
    for a, b, m in zip(ind, ref_ind, keep):
        assert sorted(a[m]) == sorted(b[m])
    _check_tie_order(suppressed, vals, ind)


_DECODE = """
    import sys
    import numpy as np
    from bupose.decoders import GroupingInputs, GroupingParams, decode_grouping, grouping_decoder
    from bupose.structures.spec import get_spec

    order = get_spec("coco17").joint_order
    out = {}
    with np.load(sys.argv[1]) as data:
        for name in sorted({key.rsplit("/", 1)[0] for key in data.files}):
            for decoder in ("ae", "hae"):
                inputs = GroupingInputs(data[name + "/heat"], data[name + "/tags"], order)
                grouped, scores = decode_grouping(grouping_decoder(decoder), inputs,
                                                  GroupingParams())
                out[f"{name}/{decoder}/grouped"], out[f"{name}/{decoder}/scores"] = grouped, scores
    assert "torch" not in sys.modules
    np.savez(sys.argv[2], **out)
"""


def _decode_inputs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Synthetic COCO-sized maps without exact ties, plus two official fixtures if present."""
    rng = np.random.default_rng(3)
    heat, tags = synthetic_maps(rng, k=17, h=64, w=80, dim=2, people=5)
    heat[:, 32, 27] = 0.49  # break the plateau's exact tie (its order is torch's alone)
    cases = {"synthetic": (heat, tags)}
    for name in ("000000000785", "crowd40"):
        try:
            data = load_fixture(name)
        except pytest.skip.Exception:
            continue
        cases[name] = (data["det"], data["tag"])
    return cases


def test_decode_without_torch_equals_decode_with_torch(tmp_path: Path):
    cases = _decode_inputs()
    arrays = {f"{n}/{part}": a for n, (h, t) in cases.items()
              for part, a in (("heat", h), ("tags", t))}
    np.savez(tmp_path / "inputs.npz", **arrays)
    _run(_DECODE, str(tmp_path / "inputs.npz"), str(tmp_path / "outputs.npz"))
    assert "torch" in sys.modules  # this side decodes with torch's pooling and top-k
    with np.load(tmp_path / "outputs.npz") as without_torch:
        for name, (heat, tags) in cases.items():
            for decoder in ("ae", "hae"):
                inputs = GroupingInputs(heat, tags, COCO_ORDER)
                grouped, scores = decode_grouping(grouping_decoder(decoder), inputs,
                                                  GroupingParams())
                assert len(grouped) > 0, name
                key = f"{name}/{decoder}"
                assert without_torch[key + "/grouped"].dtype == grouped.dtype
                np.testing.assert_array_equal(without_torch[key + "/grouped"], grouped)
                np.testing.assert_array_equal(without_torch[key + "/scores"], scores)
