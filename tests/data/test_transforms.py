"""Training transforms (keypoints follow the pixels, flip is an involution, masks per resolution)
and the test-time resize (reproduces the official fixtures exactly)."""

import json

import cv2
import numpy as np
import pytest

from bupose.data.sample import Sample
from bupose.data.transforms import (
    AffineParams,
    TrainAugment,
    crop_affine,
    hflip_sample,
    multi_scale_size,
    normalize,
    resize_align,
    sample_affine_params,
    training_views,
    warp_image,
    warp_valid_mask,
)
from bupose.structures.affine import apply_affine
from bupose.structures.spec import COCO17
from tests.conftest import FIXTURES, SHARED_DATA, require

COCO_SAMPLES = SHARED_DATA / "samples" / "coco"
DOT_SIGMA = 3.0  # px in the original image


def dots_sample(rng: np.random.Generator, w: int = 320, h: int = 240, k: int = 17) -> Sample:
    """A black image with one bright Gaussian dot per keypoint (one person), the dots on a
    jittered grid 55+ px apart with sub-pixel centres."""
    grid = np.stack(np.meshgrid(40 + 60 * np.arange(5), 40 + 55 * np.arange(4)), -1).reshape(-1, 2)
    xy = grid[rng.permutation(len(grid))[:k]] + rng.uniform(-5, 5, (k, 2))
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    image = np.zeros((h, w), np.float64)
    for x, y in xy:
        image = np.maximum(image, np.exp(-((u - x) ** 2 + (v - y) ** 2) / (2 * DOT_SIGMA**2)))
    rgb = np.repeat((image * 255).round().astype(np.uint8)[..., None], 3, axis=2)
    kps = np.concatenate([xy, np.full((k, 1), 2.0)], axis=1)[None].astype(np.float32)
    ignore = np.zeros((h, w), bool)
    ignore[:40, :60] = True
    return Sample(rgb, kps, np.ones(1, np.float32), np.zeros((1, 4), np.float32), ignore, 1, "x")


