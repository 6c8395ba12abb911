"""MPII readers: mmpose JSON and stacked-hourglass JSON(.gz), 1-based -> 0-based, visibility."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from bupose.data.mpii import MpiiKeypoints, read_mpii_annotations
from bupose.errors import DataError
from tests.conftest import SHARED_DATA, require

MPII_JSON = SHARED_DATA / "samples/mpii/test_mpii.json"
MPII_IMAGES = SHARED_DATA / "samples/mpii"
MPII_GZ = SHARED_DATA / "mpii_annotations/mpii_annotations.json.gz"


def test_mmpose_json_every_sample():
    raw = json.loads(require(MPII_JSON).read_text())
    reader = MpiiKeypoints(MPII_JSON, MPII_IMAGES)
    assert len(reader) == len(raw) == 5  # one person per image in this file
    for i, rec in enumerate(raw):
        s = reader[i]
        assert s.file_name == rec["image"] and s.image_id == int(Path(rec["image"]).stem)
        assert s.keypoints.shape == (1, 16, 3) and s.ignore_mask is None
        vis = np.array(rec["joints_vis"]) > 0
        np.testing.assert_allclose(s.keypoints[0, vis, :2], np.array(rec["joints"])[vis] - 1,
                                   rtol=0, atol=1e-4)
        np.testing.assert_array_equal(s.keypoints[0, :, 2], np.where(vis, 2, 0))
        np.testing.assert_allclose(s.centers[0], np.array(rec["center"]) - 1)
        assert s.scales[0] == pytest.approx(rec["scale"])
        labelled = s.keypoints[0, vis, :2]
        np.testing.assert_allclose(s.bboxes[0, :2], labelled.min(axis=0))


def _person(x0: float, vis: int = 1) -> list[list[float]]:
    joints = [[x0 + j, 10.0 + j, float(vis)] for j in range(16)]
    joints[3] = [0.0, 0.0, 0.0]  # unlabelled
    return joints


def write_hourglass(path: Path) -> None:
    """Image a.jpg: records for persons A and B (each listing the other plus person C, who has no
    record of its own); image b.jpg (validation): one person, no others (empty MATLAB array)."""
    a, b, c = _person(100), _person(200, vis=0), _person(300)
    empty = {"_ArrayType_": "double", "_ArraySize_": [0, 0], "_ArrayData_": None}
    recs = [
        {"img_paths": "a.jpg", "isValidation": 0.0, "joint_self": a, "objpos": [101, 51],
         "scale_provided": 1.5, "joint_others": [b, c], "objpos_other": [[201, 61], [301, 71]],
         "scale_provided_other": [2.0, 3.0], "numOtherPeople": 2.0},
        {"img_paths": "a.jpg", "isValidation": 0.0, "joint_self": b, "objpos": [201, 61],
         "scale_provided": 2.0, "joint_others": [a, c], "objpos_other": [[101, 51], [301, 71]],
         "scale_provided_other": [1.5, 3.0], "numOtherPeople": 2.0},
        {"img_paths": "b.jpg", "isValidation": 1.0, "joint_self": a, "objpos": [11, 21],
         "scale_provided": 1.0, "joint_others": empty, "objpos_other": empty,
         "scale_provided_other": empty, "numOtherPeople": 0.0},
    ]
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(recs, f)


def test_hourglass_form_people_visibility_and_split(tmp_path):
    path = tmp_path / "mpii.json.gz"
    write_hourglass(path)
    images = read_mpii_annotations(path)
    assert [im.file_name for im in images] == ["a.jpg", "b.jpg"]
    a = images[0]
    assert len(a.keypoints) == 3  # A, B from records + C only known from joint_others
    np.testing.assert_allclose(a.keypoints[:, 0, 0], [99, 199, 299])  # 1-based -> 0-based
    np.testing.assert_allclose(a.centers, [[100, 50], [200, 60], [300, 70]])
    np.testing.assert_allclose(a.scales, [1.5, 2.0, 3.0])
    assert a.keypoints[0, :, 2].tolist() == [2, 2, 2, 0] + [2] * 12
    assert a.keypoints[1, :, 2].tolist() == [1, 1, 1, 0] + [1] * 12  # labelled, not visible
    assert MpiiKeypoints(path, tmp_path, split="val").images[0].file_name == "b.jpg"
    assert [im.file_name for im in MpiiKeypoints(path, tmp_path, split="train").images] == [
        "a.jpg"]


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(DataError, match=f"{bad}"):
        read_mpii_annotations(bad)
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps([{"foo": 1}]))
    with pytest.raises(DataError, match=f"{odd}: unknown MPII form"):
        read_mpii_annotations(odd)
    with pytest.raises(DataError, match="split"):
        MpiiKeypoints(require(MPII_JSON), MPII_IMAGES, split="val")


@pytest.mark.slow
def test_real_hourglass_annotations():
    """The full file (~2.5 s): every image gets numOtherPeople + 1 people; the 5 sample images
    agree with the mmpose JSON."""
    with gzip.open(require(MPII_GZ), "rt") as f:
        raw = json.load(f)
    expected = {}
    for rec in raw:
        expected[rec["img_paths"]] = int(rec["numOtherPeople"]) + 1
    reader = MpiiKeypoints(MPII_GZ, MPII_IMAGES)
    assert {im.file_name: len(im.keypoints) for im in reader.images} == expected
    assert len(MpiiKeypoints(MPII_GZ, MPII_IMAGES, split="val")) == len(
        {r["img_paths"] for r in raw if r["isValidation"]})
    mm = MpiiKeypoints(MPII_JSON, MPII_IMAGES)
    index = {im.file_name: i for i, im in enumerate(reader.images)}
    for j in range(len(mm)):
        ref = mm[j]
        s = reader[index[ref.file_name]]
        assert s.image.shape == ref.image.shape
        vis = ref.keypoints[0, :, 2] > 0
        match = [np.abs(p[vis, :2] - ref.keypoints[0, vis, :2]).max() < 1e-2 for p in s.keypoints]
        assert any(match)
