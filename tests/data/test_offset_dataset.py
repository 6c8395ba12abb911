"""OffsetGuided annotation preprocessing, mask_miss, warp and targets against the official
encoder inputs/outputs (fixtures README, targets/), on the COCO sample images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bupose.codecs.offsets import encode_offset_targets
from bupose.data.coco import CocoKeypoints
from bupose.data.offset_dataset import (
    OffsetAugment,
    OffsetAugParams,
    OffsetTrainDataset,
    offset_affine,
    offset_annotations,
    offset_mask_miss,
    roi_center,
    warp_offset_sample,
)
from bupose.errors import DataError
from bupose.structures.spec import get_spec
from tests.conftest import SHARED, require

TARGETS = SHARED / "fixtures" / "official_offsetguided" / "targets"
SAMPLES = SHARED / "data" / "samples" / "coco"
SPEC = get_spec("coco17")


@pytest.fixture(scope="module")
def reader() -> CocoKeypoints:
    return CocoKeypoints(require(SAMPLES / "test_coco.json"), SAMPLES, SPEC, train_filter=True)


def _case(reader: CocoKeypoints, image_id: int, params: OffsetAugParams, matrix=None):
    sample = reader[reader.image_ids.index(image_id)]
    anns = reader.annotations(image_id)
    h, w = sample.image.shape[:2]
    kps = offset_annotations(anns, SPEC.sigmas)
    mask = offset_mask_miss(anns, h, w)
    if matrix is None:
        matrix = offset_affine(params, roi_center(kps, (w, h)), (w, h), (512, 512))
    return matrix, warp_offset_sample(sample.image, kps, mask, matrix, params, (512, 512),
                                      SPEC.flip_index)


@pytest.mark.parametrize("case", ["40083_fixed", "196141_fixed", "197388_fixed"])
def test_fixed_parameters_equal_official(reader: CocoKeypoints, case: str) -> None:
    ref = np.load(require(TARGETS / f"targets_{case}.npz"))
    matrix, (_, kps, mask_in) = _case(reader, int(case.split("_")[0]), OffsetAugParams())
    np.testing.assert_allclose(matrix, ref["affine"], atol=1e-9)
    np.testing.assert_array_equal(kps[..., 2], ref["keypoints"][..., 2])
    np.testing.assert_allclose(kps, ref["keypoints"], rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(mask_in, ref["mask_miss_input"])
    t = encode_offset_targets(kps, mask_in)
    np.testing.assert_array_equal(t.mask_miss, ref["mask_miss"])
    np.testing.assert_allclose(t.heatmaps, ref["heatmaps"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.isfinite(t.offsets), np.isfinite(ref["offsets"]))


def test_seeded_augmentation_replayed(reader: CocoKeypoints) -> None:
    """The recorded draw (flip, 14.53 deg, scale_xy) through our matrix and warp; the integer
    translation is recovered from the recorded matrix and must be an integer."""
    ref = np.load(require(TARGETS / "targets_196141_seeded.npz"))
    info = json.loads((TARGETS / "summary.json").read_text())["196141_seeded"]
    sx, sy = info["scale_xy"]
    params = OffsetAugParams(flip=info["hflip"], rotate=info["rotate_deg"], stretch_x=sx,
                             stretch_y=sy)
    no_shift, _ = _case(reader, 196141, params)
    shift = ref["affine"][:2, 2] - no_shift[:2, 2]
    np.testing.assert_allclose(shift, np.round(shift), atol=1e-6)
    params = OffsetAugParams(flip=True, rotate=info["rotate_deg"], stretch_x=sx, stretch_y=sy,
                             translate_x=int(round(shift[0])), translate_y=int(round(shift[1])))
    matrix, (_, kps, mask_in) = _case(reader, 196141, params)
    np.testing.assert_allclose(matrix, ref["affine"], atol=1e-9)
    np.testing.assert_array_equal(kps[..., 2], ref["keypoints"][..., 2])
    np.testing.assert_allclose(kps, ref["keypoints"], rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(mask_in, ref["mask_miss_input"])
    t = encode_offset_targets(kps, mask_in)
    np.testing.assert_array_equal(t.mask_miss, ref["mask_miss"])
    np.testing.assert_array_equal(t.heatmaps > 0, ref["heatmaps"] > 0)
    np.testing.assert_array_equal(np.isnan(t.scales), np.isnan(ref["scales"]))


def test_small_people_and_crowd_rules() -> None:
    sq = [[2, 2, 12, 2, 12, 12, 2, 12]]
    big = [[20, 20, 60, 20, 60, 60, 20, 60]]
    kp = [0.0] * 51
    kp[0:3] = [30, 30, 2]
    anns = [
        {"id": 1, "iscrowd": 0, "num_keypoints": 1, "area": 100.0, "bbox": [2, 2, 10, 10],
         "keypoints": kp, "segmentation": sq},
        {"id": 2, "iscrowd": 0, "num_keypoints": 1, "area": 1600.0, "bbox": [20, 20, 40, 40],
         "keypoints": kp, "segmentation": big},
    ]
    kps = offset_annotations(anns, SPEC.sigmas)
    assert kps.shape == (2, 17, 4) and kps[0, 0, 2] == 0 and kps[1, 0, 2] == 2
    assert kps[1, 0, 3] == pytest.approx(40 * SPEC.sigmas[0], rel=1e-6)
    mask = offset_mask_miss(anns, 64, 64)
    assert mask[5, 5] == 0 and mask[40, 40] == 255 and mask[0, 63] == 255
    crowd = {"id": 3, "iscrowd": 1, "num_keypoints": 0, "area": 900.0, "bbox": [0, 0, 1, 1],
             "keypoints": [0] * 51, "segmentation": [[30, 30, 63, 30, 63, 63, 30, 63]]}
    mask = offset_mask_miss(anns + [crowd], 64, 64)
    assert mask[40, 40] == 255 and mask[62, 62] == 0  # earlier person masks stay supervised
    with pytest.raises(DataError, match="more than one crowd"):
        offset_mask_miss(anns + [crowd, dict(crowd, id=4)], 64, 64)


def test_dataset_items(reader: CocoKeypoints) -> None:
    ds = OffsetTrainDataset(reader, SPEC, input_size=256, augment=OffsetAugment(), seed=3)
    assert len(ds) == 4
    a, b = ds[1], ds[1]
    assert a["image"].shape == (3, 256, 256) and a["heatmaps"].shape == (17, 64, 64)
    assert a["offsets"].shape == (38, 64, 64) and a["mask_miss"].dtype == torch.bool
    assert torch.equal(a["heatmaps"], b["heatmaps"])  # seeded: same draw
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["image"], a["image"])