def dot_centre(image: np.ndarray, xy: np.ndarray, radius: int) -> np.ndarray | None:
    """Intensity centroid of the dot near xy (None when the window leaves the image)."""
    gray = image[..., 0].astype(np.float64) if image.ndim == 3 else image
    x0, y0 = int(round(xy[0])), int(round(xy[1]))
    if not (radius <= x0 < gray.shape[1] - radius and radius <= y0 < gray.shape[0] - radius):
        return None
    win = gray[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    win = np.clip(win - 0.2 * win.max(), 0, None)  # drop the tails of neighbouring dots
    v, u = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return np.array([x0 + (u * win).sum() / win.sum(), y0 + (v * win).sum() / win.sum()])


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_dot_follows_keypoint_at_input_and_outputs(seed):
    rng = np.random.default_rng(seed)
    sample = dots_sample(rng)
    view, frames = training_views(sample, rng, 512, [128, 256], COCO17.flip_index, TrainAugment())
    pairs = [(view.image, view.keypoints[0], 512)]
    for frame, size in zip(frames, [128, 256]):
        pairs.append((warp_image(sample.image, frame.affine, (size, size)), frame.keypoints[0],
                      size))
    affines = [view.affine] + [f.affine for f in frames]
    checked = 0
    for (image, kps, size), affine in zip(pairs, affines):
        zoom = np.sqrt(abs(np.linalg.det(affine[:, :2])))
        radius = max(2, int(np.ceil(3 * DOT_SIGMA * zoom)))
        for xy in kps[:, :2]:
            centre = dot_centre(image, xy, radius)
            if centre is not None:
                assert np.abs(centre - xy).max() < 0.5, (size, xy, centre)
                checked += 1
    assert checked >= 17  # most dots stay inside the crops


def test_frames_share_one_box_and_flip_convention():
    sample = dots_sample(np.random.default_rng(7))
    flips = set()
    for seed in range(6):
        view, frames = training_views(sample, np.random.default_rng(seed), 512, [128, 256],
                                      COCO17.flip_index, TrainAugment())
        flipped = bool(np.linalg.det(view.affine[:, :2]) < 0)
        flips.add(flipped)
        order = list(COCO17.flip_index) if flipped else list(range(17))
        for frame, size in zip(frames, [128, 256]):
            np.testing.assert_allclose(frame.keypoints[..., :2],
                                       apply_affine(sample.keypoints[:, order, :2], frame.affine),
                                       atol=1e-3)
            if not flipped:  # same box: map coordinates are input coordinates * size / 512
                np.testing.assert_allclose(frame.keypoints[..., :2],
                                           view.keypoints[..., :2] * size / 512, atol=1e-3)
            else:  # each frame mirrors with its own width: x' = size - 1 - x
                x_unflipped = 511 - view.keypoints[..., 0]
                np.testing.assert_allclose(size - 1 - frame.keypoints[..., 0],
                                           x_unflipped * size / 512, atol=1e-3)
    assert flips == {True, False}


def test_flip_twice_is_identity():
    sample = dots_sample(np.random.default_rng(3))
    sample.centers = np.array([[10.5, 20.0]], np.float32)
    sample.scales = np.array([1.0], np.float32)
    once = hflip_sample(sample, COCO17.flip_index)
    twice = hflip_sample(once, COCO17.flip_index)
    np.testing.assert_array_equal(once.image, sample.image[:, ::-1])
    np.testing.assert_array_equal(once.ignore_mask, sample.ignore_mask[:, ::-1])
    # joint k of the flipped sample is joint flip_index[k] mirrored: x' = W - 1 - x
    np.testing.assert_array_equal(once.keypoints[0, 1, 0], 319 - sample.keypoints[0, 2, 0])
    for name in ("image", "ignore_mask", "scales", "affine"):
        np.testing.assert_array_equal(getattr(twice, name), getattr(sample, name))
    # float32 coordinates: W - 1 - x rounds once per flip
    np.testing.assert_allclose(twice.keypoints, sample.keypoints, rtol=0, atol=1e-4)
    np.testing.assert_allclose(twice.centers, sample.centers, rtol=0, atol=1e-4)


def test_crop_affine_is_the_official_training_matrix():
    params = AffineParams(center=(150.0, 90.0), scale=1.7, rotation=23.0)
    pts = np.array([[0.0, 0.0], [150.0, 90.0], [300.0, 17.5]])
    size = 128
    r = np.deg2rad(-23.0)  # the official matrix rotates by -rotation around the output centre
    rot = np.array([[np.cos(r), -np.sin(r)], [np.sin(r), np.cos(r)]])
    expected = (pts - [150.0, 90.0]) @ rot.T * size / (200 * 1.7) + size / 2
    np.testing.assert_allclose(apply_affine(pts, crop_affine(params, size)), expected, atol=1e-4)


def test_affine_params_ranges_and_determinism():
    draws = [sample_affine_params(np.random.default_rng(s), (640, 480)) for s in range(300)]
    again = sample_affine_params(np.random.default_rng(5), (640, 480))
    assert again == draws[5]
    scales = np.array([d.scale for d in draws])
    assert scales.min() >= 480 / 200 * 0.75 and scales.max() <= 480 / 200 * 1.5
    assert max(abs(d.rotation) for d in draws) <= 30
    shifts = np.array([[d.center[0] - 320, d.center[1] - 240] for d in draws])
    assert np.all(shifts == np.round(shifts))  # integer shifts
    assert np.all(np.abs(shifts) <= 40 * scales[:, None])
    fixed = sample_affine_params(np.random.default_rng(0), (640, 480), max_translate=0)
    assert fixed.center == (320.0, 240.0)


def test_valid_mask_marks_outside_and_ignored_areas():
    ignore = np.zeros((100, 200), bool)
    ignore[40:60, 90:110] = True
    zoom_out = AffineParams(center=(100.0, 50.0), scale=400 / 200, rotation=0.0)
    mask = warp_valid_mask(ignore, (100, 200), crop_affine(zoom_out, 128), (128, 128))
    assert set(np.unique(mask)) == {0.0, 1.0}
    # the 400-px box maps 200x100 image pixels onto x in [32, 96), y in [48, 80) of 128 px
    assert mask[:40].sum() == 0 and mask[88:].sum() == 0 and mask[:, :28].sum() == 0
    assert mask[52, 40] == 1 and mask[64, 64] == 0  # valid image pixel / ignored centre
    none_mask = warp_valid_mask(None, (100, 200), crop_affine(zoom_out, 128), (128, 128))
    assert none_mask[64, 64] == 1 and none_mask[0, 0] == 0


def test_no_augment_is_deterministic_centred_crop():
    sample = dots_sample(np.random.default_rng(1))
    a, fa = training_views(sample, np.random.default_rng(0), 256, [64], COCO17.flip_index, None)
    b, fb = training_views(sample, np.random.default_rng(9), 256, [64], COCO17.flip_index, None)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(fa[0].mask, fb[0].mask)
    np.testing.assert_allclose(a.affine[:, :2], np.eye(2) * 256 / 240, atol=1e-6)


def _read_bgr_as_official(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION),
                        cv2.COLOR_BGR2RGB)


def test_resize_align_reproduces_tiny_forward_input():
    ref = np.load(require(FIXTURES / "tiny" / "tiny_forward.npz"))["input_rect"]
    image = _read_bgr_as_official(COCO_SAMPLES / "000000000785.jpg")
    resized, center, scale, base = resize_align(image, 256, 1.0, 1.0)
    assert ref.shape == (1, 3, 256, 448) and base == (448, 256)
    np.testing.assert_allclose(normalize(resized), ref[0], rtol=0, atol=1e-6)


