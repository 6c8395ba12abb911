"""COCO-format reader on every real sample set: counts follow the official filtering rules,
keypoints are the raw ones, masks are the crowd / no-keypoint regions (or None)."""

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from bupose.data.coco import CocoKeypoints
from bupose.errors import DataError
from bupose.structures.spec import KeypointSpec, get_spec
from tests.conftest import SHARED_DATA, require

SAMPLES = SHARED_DATA / "samples"

# (annotation file, image folder, spec) of every COCO-format set beside the checkout.
SETS = {
    "coco": (SAMPLES / "coco/test_coco.json", SAMPLES / "coco", "coco17"),
    "crowdpose": (SAMPLES / "crowdpose/test_crowdpose.json", SAMPLES / "crowdpose", "crowdpose14"),
    "ochuman": (SAMPLES / "ochuman/test_ochuman.json", SAMPLES / "ochuman", "ochuman17"),
    "aic": (SAMPLES / "aic/test_aic.json", SAMPLES / "aic", "aic14"),
    "mhp": (SAMPLES / "mhp/test_mhp.json", SAMPLES / "mhp", "mpii16"),  # MPII joint order
    "coco_tiny_train": (SHARED_DATA / "coco_tiny/annotations/person_keypoints_train2017.json",
                        SHARED_DATA / "coco_tiny/train2017", "coco17"),
    "coco_tiny_val": (SHARED_DATA / "coco_tiny/annotations/person_keypoints_val2017.json",
                      SHARED_DATA / "coco_tiny/val2017", "coco17"),
    "coco_mini_train": (SHARED_DATA / "coco_mini/annotations/person_keypoints_train2017.json",
                        SHARED_DATA / "coco_mini/train2017", "coco17"),
    "coco_mini_val": (SHARED_DATA / "coco_mini/annotations/person_keypoints_val2017.json",
                      SHARED_DATA / "coco_mini/val2017", "coco17"),
}


def raw_expectations(ann_file: Path, train_filter: bool):
    """From the raw JSON: listed image ids, and per image the annotations kept for targets
    (iscrowd == 0 or num_keypoints > 0), by the rules of HigherHRNet's CocoKeypoints."""
    data = json.loads(ann_file.read_text())
    anns = defaultdict(list)
    for a in data["annotations"]:
        anns[a["image_id"]].append(a)
    ids = [im["id"] for im in data["images"] if not train_filter or anns[im["id"]]]
    kept = {i: [a for a in anns[i] if a.get("iscrowd", 0) == 0 or a["num_keypoints"] > 0]
            for i in ids}
    return ids, kept, data


@pytest.mark.parametrize("train_filter", [False, True])
@pytest.mark.parametrize("name", list(SETS))
def test_reader_loads_every_image_with_official_counts(name, train_filter):
    ann_file, image_dir, spec_name = SETS[name]
    require(ann_file)
    spec = get_spec(spec_name)
    reader = CocoKeypoints(ann_file, image_dir, spec, train_filter=train_filter)
    ids, kept, data = raw_expectations(ann_file, train_filter)
    assert reader.image_ids == ids
    has_seg = any(a.get("segmentation") for a in data["annotations"])
    for i, image_id in enumerate(ids):
        sample = reader[i]
        assert sample.image_id == image_id
        assert sample.image.dtype == np.uint8 and sample.image.shape[2] == 3
        expected = kept[image_id]
        assert sample.keypoints.shape == (len(expected), spec.num_keypoints, 3)
        for p, a in enumerate(expected):
            np.testing.assert_array_equal(sample.keypoints[p].ravel(), np.float32(a["keypoints"]))
        np.testing.assert_array_equal(sample.affine, np.eye(2, 3))
        if has_seg:
            assert sample.ignore_mask.shape == sample.image.shape[:2]
        else:
            assert sample.ignore_mask is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")
