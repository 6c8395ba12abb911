"""DATASETS registry: every entry builds a reader on a real sample set and yields Samples."""

import numpy as np
import pytest

from bupose.data import DATASETS, Sample
from bupose.errors import ConfigError
from bupose.structures.spec import get_spec
from tests.conftest import SHARED_DATA, require

S = SHARED_DATA / "samples"
FILES = {
    "coco": (S / "coco/test_coco.json", S / "coco", 17),
    "crowdpose": (S / "crowdpose/test_crowdpose.json", S / "crowdpose", 14),
    "ochuman": (S / "ochuman/test_ochuman.json", S / "ochuman", 17),
    "aic": (S / "aic/test_aic.json", S / "aic", 14),
    "mhp": (S / "mhp/test_mhp.json", S / "mhp", 16),
    "coco_format": (S / "coco/test_coco.json", S / "coco", 17),
    "mpii": (S / "mpii/test_mpii.json", S / "mpii", 16),
}


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_reads_its_samples(name):
    assert name in FILES, f"add a sample set for the new dataset {name!r} to this test"
    ann, images, k = FILES[name]
    spec = get_spec("coco17") if name == "coco_format" else None
    reader = DATASETS.get(name)(require(ann), images, spec=spec, train_filter=True)
    assert len(reader) > 0
    for i in range(len(reader)):
        sample = reader[i]
        assert isinstance(sample, Sample)
        assert sample.keypoints.shape[1:] == (k, 3) and sample.keypoints.dtype == np.float32
        assert sample.areas.shape == sample.bboxes.shape[:1] == sample.keypoints.shape[:1]


def test_coco_format_needs_a_spec_and_unknown_names_fail():
    with pytest.raises(ConfigError, match="needs a keypoint spec"):
        DATASETS.get("coco_format")(S / "coco/test_coco.json", S / "coco")
    with pytest.raises(ConfigError, match="did you mean coco"):
        DATASETS.get("cocoo")
