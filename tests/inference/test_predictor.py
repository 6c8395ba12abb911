"""Predictor: the official test path stage by stage on the recorded tiny-model run
(e2e_tiny_staged.npz: image 196141, flip test, one scale), plus synthetic checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from bupose.data.transforms import multi_scale_size
from bupose.inference.poses import Poses
from bupose.inference.predictor import DecoderInputs, Predictor, decode_maps
from bupose.models.outputs import StageOutput
from bupose.structures.spec import COCO17, KeypointSpec
from tests.conftest import FIXTURES, SHARED_DATA, require

TINY = FIXTURES / "tiny"


@pytest.fixture(scope="module")
def staged():
    """Our run of the staged image with the tiny official model, and the official record."""
    from bupose.models.checkpoint import load_checkpoint
    from bupose.utils.io import read_image

    z = np.load(require(FIXTURES / "e2e" / "e2e_tiny_staged.npz"))
    model = load_checkpoint(require(TINY / "tiny_model.pth"), require(TINY / "tiny_config.yaml"))
    predictor = Predictor(model, model.meta.spec, input_size=model.meta.input_size, flip=True)
    image = read_image(require(SHARED_DATA / "samples" / "coco" / "000000196141.jpg"))
    trace: dict = {}
    inputs = predictor.maps(image, trace)
    return predictor, inputs, trace, z


def _close(ours: np.ndarray, ref: np.ndarray, rel: float) -> None:
    """|ours - ref| <= rel * max|ref| (float noise of a different conv implementation)."""
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * float(np.abs(ref).max()))


def test_staged_network_input_and_raw_outputs(staged):
    _, _, trace, z = staged
    np.testing.assert_allclose(trace["input/1"].numpy(), z["input"], rtol=0, atol=1e-6)
    plain, flipped = trace["outputs/1"]
    for i, output in enumerate(plain + flipped):  # README: ~1e-5 relative
        _close(output.numpy(), z[f"raw_output{i}"], 1e-5)


def test_staged_aggregated_maps(staged):
    _, inputs, _, z = staged
    assert (1, *inputs.heatmaps.shape) == tuple(z["final_heatmaps_shape"])
    assert inputs.tags.shape == (*inputs.heatmaps.shape, 2)
    _close(inputs.heatmaps[:, ::4, ::4].numpy(), z["final_heatmaps_sub4"][0], 1e-5)
    _close(inputs.tags[:, ::4, ::4].numpy(), z["tags_sub4"][0], 1e-5)
    # channel sums (float64): tag sums cancel (tags of both signs), so relative to the largest
    _close(inputs.heatmaps.double().sum((1, 2)).numpy(), z["final_heatmaps_channel_sum"], 1e-5)
    _close(inputs.tags.double().sum((1, 2)).numpy(), z["tags_channel_sum"], 1e-5)
    assert inputs.base_size == (384, 256)
    np.testing.assert_allclose(inputs.center, [320.0, 215.0])
    np.testing.assert_allclose(inputs.scale, [3.2175, 2.145])


def _top_k(heatmaps: torch.Tensor, tags: torch.Tensor, k: int) -> tuple[np.ndarray, ...]:
    """The official top-k written out: 5x5 max-pool NMS, k largest per joint, their (x, y) and
    tag vectors. heatmaps (K, h, w), tags (K, h, w, L) -> vals (K, k), locs (K, k, 2), tags."""
    pooled = torch.nn.functional.max_pool2d(heatmaps[None], 5, 1, 2)[0]
    kept = (heatmaps * (pooled == heatmaps)).flatten(1)
    vals, ind = kept.topk(k, dim=1)
    w = heatmaps.shape[-1]
    locs = torch.stack([ind % w, ind // w], dim=2)
    peak_tags = torch.gather(tags.flatten(1, 2), 1, ind[..., None].expand(-1, -1, tags.shape[-1]))
    return vals.numpy(), locs.numpy(), peak_tags.numpy()


def test_staged_topk_matched_grouped_final(staged):
    """The decoder stages on our maps: top-k, matching (decode without adjust/refine), adjust,
    scores, refine, back-projection. The official image is solver-independent and its top-k
    values above threshold are >= 2.8e-5 apart, far more than our map noise (~4e-7), so rows
    compare in order."""
    predictor, inputs, _, z = staged
    params = predictor.params
    vals, locs, tags = _top_k(inputs.heatmaps, inputs.tags, params.top_k)
    above = z["topk_val_k"][0] > params.detection_threshold
    np.testing.assert_array_equal(locs[above], z["topk_loc_k"][0][above])
    np.testing.assert_allclose(vals[above], z["topk_val_k"][0][above], atol=1e-6)
    np.testing.assert_allclose(tags[above], z["topk_tag_k"][0][above], atol=1e-4)

    in_map = DecoderInputs(inputs.heatmaps, inputs.tags)  # no center/scale: map pixels
    order = predictor.spec.joint_order
    for key, flags in (("matched", (False, False)), ("adjusted", (True, False))):
        step = dataclasses.replace(params, adjust=flags[0], refine=flags[1])
        poses = decode_maps(in_map, "ae", step, order)
        grouped = np.concatenate([poses.keypoints, poses.tags], axis=2)
        np.testing.assert_allclose(grouped, z[key], atol=1e-4, err_msg=key)
        np.testing.assert_allclose(poses.scores, z["scores"], atol=1e-6, err_msg=key)
    grouped = decode_maps(in_map, "ae", params, order)
    np.testing.assert_allclose(grouped.keypoints[..., :2], z["grouped"][..., :2], atol=1e-4)

    poses = predictor.decode(inputs)
    assert len(poses) == len(z["final"])
    np.testing.assert_allclose(poses.keypoints[..., :2], z["final"][..., :2], atol=1e-3)
    np.testing.assert_allclose(poses.keypoints[..., 2], z["final"][..., 2], atol=1e-6)
    np.testing.assert_allclose(poses.scores, z["scores"], atol=1e-6)
    np.testing.assert_allclose(poses.tags, z["grouped"][..., 3:], atol=1e-4)


class MirrorModel(torch.nn.Module):
    """Toy two-stage network (stride 4 with K heatmaps + K tags, stride 2 with K heatmaps)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k
        self.weight = torch.nn.Parameter(torch.linspace(0.1, 1.0, 3 * k))
        self.output_layout = (StageOutput(4, k, k), StageOutput(2, k))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s4 = torch.nn.functional.avg_pool2d(x[:, :1], 4)
        s2 = torch.nn.functional.avg_pool2d(x[:, :1], 2)
        w = self.weight.view(1, -1, 1, 1)
        return s4 * w[:, : 2 * self.k], s2 * w[:, 2 * self.k :]


