"""Image/keypoint/mask transforms: training augmentation and test-time resize (numpy + cv2).

Training (ALGORITHMS.md §2.2, HigherHRNet ``RandomAffineTransform`` then ``RandomHorizontalFlip``):
centre = image centre + integer shift, box side = short (or long) image side * U[min, max] scale,
rotation U[-max_rotation, max_rotation]. Style "mmpose" (mmpose 0.25 ``BottomUpRandomAffine``,
what HAE trains with, §3.3): the same draws, but the shift bounds come from the zoomed IMAGE
(dx from its width, dy from its height) instead of the square box side, and the box keeps the
image aspect (``_get_scale``: for the square frames used here, a square of the short (or long)
zoomed side, as in HigherHRNet). Every frame (the input and each output resolution) gets
its own affine "box -> size x size" (the same box, so output = input * size / input_size); images
are warped bilinearly with a black border, masks of valid pixels are warped per resolution from the
original image and re-binarised at 0.5 (outside the image = invalid). Flip: pixels mirrored,
keypoints re-indexed with the spec's flip index and x' = W - 1 - x in each frame.

Test time (§2.5 step 1, HigherHRNet ``get_multi_scale_size`` / ``resize_align_multi_scale``):
the short side maps to input_size * scale_factor, the long side is padded up to a multiple of 64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from bupose.data.sample import Sample
from bupose.structures.affine import (
    affine_from_center_scale,
    apply_affine,
    compose,
    hflip_affine,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class AffineParams:
    """One random training crop, shared by every resolution.

    Attributes:
        center: (x, y) box centre in original image pixels.
        scale: box side in units of 200 px (square box).
        rotation: degrees; positive turns the content counter-clockwise as displayed.
    """

    center: tuple[float, float]
    scale: float
    rotation: float


def sample_affine_params(
    rng: np.random.Generator,
    image_wh: tuple[int, int],
    max_rotation: float = 30.0,
    min_scale: float = 0.75,
    max_scale: float = 1.5,
    scale_type: str = "short",
    max_translate: float = 40.0,
    style: str = "higherhrnet",
) -> AffineParams:
    """Draw a training crop as the official ``RandomAffineTransform`` does (same draw order), or
    as mmpose 0.25's ``BottomUpRandomAffine`` (``style="mmpose"``, HAE).

    Args:
        rng: random generator (the only source of randomness).
        image_wh: original image (W, H).
        max_rotation: rotation ~ U[-max_rotation, max_rotation] degrees.
        min_scale, max_scale: box side = base side * U[min_scale, max_scale] (> 1 zooms out).
        scale_type: "short" or "long": the base side is the short or the long image side.
        max_translate: centre shift dx, dy ~ integers in [-max_translate * s, max_translate * s)
            with s the box side / 200 and bounds truncated toward zero (numpy ``randint`` with
            float bounds), i.e. up to 0.2 of the box side for the default 40. With
            ``style="mmpose"`` s is the zoomed image width / 200 for dx and its height / 200
            for dy (up to 0.2 of the zoomed image's width / height).
        style: "higherhrnet" or "mmpose" (module docstring).
    """
    width, height = image_wh
    if scale_type not in ("short", "long"):
        raise ValueError(f"scale_type must be 'short' or 'long', got {scale_type!r}")
    if style not in ("higherhrnet", "mmpose"):
        raise ValueError(f"augmentation style must be 'higherhrnet' or 'mmpose', got {style!r}")
    side = min(width, height) if scale_type == "short" else max(width, height)
    zoom = rng.random() * (max_scale - min_scale) + min_scale
    scale = side / 200 * zoom
    rotation = (rng.random() * 2 - 1) * max_rotation
    cx, cy = width / 2, height / 2
    bound_x = bound_y = max_translate * scale
    if style == "mmpose":  # mmpose img_scale = (W, H) * zoom, bounds trans_factor * it / 200
        bound_x, bound_y = max_translate * width * zoom / 200, max_translate * height * zoom / 200
    if max_translate > 0:
        cx += _randint_like_numpy(rng, bound_x)
        cy += _randint_like_numpy(rng, bound_y)
    return AffineParams(center=(cx, cy), scale=float(scale), rotation=float(rotation))


def _randint_like_numpy(rng: np.random.Generator, bound: float) -> int:
    low, high = int(-bound), int(bound)
    return int(rng.integers(low, high)) if high > low else 0


def crop_affine(params: AffineParams, size: int) -> np.ndarray:
    """(2, 3) float64: original image -> square ``size`` frame of the crop.

    Maps x to R(-rotation) (x - center) * size / (200 * scale) + size / 2, which is the official
    training matrix (``_get_affine_matrix``) and ``get_affine_transform`` with a square box.
    """
    return affine_from_center_scale(
        np.asarray(params.center), params.scale, params.rotation, (size, size)
    )


def warp_image(image: np.ndarray, affine: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
    """Warp (H, W, C) to (h, w, C) = size_wh frame, bilinear, black border (cv2 defaults)."""
    return cv2.warpAffine(image, np.asarray(affine, np.float64), tuple(int(s) for s in size_wh))


def warp_valid_mask(
    ignore_mask: np.ndarray | None,
    image_hw: tuple[int, int],
    affine: np.ndarray,
    size_wh: tuple[int, int],
) -> np.ndarray:
    """Supervision mask of a frame: 1 = supervised, 0 = ignored or outside the source image.

    Args:
        ignore_mask: (H, W) bool True = ignored, or None (everything inside the image valid).
        image_hw: source (H, W).
        affine: (2, 3) source -> frame.
        size_wh: frame (w, h).

    Returns:
        (h, w) float32 in {0, 1}: the valid mask as uint8 0/255, warped bilinearly, /255, > 0.5.
    """
    if ignore_mask is None:
        valid = np.full(image_hw, 255, dtype=np.uint8)
    else:
        valid = np.where(ignore_mask, 0, 255).astype(np.uint8)
    warped = warp_image(valid, affine, size_wh) / 255
    return (warped > 0.5).astype(np.float32)


def transform_keypoints(keypoints: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """(N, K, 3) [x, y, v] -> same with (x, y) mapped by the (2, 3) affine; v unchanged."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    out[..., :2] = apply_affine(out[..., :2], affine)
    return out


def hflip_keypoints(keypoints: np.ndarray, flip_index: Sequence[int], width: int) -> np.ndarray:
    """Mirror (N, K, 3) keypoints in a frame ``width`` wide: joint k takes joint flip_index[k],
    x' = width - 1 - x (official convention)."""
    out = np.array(keypoints, dtype=np.float32, copy=True)[:, list(flip_index)]
    out[..., 0] = width - 1 - out[..., 0]
    return out


def hflip_array(array: np.ndarray) -> np.ndarray:
    """Mirror an image (H, W, C) or a mask (H, W) left-right (contiguous copy)."""
    return np.ascontiguousarray(array[:, ::-1])


def warp_sample(sample: Sample, affine: np.ndarray, size_wh: tuple[int, int]) -> Sample:
    """The sample seen in a new frame: image, keypoints, ignore mask, centres/scales, affine.

    The ignore mask is warped like ``warp_valid_mask`` (outside the source image = ignored); it
    stays None when the sample has none.
    """
    height, width = sample.image.shape[:2]
    mask = None
    if sample.ignore_mask is not None:
        mask = warp_valid_mask(sample.ignore_mask, (height, width), affine, size_wh) < 0.5
    centers, scales = sample.centers, sample.scales
    if centers is not None:
        centers = apply_affine(centers, affine).astype(np.float32)
    if scales is not None:
        zoom = np.sqrt(abs(np.linalg.det(np.asarray(affine)[:, :2])))
        scales = (scales * zoom).astype(np.float32)
    return sample.replace(
        image=warp_image(sample.image, affine, size_wh),
        keypoints=transform_keypoints(sample.keypoints, affine),
        ignore_mask=mask,
        affine=compose(affine, sample.affine),
        centers=centers,
        scales=scales,
    )


def hflip_sample(sample: Sample, flip_index: Sequence[int]) -> Sample:
    """The sample mirrored left-right (flipping twice gives the sample back exactly)."""
    width = sample.image.shape[1]
    centers = sample.centers
    if centers is not None:
        centers = centers.copy()
        centers[:, 0] = width - 1 - centers[:, 0]
    return sample.replace(
        image=hflip_array(sample.image),
        keypoints=hflip_keypoints(sample.keypoints, flip_index, width),
        ignore_mask=None if sample.ignore_mask is None else hflip_array(sample.ignore_mask),
        affine=compose(hflip_affine(width), sample.affine),
        centers=centers,
    )


@dataclass(frozen=True)
class TrainAugment:
    """Training augmentation settings (official HigherHRNet COCO/CrowdPose values as defaults;
    ``style="mmpose"``: mmpose 0.25 / HAE shift bounds, see ``sample_affine_params``)."""

    max_rotation: float = 30.0
    min_scale: float = 0.75
    max_scale: float = 1.5
    scale_type: str = "short"
    max_translate: float = 40.0
    flip_prob: float = 0.5
    style: str = "higherhrnet"


@dataclass
class FrameView:
    """The people of a training sample in one output frame (``size`` x ``size`` map pixels).

    Attributes:
        keypoints: (N, K, 3) float32 [x, y, v] in this frame.
        mask: (size, size) float32, 1 = supervised, 0 = ignored / outside the image.
        affine: (2, 3) float64 original image -> this frame.
    """

    keypoints: np.ndarray
    mask: np.ndarray
    affine: np.ndarray


def training_views(
    sample: Sample,
    rng: np.random.Generator,
    input_size: int,
    output_sizes: Sequence[int],
    flip_index: Sequence[int],
    augment: TrainAugment | None = None,
) -> tuple[Sample, list[FrameView]]:
    """One random augmentation of an original-frame sample, seen at the input and every output.

    Args:
        sample: reader output (original image frame).
        rng: random generator.
        input_size: square network input side (e.g. 512).
        output_sizes: square map sides, lowest resolution first (e.g. [128, 256]).
        flip_index: the spec's flip index.
        augment: settings; None = no randomness (centred short-side box, no rotation, no flip).

    Returns:
        the sample in the input frame (input_size x input_size image, composed affine) and one
        ``FrameView`` per output size.
    """
    height, width = sample.image.shape[:2]
    if augment is None:
        params = AffineParams((width / 2, height / 2), min(width, height) / 200, 0.0)
        flip = False
    else:
        params = sample_affine_params(
            rng, (width, height), augment.max_rotation, augment.min_scale, augment.max_scale,
            augment.scale_type, augment.max_translate, augment.style,
        )
        flip = bool(rng.random() < augment.flip_prob)
    view = warp_sample(sample, crop_affine(params, input_size), (input_size, input_size))
    if flip:
        view = hflip_sample(view, flip_index)
    frames = []
    for size in output_sizes:
        affine = crop_affine(params, size)
        keypoints = transform_keypoints(sample.keypoints, affine)
        mask = warp_valid_mask(sample.ignore_mask, (height, width), affine, (size, size))
        if flip:
            keypoints = hflip_keypoints(keypoints, flip_index, size)
            mask = hflip_array(mask)
            affine = compose(hflip_affine(size), affine)
        frames.append(FrameView(keypoints=keypoints, mask=mask, affine=affine))
    return view, frames


def normalize(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32: /255 then ImageNet mean/std, in float32 as
    torchvision's ToTensor + Normalize."""
    x = np.asarray(image, dtype=np.float32) / np.float32(255)
    x = (x - np.asarray(IMAGENET_MEAN, np.float32)) / np.asarray(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def _ceil64(x: float) -> int:
    """The official ``int((x + 63) // 64 * 64)`` (float floor division, as written there)."""
    return int((x + 63) // 64 * 64)


def multi_scale_size(
    image_hw: tuple[int, int] | np.ndarray, input_size: int, scale_factor: float, min_scale: float
) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Test-time input size, centre and scale of one test scale (official ``get_multi_scale_size``).

    Args:
        image_hw: original image size (H, W), or the (H, W, C) image itself as in the official
            signature.
        input_size: network input size (e.g. 512).
        scale_factor: this test scale s.
        min_scale: the smallest test scale (min of the scale list).

    Returns:
        size_wh: resized (w, h); the short side is ceil64(min_scale * input_size) * s / min_scale,
            the long side ceil64 of the proportional length at min_scale, times s / min_scale.
        center: (2,) float64 (int(W/2 + 0.5), int(H/2 + 0.5)) in image pixels.
        scale: (2,) float64 box (w, h) / 200 in image pixels that maps onto size_wh.
    """
    if isinstance(image_hw, np.ndarray) and image_hw.ndim >= 2:
        image_hw = image_hw.shape[:2]
    h, w = (int(v) for v in image_hw)
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)], dtype=np.float64)
    min_input_size = _ceil64(min_scale * input_size)
    if w < h:
        w_resized = int(min_input_size * scale_factor / min_scale)
        h_resized = int(_ceil64(min_input_size / w * h) * scale_factor / min_scale)
        scale_w = w / 200.0
        scale_h = h_resized / w_resized * w / 200.0
    else:
        h_resized = int(min_input_size * scale_factor / min_scale)
        w_resized = int(_ceil64(min_input_size / h * w) * scale_factor / min_scale)
        scale_h = h / 200.0
        scale_w = w_resized / h_resized * h / 200.0
    return (w_resized, h_resized), center, np.array([scale_w, scale_h], dtype=np.float64)


def resize_align(
    image: np.ndarray, input_size: int, scale_factor: float = 1.0, min_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """Test-time resize of one scale (official ``resize_align_multi_scale``).

    Args:
        image: (H, W, 3) uint8 RGB original image.
        input_size, scale_factor, min_scale: as ``multi_scale_size``.

    Returns:
        resized: (h, w, 3) uint8 image warped by affine_from_center_scale(center, scale, 0,
            (w, h)) (bilinear, black padding on the long side).
        center: (2,) float64, scale: (2,) float64 of this scale (for back-projection).
        base_size_wh: (w, h) of the scale-1 input for this min_scale, the size the official
            test projects every scale's maps to (equals resized's size when scale_factor == 1).
    """
    size_wh, center, scale = multi_scale_size(image.shape[:2], input_size, scale_factor, min_scale)
    base_size_wh, _, _ = multi_scale_size(image.shape[:2], input_size, 1.0, min_scale)
    affine = affine_from_center_scale(center, scale, 0.0, size_wh)
    return warp_image(image, affine, size_wh), center, scale, base_size_wh
