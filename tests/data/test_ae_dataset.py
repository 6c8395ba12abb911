"""AETrainDataset on the real COCO samples: tensor layout, determinism, batching, masks."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bupose.data.ae_dataset import AETrainDataset
from bupose.data.coco import CocoKeypoints
from bupose.data.transforms import TrainAugment
from bupose.errors import ConfigError
from bupose.structures.spec import COCO17
from tests.conftest import SHARED_DATA, require

COCO = SHARED_DATA / "samples" / "coco"


@pytest.fixture
def reader() -> CocoKeypoints:
    return CocoKeypoints(require(COCO / "test_coco.json"), COCO, COCO17, train_filter=True)


def test_item_layout_and_consistency(reader):
    ds = AETrainDataset(reader, COCO17, seed=0)
    item = ds[2]
    assert item["image"].shape == (3, 512, 512) and item["image"].dtype == torch.float32
    assert [h.shape for h in item["heatmaps"]] == [(17, 128, 128), (17, 256, 256)]
    assert [m.shape for m in item["masks"]] == [(128, 128), (256, 256)]
    assert item["tag_indices"].shape == (30, 17, 2) and item["tag_indices"].dtype == torch.int64
    tags = item["tag_indices"].numpy()
    valid = tags[..., 1] > 0
    assert valid.any()
    flat_heatmap = item["heatmaps"][0].numpy().reshape(-1)
    assert (flat_heatmap[tags[valid, 0]] == 1.0).all()  # every tag index sits on a peak
    for m in item["masks"]:
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}


def test_seeded_items_are_reproducible_and_change_with_epoch(reader):
    a, b = AETrainDataset(reader, COCO17, seed=3), AETrainDataset(reader, COCO17, seed=3)
    x, y = a[1], b[1]
    assert torch.equal(x["image"], y["image"]) and torch.equal(x["tag_indices"], y["tag_indices"])
    b.set_epoch(1)
    assert not torch.equal(x["image"], b[1]["image"])


def test_ignore_regions_reach_the_masks(reader):
    """Image 40083 has a person without keypoints: its region is 0 in the unaugmented masks."""
    ds = AETrainDataset(reader, COCO17, input_size=256, output_sizes=[64], augment=None)
    index = reader.image_ids.index(40083)
    sample = reader[index]
    mask = ds[index]["masks"][0].numpy()
    # no augmentation: centred box of the short side; map the ignored pixels' centroid to 64 px
    ys, xs = np.nonzero(sample.ignore_mask)
    h, w = sample.image.shape[:2]
    zoom = 64 / min(h, w)
    cx, cy = (xs.mean() - w / 2) * zoom + 32, (ys.mean() - h / 2) * zoom + 32
    assert mask[int(cy), int(cx)] == 0
    assert mask.mean() > 0.5


@pytest.mark.parametrize("input_size,outputs", [(640, [160, 320]), (512, [128])])
def test_other_sizes(reader, input_size, outputs):
    item = AETrainDataset(reader, COCO17, input_size=input_size, output_sizes=outputs, seed=1)[0]
    assert item["image"].shape == (3, input_size, input_size)
    assert [tuple(h.shape[1:]) for h in item["heatmaps"]] == [(s, s) for s in outputs]


def test_default_collate_batches(reader):
    ds = AETrainDataset(reader, COCO17, input_size=256, output_sizes=[64, 128], seed=0,
                        augment=TrainAugment(flip_prob=1.0))
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 256, 256)
    assert [h.shape for h in batch["heatmaps"]] == [(2, 17, 64, 64), (2, 17, 128, 128)]
    assert [m.shape for m in batch["masks"]] == [(2, 64, 64), (2, 128, 128)]
    assert batch["tag_indices"].shape == (2, 30, 17, 2)


def test_bad_sizes_are_config_errors(reader):
    with pytest.raises(ConfigError, match="ascending"):
        AETrainDataset(reader, COCO17, output_sizes=[256, 128])


def test_image_without_people(shared_data):
    ann = require(SHARED_DATA / "coco_tiny/annotations/person_keypoints_val2017.json")
    reader = CocoKeypoints(ann, SHARED_DATA / "coco_tiny/val2017", COCO17, train_filter=False)
    empty = next(i for i, image_id in enumerate(reader.image_ids)
                 if not reader.annotations(image_id))
    item = AETrainDataset(reader, COCO17, input_size=256, output_sizes=[64], seed=0)[empty]
    assert not item["heatmaps"][0].any() and not item["tag_indices"].any()
