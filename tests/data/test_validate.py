"""``bupose.data.validate.check_keypoint_annotations``: each problem is a DataError naming the
file and the entry; real annotation files of every supported set pass."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bupose.data.validate import check_keypoint_annotations
from bupose.errors import DataError
from tests.conftest import SHARED_DATA, require


def _gt() -> dict[str, Any]:
    kpts = [10.0, 20.0, 2] * 3
    ann = {"id": 5, "image_id": 1, "category_id": 1, "keypoints": kpts, "bbox": [0, 0, 9, 9],
           "iscrowd": 0}
    return {"images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}],
            "annotations": [ann, dict(ann, id=6, image_id=2)]}


def _broken(change) -> dict[str, Any]:
    gt = copy.deepcopy(_gt())
    change(gt)
    return gt


CASES = {
    "no 'images' list": lambda g: g.pop("images"),
    "'annotations' must be a list": lambda g: g.update(annotations={}),
    "needs 'id' and 'file_name'": lambda g: g["images"][0].pop("file_name"),
    "image id 1 appears twice": lambda g: g["images"].append({"id": 1, "file_name": "c.jpg"}),
    "annotation id 5 appears twice": lambda g: g["annotations"][1].update(id=5),
    "annotation id 5 has no 'keypoints'": lambda g: g["annotations"][0].pop("keypoints"),
    "annotation id 5 has 8 keypoint values": lambda g: g["annotations"][0]["keypoints"].pop(),
    "annotation id 6 has 6 keypoint values, expected 9": lambda g: g["annotations"][1].update(
        keypoints=[1.0, 2.0, 2, 3.0, 4.0, 2]),
    r"keypoints\[0\] is nan": lambda g: g["annotations"][0]["keypoints"].__setitem__(
        0, float("nan")),
    r"bbox\[2\] is inf": lambda g: g["annotations"][0]["bbox"].__setitem__(2, float("inf")),
    r"keypoints\[1\] is '2', not a number": lambda g: g["annotations"][0]["keypoints"]
    .__setitem__(1, "2"),
    "image_id 9, which is not in 'images'": lambda g: g["annotations"][0].update(image_id=9),
    "crowd region": lambda g: g["annotations"].extend([
        dict(g["annotations"][0], id=7, segmentation=[[0, 0, 5, 0, 5, 5]]),
        dict(g["annotations"][0], id=8, iscrowd=1)]),
}


@pytest.mark.parametrize("message", list(CASES))
def test_each_problem_names_the_file_and_entry(message: str) -> None:
    with pytest.raises(DataError, match=f"^ann.json: .*{message}"):
        check_keypoint_annotations(_broken(CASES[message]), "ann.json")


def test_valid_file_and_k() -> None:
    images, anns, k = check_keypoint_annotations(_gt(), "ann.json")
    assert (len(images), len(anns), k) == (2, 2, 3)
    with pytest.raises(DataError, match="expected 51"):
        check_keypoint_annotations(_gt(), "ann.json", num_keypoints=17)
    negative = _broken(lambda g: g["annotations"][0]["keypoints"].__setitem__(0, -4.0))
    assert check_keypoint_annotations(negative, "ann.json")[2] == 3


def test_crowd_without_segmentation_allowed_when_the_file_has_none() -> None:
    """CrowdPose style: crowd boxes, no segmentation anywhere (no ignore mask)."""
    gt = _broken(lambda g: g["annotations"][0].update(iscrowd=1))
    assert check_keypoint_annotations(gt, "ann.json")[2] == 3


@pytest.mark.parametrize("name", [
    "coco_mini/annotations/person_keypoints_val2017.json",
    "crowdpose_val_annotations/crowdpose_val.json",
    "samples/aic/test_aic.json", "samples/mhp/test_mhp.json", "samples/coco/test_coco.json",
    "samples/ochuman/test_ochuman.json", "samples/crowdpose/test_crowdpose.json"])
def test_real_annotation_files_pass(name: str) -> None:
    path = require(SHARED_DATA / name)
    images, anns, k = check_keypoint_annotations(json.loads(path.read_text()), path)
    assert images and anns and k in (14, 16, 17)
