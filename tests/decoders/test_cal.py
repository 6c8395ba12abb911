"""CAL decoding against the official ``validate()`` recordings (fixtures ``decoding/``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bupose.decoders import DECODERS
from bupose.decoders.cal import (
    CalParams,
    argmax_offset,
    back_project,
    decode_cal,
    flip_back,
    flip_back_offsets,
    fuse_flip,
    oks_nms,
    rescore,
)
from bupose.structures.spec import get_spec
from tests.conftest import SHARED, require

DECODING = SHARED / "fixtures" / "official_cal" / "decoding"
COCO = get_spec("coco17")


def _case(name: str) -> tuple[dict[str, np.ndarray], dict]:
    npz = require(DECODING / f"decode_{name}.npz")
    with np.load(npz) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(require(DECODING / f"decode_{name}.json").read_text())


def _decode(z: dict[str, np.ndarray], settings: dict) -> object:
    params = CalParams(settings["locref_stdev"], settings["in_vis_thre"], settings["oks_thre"])
    return decode_cal(z["hm_raw"], z["off_raw"], z["center"], z["scale"], z["box_score"],
                      z["image_id"], z["hm_flip_raw"], z["off_flip_raw"], COCO, params)


def test_registered() -> None:
    assert DECODERS.get("cal") is decode_cal


def test_flip_fusion_equals_official_gt() -> None:
    z, _ = _case("gt")
    hm, off = fuse_flip(z["hm_raw"], z["off_raw"], z["hm_flip_raw"], z["off_flip_raw"],
                        COCO.flip_index)
    np.testing.assert_array_equal(hm, z["hm_fused"])
    np.testing.assert_array_equal(off, z["off_fused"])


def test_flip_back_offsets_negates_x_only() -> None:
    off = np.zeros((1, 34, 2, 3), np.float32)
    off[0, 2 * 1, 0, 0] = 1.0  # x of joint 1 (left eye) at column 0
    off[0, 2 * 1 + 1, 0, 0] = 2.0  # y of joint 1
    back = flip_back_offsets(off, COCO.flip_index)
    assert back[0, 2 * 2, 0, 2] == -1.0 and back[0, 2 * 2 + 1, 0, 2] == 2.0
    assert np.count_nonzero(back) == 2
    hm = np.arange(2 * 3, dtype=np.float32).reshape(1, 1, 2, 3)
    np.testing.assert_array_equal(flip_back(hm, [0])[0, 0], hm[0, 0, :, ::-1])


@pytest.mark.parametrize("name", ["gt", "det"])
def test_decoding_equals_official(name: str) -> None:
    z, ref = _case(name)
    settings = ref["summary"]
    decoded = _decode(z, settings)
    np.testing.assert_array_equal(decoded.coords_hm, z["coords_hm"])
    np.testing.assert_array_equal(decoded.maxvals, z["maxvals"])
    np.testing.assert_allclose(decoded.keypoints[..., :2], z["preds_img"], rtol=0, atol=1e-3)
    results, expected = decoded.results(), ref["results"]
    assert [r["image_id"] for r in results] == [r["image_id"] for r in expected]
    assert len(results) == settings["results"]
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got["keypoints"], want["keypoints"], rtol=0, atol=1e-3)
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)
        np.testing.assert_allclose(got["center"], want["center"], rtol=1e-6)
        np.testing.assert_allclose(got["scale"], want["scale"], rtol=1e-6)
    nms = settings["oks_nms"]
    assert [img for img, _, _ in decoded.nms] == [entry["image"] for entry in nms]
    for (_, members, keep), entry in zip(decoded.nms, nms):
        assert keep == entry["keep"]
        np.testing.assert_allclose(decoded.scores[members], entry["scores"], rtol=0, atol=1e-6)


def test_ties_take_the_first_cell_in_row_major_order() -> None:
    z, ref = _case("det")
    assert ref["summary"]["maps_with_tied_max_fused"] > 0
    hm = np.zeros((1, 1, 4, 3), np.float32)
    hm[0, 0, 2, 0] = hm[0, 0, 1, 2] = 0.5  # (x=2, y=1) comes first in row-major order
    coords, vals = argmax_offset(hm, np.zeros((1, 2, 4, 3), np.float32), 1.5)
    np.testing.assert_array_equal(coords[0, 0], [2.0, 1.0])
    assert vals[0, 0, 0] == 0.5


def test_non_positive_map_reads_cell_zero() -> None:
    hm = np.full((1, 1, 4, 3), -0.25, np.float32)
    hm[0, 0, 3, 2] = -0.1
    off = np.zeros((1, 2, 4, 3), np.float32)
    off[0, :, 0, 0] = (0.5, -1.0)  # read at (0, 0), not at the (negative) maximum
    coords, vals = argmax_offset(hm, off, 2.0)
    np.testing.assert_array_equal(coords[0, 0], [1.0, -2.0])
    assert vals[0, 0, 0] == np.float32(-0.1)


def test_back_projection_maps_grid_ends_to_box_edges() -> None:
    center, scale = np.array([[100.0, 50.0]]), np.array([[0.6, 0.8]])
    coords = np.array([[[0.0, 0.0], [11.0, 15.0]]], np.float32)
    out = back_project(coords, center, scale, (12, 16))
    np.testing.assert_allclose(out[0], [[40.0, -30.0], [160.0, 130.0]], atol=1e-4)


def test_rescore_mean_above_threshold_times_box_score() -> None:
    maxvals = np.array([[0.5, 0.1, 0.3], [0.1, 0.2, 0.05]], np.float32)
    scores = rescore(maxvals, np.array([0.5, 1.0]), 0.2)
    assert scores[0] == pytest.approx(0.5 * 0.4, abs=1e-7)
    assert scores[1] == 0.0  # 0.2 is not above 0.2: no joint counts


def test_oks_nms_drops_duplicates_and_keeps_score_order() -> None:
    base = np.random.default_rng(0).uniform(0, 100, (17, 3)).astype(np.float32)
    poses = np.stack([base, base + 0.5, base + 80.0])
    keep = oks_nms(poses, np.array([0.2, 0.9, 0.5]), np.full(3, 1e4), 0.9,
                   np.asarray(COCO.sigmas))
    assert keep == [1, 2]
