"""MPII PCKh of top-down results: the reference's MPII boxes, CAL decoding, the PCKh evaluator,
on the 5 MPII sample images and their persons of the official validation ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.data.mpii import MpiiKeypoints
from bupose.data.topdown import joints_to_input
from bupose.evaluation.pckh import MpiiGroundTruth, load_mpii_ground_truth
from bupose.inference.topdown import TopDownPredictor, mpii_center_scale
from bupose.inference.topdown_mpii import mpii_pckh, predict_mpii
from bupose.structures.spec import get_spec
from tests.conftest import SHARED_DATA, require

MPII = SHARED_DATA / "samples" / "mpii"
INPUT_HW, MAP_HW, LOCREF = (256, 256), (64, 64), 1.0


class OracleModel(torch.nn.Module):
    """Returns, crop after crop, one-hot heatmaps at the rounded GT cell and the offsets to
    the exact GT joint (what a perfect CAL model outputs)."""

    num_keypoints = 16

    def __init__(self, maps: list[tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__()
        self.queue = list(maps)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = [self.queue.pop(0) for _ in range(len(images))]
        return (torch.from_numpy(np.stack([h for h, _ in batch])),
                torch.from_numpy(np.stack([o for _, o in batch])))


def _oracle_maps(keypoints: np.ndarray, center: np.ndarray, scale: np.ndarray) -> tuple:
    stride = (np.array(INPUT_HW[::-1]) - 1.0) / (np.array(MAP_HW[::-1]) - 1.0)
    joints = joints_to_input(keypoints[:, :2], center, scale, 0.0, INPUT_HW[::-1]) / stride
    heatmaps = np.zeros((16, *MAP_HW), np.float32)
    offsets = np.zeros((32, *MAP_HW), np.float32)
    for k, (x, y) in enumerate(joints):
        u, v = np.clip(np.rint([x, y]).astype(int), 0, np.array(MAP_HW[::-1]) - 1)
        heatmaps[k, v, u] = 1.0
        offsets[2 * k:2 * k + 2, v, u] = (x - u) / LOCREF, (y - v) / LOCREF
    return heatmaps, offsets


def _sample_ground_truth(reader: MpiiKeypoints) -> MpiiGroundTruth:
    """The validation .mat rows of the reader's persons (matched by their joints)."""
    full = load_mpii_ground_truth(require(SHARED_DATA / "mpii_annotations"
                                          / "detections_our_format.mat"))
    rows = []
    for i in range(len(reader)):
        for person in reader.images[i].keypoints:
            labelled = person[:, 2] > 0
            error = np.abs(full.positions - (person[None, :, :2] + 1.0)).max(axis=2)
            rows.append(int(np.argmin(np.where(labelled[None], error, 0).max(axis=1))))
    return MpiiGroundTruth(full.positions[rows], full.visible[rows], full.head_sizes[rows])


@pytest.fixture(scope="module")
def reader() -> MpiiKeypoints:
    return MpiiKeypoints(require(MPII / "test_mpii.json"), MPII, get_spec("mpii16"))


def test_perfect_maps_give_pckh_100(reader: MpiiKeypoints) -> None:
    maps = []
    for i in range(len(reader)):
        image = reader.images[i]
        centers, scales = mpii_center_scale(image.centers, image.scales)
        maps += [_oracle_maps(k, c, s) for k, c, s in zip(image.keypoints, centers, scales)]
    gt = _sample_ground_truth(reader)
    predictor = TopDownPredictor(OracleModel(maps), get_spec("mpii16"), INPUT_HW,
                                 locref_stdev=LOCREF, flip=False, batch_size=4)
    stats = mpii_pckh(predictor, reader, gt)
    assert stats["Mean"] == pytest.approx(100.0) and stats["Mean@0.1"] == pytest.approx(100.0)
    assert min(stats.values()) == pytest.approx(100.0)


def test_predictions_follow_the_persons_without_nms(reader: MpiiKeypoints) -> None:
    from bupose.models import create_model

    torch.manual_seed(0)
    model = create_model("cal_hrnet_small_64x48", spec=get_spec("mpii16")).eval()
    predictor = TopDownPredictor(model, get_spec("mpii16"), (64, 64), batch_size=4)
    predictions = predict_mpii(predictor, reader)
    assert predictions.shape == (sum(len(im.keypoints) for im in reader.images), 16, 3)
    assert np.isfinite(predictions).all()
    # every joint lies in its person's (square) crop box
    for person, image in zip(predictions, reader.images):
        center, scale = mpii_center_scale(image.centers, image.scales)
        half = 100.0 * scale[0, 0]
        assert (np.abs(person[:, :2] - center[0]) <= half + 1e-3).all()
