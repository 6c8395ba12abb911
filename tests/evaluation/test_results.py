"""Results writers and readers: round trips, atomic writes, and errors that name the entry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bupose.errors import DataError
from bupose.evaluation.results import (
    coco_entries,
    read_mpii_predictions,
    validate_coco_results,
    write_coco_results,
    write_mpii_results,
)


def test_coco_entries_flatten_keypoints_and_keep_extra_keys(rng):
    kps = rng.random((3, 17, 3)).astype(np.float32)
    entries = coco_entries(785, kps, np.array([0.9, 0.5, 0.1]), file_name="a.jpg")
    assert len(entries) == 3
    assert entries[1]["image_id"] == 785 and entries[1]["category_id"] == 1
    assert entries[1]["file_name"] == "a.jpg"
    np.testing.assert_allclose(entries[2]["keypoints"], kps[2].reshape(-1), rtol=1e-6)
    two = coco_entries(1, kps[:, :, :2], np.ones(3))
    assert two[0]["keypoints"][2::3] == [1.0] * 17  # (N, K, 2): confidence 1


def test_write_coco_results_round_trip(tmp_path, rng):
    entries = coco_entries(7, rng.random((2, 14, 3)), np.array([0.8, 0.3]), file_name="x.jpg")
    entries[0]["keypoints"] = np.asarray(entries[0]["keypoints"])  # numpy values are converted
    entries[0]["score"] = np.float32(0.8)
    path = write_coco_results(tmp_path / "out" / "results.json", entries)
    data = json.loads(path.read_text())
    assert [set(d) for d in data] == [{"image_id", "category_id", "keypoints", "score",
                                       "file_name"}] * 2
    assert len(data[0]["keypoints"]) == 42
    assert data[0]["score"] == pytest.approx(0.8)
    assert sorted(p.name for p in path.parent.iterdir()) == ["results.json"]  # no temp files left


def test_write_coco_results_rejects_bad_entries_without_touching_the_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("[]")
    good = {"image_id": 1, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}
    with pytest.raises(DataError, match="result entry 1 lacks score"):
        write_coco_results(path, [good, {k: v for k, v in good.items() if k != "score"}])
    with pytest.raises(DataError, match="result entry 1: keypoints has 48 values"):
        write_coco_results(path, [good, {**good, "keypoints": [0.0] * 48}])
    with pytest.raises(DataError, match="result entry 0: keypoints or score have a NaN"):
        write_coco_results(path, [{**good, "keypoints": [float("nan")] * 51}])
    assert path.read_text() == "[]"


def test_validate_returns_clean_copies():
    data = [{"image_id": 3, "category_id": 1, "keypoints": [1, 2, 0] * 2, "score": 1,
             "extra": "kept out"}]
    clean = validate_coco_results(data, "r.json", 2, {3}, {1})
    assert clean == [{"image_id": 3, "category_id": 1, "keypoints": [1.0, 2.0, 0.0] * 2,
                      "score": 1.0}]
    assert isinstance(clean[0]["keypoints"][0], float)
    with pytest.raises(DataError, match="r.json: result entry 0: image_id must be an integer"):
        validate_coco_results([{**data[0], "image_id": "3"}], "r.json", 2, {3}, {1})
    with pytest.raises(DataError, match="score holds True"):
        validate_coco_results([{**data[0], "score": True}], "r.json", 2, {3}, {1})


def test_validate_keeps_bbox_when_the_first_entry_has_one():
    entry = {"image_id": 3, "category_id": 1, "keypoints": [1, 2, 1], "score": 0.5,
             "bbox": [0, 0, 4, 5]}
    assert validate_coco_results([entry], "r", 1, {3}, {1})[0]["bbox"] == [0.0, 0.0, 4.0, 5.0]
    with pytest.raises(DataError, match="result entry 1: bbox"):
        validate_coco_results([entry, {**entry, "bbox": [1, 2]}], "r", 1, {3}, {1})


def test_mpii_forms(tmp_path, rng):
    pred = rng.random((4, 16, 3)) * 100
    path = write_mpii_results(tmp_path / "mpii.json", pred)
    np.testing.assert_allclose(read_mpii_predictions(path), pred[:, :, :2])
    nested = tmp_path / "nested.json"
    nested.write_text(json.dumps(pred[:, :, :2].tolist()))
    np.testing.assert_allclose(read_mpii_predictions(nested), pred[:, :, :2])
    np.testing.assert_allclose(read_mpii_predictions(pred), pred[:, :, :2])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"keypoints": []}', "expected a JSON list of persons"),
        ('[{"keypoints": [1, 2, 3]}]', "person 0: keypoints has 3 values"),
        ('[{"points": []}]', "person 0 lacks 'keypoints'"),
        ("[[" + ",".join(["[1, 2]"] * 15 + ["[1, NaN]"]) + "]]", "person 0: keypoints has a NaN"),
        ("[1, 2", "malformed results file"),
    ],
)
def test_mpii_bad_files_name_the_file_and_person(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_mpii_predictions(path)
    assert str(path) in str(info.value)


def test_mpii_bad_npy(tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((3, 17, 2)))
    with pytest.raises(DataError, match=r"bad\.npy: predictions must have shape \(N, 16, 2\|3\)"):
        read_mpii_predictions(path)
    array = np.zeros((3, 16, 2))
    array[2, 5, 0] = np.inf
    np.save(path, array)
    with pytest.raises(DataError, match="person 2: keypoints have a NaN or inf"):
        read_mpii_predictions(path)
