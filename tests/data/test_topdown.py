"""CAL person crops against the official fixtures (shared/fixtures/official_cal/targets): box
clean-up and centre/scale, the UDP warp matrix (1e-6; here bit-identical), the cv2 crop (exact),
joints in input px (1e-5), the normalised input (1e-6), and the training crop draw."""

import json

import numpy as np
import pytest

from bupose.data.coco import CocoKeypoints
from bupose.data.topdown import (
    TopDownAugment,
    box_to_center_scale,
    clean_box,
    crop,
    flip_joints,
    joints_to_input,
    sample_crop,
    udp_warp_matrix,
)
from bupose.data.topdown_dataset import TopDownDataset, gt_person_boxes
from bupose.structures.spec import COCO17
from tests.conftest import SHARED, SHARED_DATA, require

COCO = SHARED_DATA / "samples" / "coco"
TARGETS = SHARED / "fixtures" / "official_cal" / "targets"
CASES = ["64x48", "64x48_w48", "128x96", "64x48_train", "128x96_train"]


def load(case: str) -> dict[str, np.ndarray]:
    with np.load(require(TARGETS / f"targets_{case}.npz")) as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def reader() -> CocoKeypoints:
    return CocoKeypoints(require(COCO / "test_coco.json"), COCO, COCO17)


def dataset(reader: CocoKeypoints, d: dict[str, np.ndarray]) -> TopDownDataset:
    sigma, locref, mask_sigma, kpd = (float(v) for v in d["params"])
    w, h = (int(v) for v in d["image_size_wh"])
    return TopDownDataset(reader, COCO17, (h, w), sigma=sigma, locref_stdev=locref,
                          mask_sigma=mask_sigma, kpd=kpd)


def test_gt_boxes_give_the_reference_database(reader):
    d = load("64x48")
    ds = dataset(reader, d)
    assert len(ds) == len(d["image_id"]) == 12
    for i in range(len(ds)):
        rec = ds.records[i]
        assert rec.image_id == d["image_id"][i]
        np.testing.assert_array_equal(rec.center, d["center_db"][i])
        np.testing.assert_array_equal(rec.scale, d["scale_db"][i])
        np.testing.assert_array_equal(rec.joints, d["joints_img"][i][:, :2])
        np.testing.assert_array_equal(rec.visible, d["joints_vis_img"][i][:, 0])


def test_clean_box_and_center_scale():
    assert clean_box([-5.0, 2.0, 20.0, 10.0], (100, 50)).tolist() == [0.0, 2.0, 19.0, 9.0]
    assert clean_box([120.0, 2.0, 20.0, 10.0], (100, 50)) is None
    c, s = box_to_center_scale([10.0, 20.0, 30.0, 80.0], 0.75, clean=False)
    assert c.dtype == np.float32 and c.tolist() == [25.0, 60.0]
    np.testing.assert_allclose(s, [60 / 200 * 1.25, 80 / 200 * 1.25], rtol=1e-6)
    with pytest.raises(ValueError, match="image_size"):
        box_to_center_scale([0, 0, 5, 5], 0.75)
    with pytest.raises(ValueError, match="outside"):
        box_to_center_scale([500, 0, 5, 5], 0.75, image_size=(100, 100))


def test_gt_person_boxes_skip_crowd_and_unlabelled():
    anns = [{"bbox": [0, 0, 10, 10], "area": 50, "keypoints": [0, 0, 0, 5, 5, 2]},
            {"bbox": [0, 0, 10, 10], "area": 50, "keypoints": [0] * 6},
            {"bbox": [0, 0, 10, 10], "area": 50, "iscrowd": 1, "keypoints": [5, 5, 2] * 2},
            {"bbox": [0, 0, 10, 10], "area": 0, "keypoints": [5, 5, 2] * 2}]
    kept = gt_person_boxes(anns, (20, 20))
    assert [a is anns[0] for a, _ in kept] == [True]
    assert kept[0][1].tolist() == [0.0, 0.0, 9.0, 9.0]