def test_crowd_regions_and_people_without_keypoints_are_masked():
    ann_file, image_dir, _ = SETS["coco_tiny_val"]
    require(ann_file)
    reader = CocoKeypoints(ann_file, image_dir, get_spec("coco17"))
    coco = COCO(str(ann_file))
    seen_crowd = 0
    for i, image_id in enumerate(reader.image_ids):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        masked = [a for a in anns if a["iscrowd"] or a["num_keypoints"] == 0]
        if not masked:
            continue
        mask = reader[i].ignore_mask
        expected = np.zeros_like(mask)
        for a in masked:  # independent path: pycocotools' own annToMask
            expected |= coco.annToMask(a).astype(bool)
        np.testing.assert_array_equal(mask, expected)
        crowd = [a for a in anns if a["iscrowd"]]
        for a in crowd:
            assert mask[coco.annToMask(a).astype(bool)].all()
        seen_crowd += len(crowd)
    assert seen_crowd > 0  # the check above really covered RLE crowd regions


def test_crowdpose_has_no_mask_and_crowd_index():
    ann_file, image_dir, _ = SETS["crowdpose"]
    require(ann_file)
    reader = CocoKeypoints(ann_file, image_dir, get_spec("crowdpose14"))
    raw = {im["id"]: im["crowdIndex"] for im in json.loads(ann_file.read_text())["images"]}
    for i, image_id in enumerate(reader.image_ids):
        assert reader[i].ignore_mask is None
        assert reader.crowd_index(image_id) == pytest.approx(raw[image_id])


def test_missing_area_and_bbox_fall_back():
    ann_file, image_dir, _ = SETS["aic"]
    require(ann_file)
    sample = CocoKeypoints(ann_file, image_dir, get_spec("aic14"))[0]
    np.testing.assert_allclose(sample.areas, sample.bboxes[:, 2] * sample.bboxes[:, 3])


def test_wrong_keypoint_count_names_the_annotation(shared_data):
    ann_file, image_dir, _ = SETS["crowdpose"]
    first_id = json.loads(ann_file.read_text())["annotations"][0]["id"]
    with pytest.raises(DataError, match=f"annotation id {first_id} has 42 keypoint values, "
                                         "expected 51"):
        CocoKeypoints(ann_file, image_dir, get_spec("coco17"))


def test_custom_spec_any_k(tmp_path, shared_data):
    ann_file, image_dir, _ = SETS["mhp"]
    spec = KeypointSpec(name="mhp16", keypoints=[f"j{i}" for i in range(16)],
                        flip_index=list(range(16)), skeleton=[], sigmas=[0.05] * 16)
    reader = CocoKeypoints(ann_file, image_dir, spec)
    assert reader[0].keypoints.shape[1:] == (16, 3)


def _copy_set(tmp_path: Path) -> tuple[Path, Path]:
    ann_file, image_dir, _ = SETS["coco"]
    require(ann_file)
    data = json.loads(ann_file.read_text())
    data["images"] = data["images"][:1]
    first = data["images"][0]["id"]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] == first]
    (tmp_path / "ann.json").write_text(json.dumps(data))
    name = data["images"][0]["file_name"]
    shutil.copy(image_dir / name, tmp_path / name)
    return tmp_path / "ann.json", tmp_path / name


def test_missing_corrupt_image_and_malformed_json_name_the_file(tmp_path):
    ann, image = _copy_set(tmp_path)
    reader = CocoKeypoints(ann, tmp_path, get_spec("coco17"))
    image.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=f"{image}.*cannot decode"):
        reader[0]
    image.unlink()
    with pytest.raises(DataError, match=f"{image}.*not found"):
        reader[0]
    ann.write_text(ann.read_text()[:-10])
    with pytest.raises(DataError, match=f"{ann}: malformed"):
        CocoKeypoints(ann, tmp_path, get_spec("coco17"))
    ann.write_text(json.dumps({"annotations": []}))
    with pytest.raises(DataError, match="no 'images' list"):
        CocoKeypoints(ann, tmp_path, get_spec("coco17"))


def test_annotation_for_unknown_image_is_an_error(tmp_path):
    ann, _ = _copy_set(tmp_path)
    data = json.loads(ann.read_text())
    data["annotations"][0]["image_id"] = 123456789
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError, match="refers to image_id 123456789"):
        CocoKeypoints(ann, tmp_path, get_spec("coco17"))
