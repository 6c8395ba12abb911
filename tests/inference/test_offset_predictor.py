"""OffsetPredictor (SimplePose V2 test path) against the official recordings: flip fusion
(``decoding/flip_fusion.npz``), preprocessing meta (``e2e/e2e_tiny.json``) and every stage of
image 196141 (``e2e/e2e_tiny_staged_196141.npz``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bupose.decoders.offsets import decode_offsets
from bupose.inference.offset_predictor import (
    OffsetPredictor,
    fuse_flip,
    pad_image,
    poses_from_decoded,
    resize_image,
)
from bupose.utils.io import read_image
from tests.conftest import SHARED, SHARED_DATA, require

OG = SHARED / "fixtures" / "official_offsetguided"


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(require(path)) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("concat", [False, True])
def test_fuse_flip_equals_official(concat: bool) -> None:
    z = _npz(OG / "decoding" / "flip_fusion.npz")
    hm, off = fuse_flip(z["heatmaps"], z["offsets"], z["keypoint_flip_index"],
                        z["limb_flip_index"], z["limb_reverse_index"], concat)
    prefix = "catflip_" if concat else "fused_"
    np.testing.assert_array_equal(hm, z[prefix + "heatmaps"][0])
    # the reference returns the concatenated variant as (2N, 2L, h, w): same memory layout
    np.testing.assert_array_equal(off.reshape(-1), z[prefix + "offsets"].reshape(-1))
    assert off.shape[0] == (76 if concat else 38)


@pytest.mark.parametrize("variant,mode", [("flip_long640", "long-edge"),
                                          ("flip_fixedheight640", "fixed-height")])
def test_resize_and_pad_meta(variant: str, mode: str) -> None:
    data = json.loads(require(OG / "e2e" / "e2e_tiny.json").read_text())["variants"][variant]
    for image in data["images"]:
        w, h = image["original_width_height"]
        resized, meta_scale = resize_image(np.zeros((h, w, 3), np.uint8), 640, mode)
        padded, meta_offset = pad_image(resized, 640, mode)
        assert [padded.shape[1], padded.shape[0]] == image["input_width_height"]
        np.testing.assert_allclose(meta_scale, image["meta_scale"], rtol=1e-12)
        np.testing.assert_allclose(meta_offset, image["meta_offset"], rtol=1e-12)


@pytest.fixture(scope="module")
def staged() -> dict[str, np.ndarray]:
    return _npz(OG / "e2e" / "e2e_tiny_staged_196141.npz")


@pytest.fixture(scope="module")
def predictor() -> OffsetPredictor:
    from bupose import load_checkpoint

    model = load_checkpoint(require(OG / "tiny" / "tiny_checkpoint.pth"))
    return OffsetPredictor(model, model.meta.spec)


def test_staged_196141_equals_official(staged: dict, predictor: OffsetPredictor) -> None:
    image = read_image(require(SHARED_DATA / "samples" / "coco" / "000000196141.jpg"))
    x, meta_offset, meta_scale = predictor.preprocess(image)
    digest = hashlib.sha256(x.numpy().astype(np.float32).tobytes()).hexdigest()
    assert digest == str(staged["input_sha256_f32"])  # bit-identical network input
    with torch.no_grad():
        out = predictor.model(torch.stack((x, torch.flip(x, [-1]))))
    for stack in (0, 1):
        for row, tag in ((0, "orig"), (1, "flip")):
            for idx, name in ((0, "hmp"), (1, "off")):
                got, want = out[idx][row, stack].numpy(), staged[f"{name}_s{stack}_{tag}_sub4"]
                # float32 kernels differ between CPUs: 1e-5 of the map's scale (fixture README)
                np.testing.assert_allclose(got[:, ::4, ::4], want, rtol=0,
                                           atol=1e-5 * np.abs(want).max())
    maps = predictor.maps(image)
    decoded = decode_offsets(maps.heatmaps, maps.offsets, predictor.params)
    valid = staged["topk_scores"] >= predictor.params.thre_hmp
    np.testing.assert_array_equal(decoded.peaks.inds[valid], staged["topk_inds"][valid])
    np.testing.assert_allclose(decoded.peaks.scores[valid], staged["topk_scores"][valid],
                               atol=1e-6)
    rows = (staged["limbs"][..., 2] >= 0.04) & (staged["limbs"][..., 5] >= 0.04)
    # limb lengths/scores carry the maps' float noise (1.2e-5 relative seen on an AVX2 CPU)
    np.testing.assert_allclose(decoded.limbs[rows], staged["limbs"][rows], rtol=1e-4, atol=1e-6)
    assert decoded.poses.shape == staged["poses"].shape
    np.testing.assert_allclose(decoded.poses, staged["poses"], atol=1e-6)
    poses = poses_from_decoded(decoded.poses, meta_offset, meta_scale)
    found = staged["poses"][..., 0] > 0
    np.testing.assert_allclose(poses.keypoints[found][:, :2],
                               staged["poses_image"][found][:, :2], atol=1e-4)
    assert np.all(poses.keypoints[~found] == 0)
    np.testing.assert_allclose(poses.scores, staged["poses"][..., 2].sum(-1) / 17, atol=1e-6)


def test_predictor_rejects_bad_input(predictor: OffsetPredictor) -> None:
    with pytest.raises(ValueError, match="uint8"):
        predictor(np.zeros((10, 10), np.float32))
    with pytest.raises(ValueError, match="resize mode"):
        OffsetPredictor(predictor.model, predictor.spec, resize_mode="square")


def test_cat_flip_offset_and_fixed_height_run(predictor: OffsetPredictor) -> None:
    """The --cat-flip-offset variant (4-vector guides) on a fixed-height input."""
    image = read_image(require(SHARED_DATA / "samples" / "coco" / "000000000785.jpg"))
    cat = OffsetPredictor(predictor.model, predictor.spec, input_size=256,
                          resize_mode="fixed-height", cat_flip_offset=True)
    maps = cat.maps(image)
    assert maps.offsets.shape[0] == 76 and maps.heatmaps.shape[1] * 4 == 256
    poses = cat.decode(maps)
    assert poses.keypoints.shape[1:] == (17, 3) and np.all(poses.scores >= 0)