@pytest.mark.parametrize("case", CASES)
def test_replayed_crops_equal_the_reference(reader, case):
    """Every case's recorded crop (train: after half-body/scale/rotation/flip) replayed through
    the warp, the crop, the joint mapping and the normalisation."""
    d = load(case)
    ds = dataset(reader, d)
    wh = tuple(int(v) for v in d["image_size_wh"])
    for p in range(len(d["image_id"])):
        rec = ds.records[int(d["dataset_index"][p])]
        center = d["center"][p].astype(np.float32)  # the reference's centres are float32
        scale = d["scale"][p] if d["seed"][p] >= 0 else d["scale"][p].astype(np.float32)
        rot = float(d["rotation"][p])
        matrix = udp_warp_matrix(center, scale, rot, wh)
        np.testing.assert_allclose(matrix, d["warp_matrix"][p], rtol=1e-6, atol=1e-6)
        image = ds_image(ds, rec)
        joints, vis = rec.joints, rec.visible
        if d["flipped"][p]:
            image = image[:, ::-1]
            joints, vis = flip_joints(joints, vis, image.shape[1], COCO17.flip_index)
        np.testing.assert_array_equal(crop(image, center, scale, wh, rot), d["crop_rgb_uint8"][p])
        ji = joints_to_input(joints, center, scale, rot, wh)
        ji[vis == 0] = 0
        np.testing.assert_allclose(ji, d["joints_input"][p][:, :2], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(vis, d["joints_vis_input"][p][:, 0])


def ds_image(ds: TopDownDataset, rec) -> np.ndarray:
    from bupose.utils.io import read_image

    return read_image(ds.reader.image_dir / rec.file_name)


@pytest.mark.parametrize("case", ["64x48", "64x48_w48"])
def test_dataset_items_equal_the_reference(reader, case):
    d = load(case)
    ds = dataset(reader, d)
    for p in (0, 5, 11):
        item = ds[int(d["dataset_index"][p])]
        np.testing.assert_allclose(item["image"].numpy(), d["input"][p], atol=1e-6, rtol=0)
        np.testing.assert_allclose(item["heatmaps"].numpy(), d["target"][p], atol=1e-6)
        np.testing.assert_allclose(item["offsets"].numpy(), d["target_offset"][p], atol=1e-6)
        np.testing.assert_allclose(item["mask_g"].numpy(), d["mask_g"][p], atol=1e-6)
        np.testing.assert_array_equal(item["mask_01"].numpy(), d["mask_01"][p])
        np.testing.assert_array_equal(item["target_weight"].numpy(), d["target_weight"][p])


def test_training_draw_probabilities():
    """Quirks 7, 8: half-body p=0.3 (upper body ≈ 0.69), rotation p=0.6 within ±2·45°, scale
    clipped to [0.65, 1.35], flip p=0.5 mirroring the centre to W - c_x - 1."""
    rng = np.random.default_rng(0)
    joints = np.stack([np.linspace(10, 50, 17), np.linspace(10, 150, 17)], axis=1)
    vis = np.ones(17)
    c0, s0 = np.array([30.0, 80.0], np.float32), np.array([1.0, 4 / 3], np.float32)
    aug = TopDownAugment()
    draws = [sample_crop(rng, joints, vis, c0, s0, aug, 0.75, tuple(range(11)), 100)
             for _ in range(4000)]
    half = np.mean([p.half_body for p in draws])
    rot = np.array([p.rotation for p in draws])
    flips = np.array([p.flipped for p in draws])
    assert abs(half - 0.3) < 0.03 and abs(np.mean(rot != 0) - 0.6) < 0.03
    assert np.abs(rot).max() <= 90 and abs(flips.mean() - 0.5) < 0.03
    full = [p for p in draws if not p.half_body]
    ratio = np.array([p.scale[0] / s0[0] for p in full])
    assert ratio.min() >= 0.65 - 1e-6 and ratio.max() <= 1.35 + 1e-6
    for p in full:
        expected = 100 - c0[0] - 1 if p.flipped else c0[0]
        assert p.center[0] == pytest.approx(expected)
    upper = [p for p in draws if p.half_body and p.center[1] < 80]
    assert abs(len(upper) / max(1, sum(p.half_body for p in draws)) - 0.69) < 0.06


def test_training_items_are_seeded(reader):
    ds = TopDownDataset(reader, COCO17, (64, 48), augment=TopDownAugment(), seed=1)
    a, b = ds[3], ds[3]
    assert all(torch_equal(a[k], b[k]) for k in a)
    ds.set_epoch(1)
    assert not torch_equal(a["center"], ds[3]["center"]) or a["rotation"] != ds[3]["rotation"]
    assert a["image"].shape == (3, 64, 48) and a["offsets"].shape == (34, 16, 12)


def torch_equal(x, y) -> bool:
    import torch

    return bool(torch.equal(x, y))


def test_synthetic_annotation_without_category(tmp_path):
    """A COCO-format file without category ids or areas still yields its people."""
    from bupose.utils.io import atomic_write_json

    ann = {"images": [{"id": 1, "file_name": "a.jpg", "width": 40, "height": 60}],
           "annotations": [{"id": 1, "image_id": 1, "bbox": [5, 5, 20, 40],
                            "keypoints": [10, 10, 2] + [0, 0, 0] * 16}]}
    path = atomic_write_json(tmp_path / "a.json", ann)
    ds = TopDownDataset(CocoKeypoints(path, tmp_path, COCO17), COCO17, (64, 48))
    assert len(ds) == 1 and ds.records[0].visible.sum() == 1
    assert json.loads(path.read_text())["annotations"][0]["id"] == 1


@pytest.mark.parametrize("case", ["64x48_train", "128x96_train"])
def test_training_items_replayed_equal_the_reference(reader, case):
    """``TopDownDataset.encode`` with the recorded training crop (flip, half-body, scale,
    rotation) gives the reference's input and targets."""
    from bupose.data.topdown import CropParams

    d = load(case)
    ds = dataset(reader, d)
    for p in range(len(d["image_id"])):
        rec = ds.records[int(d["dataset_index"][p])]
        params = CropParams(d["center"][p].astype(np.float32), d["scale"][p],
                            float(d["rotation"][p]), bool(d["flipped"][p]),
                            bool(d["half_body"][p]))
        item = ds.encode(ds_image(ds, rec), rec.joints, rec.visible, params)
        if "input" in d:
            np.testing.assert_allclose(item["image"].numpy(), d["input"][p], atol=1e-6, rtol=0)
        np.testing.assert_allclose(item["heatmaps"].numpy(), d["target"][p], atol=1e-6)
        np.testing.assert_allclose(item["offsets"].numpy(), d["target_offset"][p], atol=1e-6)
        np.testing.assert_allclose(item["mask_g"].numpy(), d["mask_g"][p], atol=1e-6)
        np.testing.assert_array_equal(item["mask_01"].numpy(), d["mask_01"][p])
        np.testing.assert_array_equal(item["target_weight"].numpy(), d["target_weight"][p])