def test_resize_align_reproduces_staged_e2e_input():
    ref = np.load(require(FIXTURES / "e2e" / "e2e_tiny_staged.npz"))["input"]
    image = _read_bgr_as_official(COCO_SAMPLES / "000000196141.jpg")
    resized, _, _, _ = resize_align(image, 256, 1.0, 1.0)
    np.testing.assert_allclose(normalize(resized), ref[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("variant", ["noflip_s1", "flip_s1", "flip_ms"])
def test_multi_scale_sizes_match_official_e2e(variant):
    data = json.loads(require(FIXTURES / "e2e" / f"e2e_tiny_{variant}.json").read_text())
    input_size, factors = data["DATASET.INPUT_SIZE"], data["TEST.SCALE_FACTOR"]
    for entry in data["images"]:
        image = _read_bgr_as_official(COCO_SAMPLES / entry["file_name"])
        assert image.shape[:2] == (entry["height"], entry["width"])
        for per in entry["per_scale"]:
            resized, center, scale, base = resize_align(
                image, input_size, per["scale_factor"], min(factors))
            assert [1, 3, *resized.shape[:2]] == per["input_shape"]
            assert center.tolist() == per["center"] and scale.tolist() == per["scale"]
            assert list(base) == entry["base_size_WH"]
        size, _, _ = multi_scale_size(image.shape[:2], input_size, 1.0, min(factors))
        assert list(size) == entry["base_size_WH"]
        assert multi_scale_size(image, input_size, 1.0, min(factors))[0] == size


def test_normalize_by_hand():
    image = np.zeros((2, 3, 3), np.uint8)
    image[1, 2] = [255, 0, 51]
    x = normalize(image)
    assert x.shape == (3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1, 2], [(1 - 0.485) / 0.229, -0.456 / 0.224,
                                            (0.2 - 0.406) / 0.225], rtol=1e-6)


class _ScriptedRng:
    """random() returns the scripted values in order; integers(low, high) records its bounds and
    returns ``low + 1`` (so the shift direction is visible)."""

    def __init__(self, randoms):
        self.randoms, self.bounds = list(randoms), []

    def random(self):
        return self.randoms.pop(0)

    def integers(self, low, high):
        self.bounds.append((low, high))
        return low + 1


@pytest.mark.parametrize("image_wh", [(400, 200), (200, 400)])
def test_mmpose_style_shift_bounds_follow_the_image(image_wh):
    """Hand-worked: zoom = 0.75 + 0.5 * 0.75 = 1.125, rotation = (2 * 0.25 - 1) * 30 = -15.
    HigherHRNet: box side 200 * 1.125 = 225 px, bounds 40 * 225 / 200 = 45 for dx and dy.
    mmpose (HAE): bounds 40 * W * 1.125 / 200 and 40 * H * 1.125 / 200 -> 90 / 45 for a
    400 x 200 image, 45 / 90 for 200 x 400; the box (square frames) is the same 225 px."""
    w, h = image_wh
    hh_rng, mm_rng = _ScriptedRng([0.5, 0.25]), _ScriptedRng([0.5, 0.25])
    hh = sample_affine_params(hh_rng, image_wh, 30.0, 0.75, 1.5, "short", 40.0)
    mm = sample_affine_params(mm_rng, image_wh, 30.0, 0.75, 1.5, "short", 40.0, style="mmpose")
    assert hh_rng.bounds == [(-45, 45), (-45, 45)]
    assert mm_rng.bounds == [(-int(0.225 * w), int(0.225 * w)), (-int(0.225 * h), int(0.225 * h))]
    assert mm.scale == hh.scale == pytest.approx(1.125)
    assert mm.rotation == hh.rotation == pytest.approx(-15.0)
    assert hh.center == (w / 2 - 44, h / 2 - 44)
    assert mm.center == (w / 2 - int(0.225 * w) + 1, h / 2 - int(0.225 * h) + 1)


def test_mmpose_style_reaches_training_views():
    """TrainAugment(style=...) is what training_views draws with (same seed, other shift)."""
    image = np.zeros((100, 300, 3), np.uint8)
    sample = Sample(image, np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32),
                    np.zeros((0, 4), np.float32), None, 1, "x")
    views = {}
    for style in ("higherhrnet", "mmpose"):
        augment = TrainAugment(max_rotation=0.0, flip_prob=0.0, style=style)
        view, _ = training_views(sample, np.random.default_rng(3), 64, [16], COCO17.flip_index,
                                 augment)
        views[style] = view.affine
    params = [sample_affine_params(np.random.default_rng(3), (300, 100), 0.0, 0.75, 1.5, "short",
                                   40.0, style) for style in ("higherhrnet", "mmpose")]
    for style, p in zip(("higherhrnet", "mmpose"), params):
        np.testing.assert_allclose(views[style], crop_affine(p, 64), atol=1e-9)
    with pytest.raises(ValueError, match="style"):
        sample_affine_params(np.random.default_rng(0), (10, 10), style="udp")
