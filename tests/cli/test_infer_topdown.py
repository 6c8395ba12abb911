"""``bupose infer`` with the tiny official CAL checkpoint (fixtures ``e2e/``: results per box,
keypoints 1e-2 px, scores 1e-5) and ``bupose decode --decoder cal`` (fixtures ``decoding/``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bupose.cli import main
from tests.conftest import SHARED, SHARED_DATA, require

CAL = SHARED / "fixtures" / "official_cal"
COCO_DIR = SHARED_DATA / "samples" / "coco"


def _model_args() -> list[str]:
    return ["--checkpoint", str(require(CAL / "tiny" / "tiny_model.pth")),
            "--config", str(require(CAL / "tiny" / "tiny_config.yaml"))]


def _images() -> list[str]:
    gt = json.loads(require(COCO_DIR / "test_coco.json").read_text())
    return [str(COCO_DIR / im["file_name"]) for im in gt["images"]]


def _compare(path: Path, fixture: str) -> None:
    results = json.loads(path.read_text())
    expected = json.loads(require(CAL / "e2e" / fixture).read_text())["results"]
    assert [r["image_id"] for r in results] == [r["image_id"] for r in expected]
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got["keypoints"], want["keypoints"], rtol=0, atol=1e-2)
        assert got["score"] == pytest.approx(want["score"], abs=1e-5)
        np.testing.assert_allclose(got["center"], want["center"], rtol=1e-6)


@pytest.mark.parametrize("flip, fixture", [("--flip", "e2e_gt_flip.json"),
                                           ("--no-flip", "e2e_gt_noflip.json")])
def test_infer_gt_boxes(tmp_path: Path, capsys: pytest.CaptureFixture, flip: str,
                        fixture: str) -> None:
    out = tmp_path / "results.json"
    code = main(["infer", *_images(), *_model_args(), "--boxes", "gt", "--annotations",
                 str(COCO_DIR / "test_coco.json"), flip, "--json", str(out)])
    assert code == 0
    _compare(out, fixture)
    assert "AP" in capsys.readouterr().out


def test_infer_detections_then_decode_saved_maps(tmp_path: Path) -> None:
    out, maps = tmp_path / "results.json", tmp_path / "maps"
    dets = require(COCO_DIR / "test_coco_det_AP_H_56.json")
    code = main(["infer", str(COCO_DIR), *_model_args(), "--boxes", str(dets),
                 "--json", str(out), "--save-maps", str(maps), "--draw", str(tmp_path / "draw")])
    assert code == 0
    _compare(out, "e2e_det_flip.json")
    assert len(list((tmp_path / "draw").glob("*.jpg"))) == 4
    with np.load(maps / "000000000785.npz") as z:
        assert z["heatmaps"].shape[1:] == (17, 16, 12) and z["offsets"].shape[1:] == (34, 16, 12)
        assert z["heatmaps_flip"].shape == z["heatmaps"].shape
        assert set(z["image_id"].tolist()) == {785}
    # re-decoding the saved maps (files in detection-file image order) gives the same results
    order = [785, 197388, 40083, 196141]
    decoded = tmp_path / "decoded.json"
    files = [str(maps / f"{i:012d}.npz") for i in order]
    assert main(["decode", *files, "--decoder", "cal", "--json", str(decoded)]) == 0
    again = json.loads(decoded.read_text())
    first = json.loads(out.read_text())
    assert [r["keypoints"] for r in again] == [r["keypoints"] for r in first]
    assert [r["score"] for r in again] == [r["score"] for r in first]


def test_box_threshold_drops_low_scoring_detections(tmp_path: Path) -> None:
    out, maps = tmp_path / "results.json", tmp_path / "maps"
    dets = require(COCO_DIR / "test_coco_det_AP_H_56.json")
    image = str(COCO_DIR / "000000000785.jpg")
    assert main(["infer", image, *_model_args(), "--boxes", str(dets), "--box-threshold", "0.5",
                 "--json", str(out), "--save-maps", str(maps)]) == 0
    kept = [d for d in json.loads(dets.read_text()) if d["image_id"] == 785 and d["score"] >= 0.5]
    with np.load(maps / "000000000785.npz") as z:
        np.testing.assert_allclose(z["box_score"], [d["score"] for d in kept])


@pytest.mark.parametrize("name", ["gt", "det"])
def test_decode_official_maps(tmp_path: Path, name: str) -> None:
    with np.load(require(CAL / "decoding" / f"decode_{name}.npz")) as z:
        arrays = {"heatmaps": z["hm_raw"], "offsets": z["off_raw"],
                  "heatmaps_flip": z["hm_flip_raw"], "offsets_flip": z["off_flip_raw"],
                  "center": z["center"], "scale": z["scale"], "box_score": z["box_score"],
                  "image_id": z["image_id"]}
    np.savez(tmp_path / "maps.npz", **arrays)
    out = tmp_path / "results.json"
    assert main(["decode", str(tmp_path / "maps.npz"), "--decoder", "cal", "--json",
                 str(out)]) == 0
    expected = json.loads((CAL / "decoding" / f"decode_{name}.json").read_text())["results"]
    results = json.loads(out.read_text())
    assert [r["image_id"] for r in results] == [r["image_id"] for r in expected]
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got["keypoints"], want["keypoints"], rtol=0, atol=1e-3)
        assert got["score"] == pytest.approx(want["score"], abs=1e-6)


def test_topdown_model_without_boxes_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["infer", _images()[0], *_model_args()]) == 2
    assert "top-down" in capsys.readouterr().err


def test_gt_boxes_need_annotations(capsys: pytest.CaptureFixture) -> None:
    assert main(["infer", _images()[0], *_model_args(), "--boxes", "gt"]) == 2
    assert "--annotations" in capsys.readouterr().err


def test_decode_rejects_maps_without_offsets(tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    np.savez(tmp_path / "m.npz", heatmaps=np.zeros((1, 17, 16, 12), np.float32),
             center=np.zeros((1, 2)), scale=np.ones((1, 2)))
    assert main(["decode", str(tmp_path / "m.npz"), "--decoder", "cal"]) == 2
    assert "offsets" in capsys.readouterr().err



def test_infer_mpii_gt_boxes_and_pckh(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """MPII annotations: one pose per annotated person (no NMS) and PCKh against a .mat holding
    those persons' rows of the official validation ground truth."""
    from scipy.io import loadmat, savemat

    mpii = SHARED_DATA / "samples" / "mpii"
    records = json.loads(require(mpii / "test_mpii.json").read_text())
    full = loadmat(str(require(SHARED_DATA / "mpii_annotations" / "detections_our_format.mat")))
    rows = []
    for record in records:  # the .mat row with the same labelled joints (1-based px)
        joints, labelled = np.asarray(record["joints"]), np.asarray(record["joints_vis"]) > 0
        error = np.abs(full["pos_gt_src"] - joints[:, :, None]).max(axis=1)  # (16, N)
        rows.append(int(np.argmin(np.where(labelled[:, None], error, 0).max(axis=0))))
    mat = tmp_path / "gt.mat"
    savemat(str(mat), {"pos_gt_src": full["pos_gt_src"][:, :, rows],
                       "jnt_missing": full["jnt_missing"][:, rows],
                       "headboxes_src": full["headboxes_src"][:, :, rows]})
    out = tmp_path / "mpii.json"
    code = main(["infer", str(mpii), "--model", "cal_hrnet_small_64x48", "--spec", "mpii16",
                 "--boxes", "gt", "--annotations", str(mpii / "test_mpii.json"),
                 "--json", str(out), "--pckh-gt", str(mat)])
    assert code == 0
    predictions = json.loads(out.read_text())
    assert len(predictions) == len(records) and len(predictions[0]["keypoints"]) == 48
    assert "PCKh@0.5" in capsys.readouterr().out


def test_boxes_with_a_bottom_up_model_is_an_error(capsys: pytest.CaptureFixture) -> None:
    assert main(["infer", _images()[0], "--model", "higherhrnet_tiny", "--boxes", "gt"]) == 2
    assert "top-down" in capsys.readouterr().err


def test_decode_rejects_mixing_flip_and_plain_maps(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    base = {"heatmaps": np.zeros((1, 17, 16, 12), np.float32),
            "offsets": np.zeros((1, 34, 16, 12), np.float32),
            "center": np.zeros((1, 2)), "scale": np.ones((1, 2))}
    np.savez(tmp_path / "1.npz", **base)
    np.savez(tmp_path / "2.npz", **base, heatmaps_flip=base["heatmaps"],
             offsets_flip=base["offsets"])
    assert main(["decode", str(tmp_path / "1.npz"), str(tmp_path / "2.npz"),
                 "--decoder", "cal"]) == 2
    assert "flip" in capsys.readouterr().err