def test_multi_scale_uses_smallest_scale_geometry():
    """valid.py takes center/scale from the last (smallest) test scale. With scales (0.75, 1) on a
    wide image the scale-1 and scale-0.75 boxes differ, so the quirk is observable."""
    image = np.random.default_rng(0).integers(0, 255, (130, 300, 3), dtype=np.uint8)
    predictor = Predictor(MirrorModel(17), COCO17, input_size=64, flip=True, scales=(1.0, 0.75))
    inputs = predictor.maps(image)
    size_1, center, scale_1 = multi_scale_size(image.shape[:2], 64, 1.0, 0.75)
    _, _, scale_min = multi_scale_size(image.shape[:2], 64, 0.75, 0.75)
    assert not np.allclose(scale_1, scale_min)
    np.testing.assert_array_equal(inputs.scale, scale_min)
    np.testing.assert_array_equal(inputs.center, center)
    assert inputs.base_size == size_1
    assert inputs.heatmaps.shape == (17, size_1[1], size_1[0])
    assert inputs.tags.shape == (17, size_1[1], size_1[0], 2)  # flip: 2 tags, scale 1 only


def test_predictor_call_returns_image_frame_poses():
    image = np.random.default_rng(1).integers(0, 255, (100, 90, 3), dtype=np.uint8)
    predictor = Predictor(MirrorModel(17), COCO17, input_size=64, flip=False)
    inputs = predictor.maps(image)
    assert inputs.tags.shape[-1] == 1
    poses = predictor(image)
    assert poses.keypoints.shape[1:] == (17, 3) and len(poses.scores) == len(poses)
    in_map = decode_maps(DecoderInputs(inputs.heatmaps, inputs.tags), "ae", predictor.params,
                         COCO17.joint_order)
    assert len(in_map) == len(poses) > 0
    # image frame (portrait image: the 90-px width maps onto the input width, centre x = 45)
    ratio = 90 / inputs.base_size[0]
    x_map, x_img = in_map.keypoints[..., 0], poses.keypoints[..., 0]
    np.testing.assert_allclose(x_img, x_map * ratio + (inputs.center[0] - 45), atol=1e-3)
    np.testing.assert_array_equal(poses.keypoints[..., 2], in_map.keypoints[..., 2])
    np.testing.assert_array_equal(poses.scores, in_map.scores)


def test_predictor_rejects_bad_inputs():
    spec5 = KeypointSpec("five", tuple("abcde"), (0, 1, 2, 3, 4), (), (0.1,) * 5)
    with pytest.raises(ValueError, match="5"):
        Predictor(MirrorModel(17), spec5)
    predictor = Predictor(MirrorModel(17), COCO17, input_size=64)
    with pytest.raises(ValueError, match="uint8"):
        predictor.maps(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="H, W, 3"):
        predictor.maps(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="use_tags"):
        Predictor(MirrorModel(17), COCO17, use_tags=(True,))
    with pytest.raises(ValueError, match="positive"):
        Predictor(MirrorModel(17), COCO17, scales=(1.0, 0.0))


def test_poses_to_coco_and_checks():
    keypoints = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    poses = Poses(keypoints, np.array([0.5, 0.25]))
    entries = poses.to_coco(785, file_name="000000000785.jpg")
    assert [e["score"] for e in entries] == [0.5, 0.25]
    assert entries[1]["keypoints"] == keypoints[1].reshape(-1).tolist()
    assert entries[0]["image_id"] == 785 and entries[0]["category_id"] == 1
    assert entries[0]["file_name"] == "000000000785.jpg"
    assert "file_name" not in poses.to_coco(1)[0]
    assert len(Poses.empty(17)) == 0 and Poses.empty(17).to_coco(3) == []
    with pytest.raises(ValueError, match="scores"):
        Poses(keypoints, np.array([0.5]))
