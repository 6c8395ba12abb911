"""OffsetPredictor: the official SimplePose V2 test path (ALGORITHMS.md §4.7; reference
``evaluate.py``, ``transforms/scale.py``, ``transforms/pad.py``, ``decoder/factory.py``).

    image (H,W,3) uint8 RGB
      -> resize (cv2 cubic): long edge = input_size then centre pad to input_size x input_size
         ("long-edge", default), or height = input_size then right/bottom pad to a multiple of
         128 ("fixed-height"); pad colour (124, 116, 104); ImageNet normalisation
      -> model on [image; flipped image], last stack: heatmaps (K,h,w), offsets (2L,h,w)
      -> fuse_flip (heatmaps averaged with the mirrored flipped maps; offsets mirrored, x negated,
         limbs re-indexed, averaged; limbs whose mirror is the reversed limb keep the original)
      -> decode_offsets (input pixels) -> back_project (image pixels) -> Poses

``Poses`` report a joint not found as (0, 0, 0) and score = sum of the joints' heatmap values / K,
the score ``evaluate.py`` writes. (The official results file writes the not-found joints at the
back-projected (0, 0), i.e. offset / scale, with a 0/1 flag in place of the value.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from bupose.decoders.offsets import (
    COCO_OFFSET_SKELETON,
    OffsetParams,
    back_project,
    decode_offsets,
    limb_flip_index,
)
from bupose.inference.poses import Poses
from bupose.structures.spec import KeypointSpec

PAD_VALUE = (124, 116, 104)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
RESIZE_MODES = ("long-edge", "fixed-height")


@dataclass
class OffsetMaps:
    """One image's fused maps, as the decoder sees them (what ``--save-maps`` stores).

    Attributes:
        heatmaps: (K, h, w) float32 at stride 4 of the network input.
        offsets: (2L, h, w) float32 (4L with concatenated flip offsets), input pixels.
        meta_offset: (2,) float64 (-pad_left, -pad_top).
        meta_scale: (2,) float64 resize factors ((W'-1)/(W-1), (H'-1)/(H-1)).
    """

    heatmaps: np.ndarray
    offsets: np.ndarray
    meta_offset: np.ndarray
    meta_scale: np.ndarray

    def to_numpy(self) -> dict[str, np.ndarray]:
        return {"heatmaps": self.heatmaps, "offsets": self.offsets,
                "meta_offset": self.meta_offset, "meta_scale": self.meta_scale}


def resize_image(image: np.ndarray, input_size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``RescaleLongAbsolute`` / ``RescaleHighAbsolute``: cv2 cubic resize.

    Returns:
        (resized image, meta_scale (2,) float64 = ((W'-1)/(W-1), (H'-1)/(H-1))).
    """
    h, w = image.shape[:2]
    if mode == "long-edge":
        s = input_size / max(h, w)
        tw, th = (int(w * s), input_size) if h > w else (input_size, int(h * s))
    elif mode == "fixed-height":
        tw, th = int(w * (input_size / h)), input_size
    else:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    resized = cv2.resize(image, (tw, th), interpolation=cv2.INTER_CUBIC)
    # reference quirk 7: (target - 1) / (orig - 1) scale factors
    return resized, np.array([(tw - 1) / (w - 1), (th - 1) / (h - 1)])


def pad_image(image: np.ndarray, input_size: int, mode: str, max_stride: int = 128
              ) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``CenterPad(input_size)`` (long-edge) or ``RightDownPad(max_stride)``.

    Returns:
        (padded image, meta_offset (2,) float64 = (-left, -top)).
    """
    h, w = image.shape[:2]
    if mode == "long-edge":
        left, top = max(int((input_size - w) / 2.0), 0), max(int((input_size - h) / 2.0), 0)
        right, bottom = max(input_size - w - left, 0), max(input_size - h - top, 0)
    else:
        left = top = 0
        right, bottom = -w % max_stride, -h % max_stride
    padded = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    padded[:] = np.asarray(PAD_VALUE, np.uint8)
    padded[top:top + h, left:left + w] = image
    return padded, -np.array([left, top], np.float64)


def normalize(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32: /255, then ImageNet mean/std."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None, None]
    return x.sub(mean).div(std)


def fuse_flip(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    keypoint_flip: Sequence[int],
    limb_flip: Sequence[int],
    limb_reverse: Sequence[int],
    concat: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Reference ``PostProcess.flip_augment`` for one image.

    Args:
        heatmaps: (2, K, h, w) [original, flipped image's output].
        offsets: (2, 2L, h, w) likewise, input pixels.
        keypoint_flip, limb_flip, limb_reverse: ``spec.flip_index`` and ``limb_flip_index``.
        concat: ``--cat-flip-offset``: stack the original and the mirrored flipped offsets into
            4-vectors instead of averaging them (reversed limbs: the original twice).

    Returns:
        heatmaps (K, h, w), offsets (2L, h, w) or (4L, h, w) float32.
    """
    heatmaps = np.asarray(heatmaps, np.float32)
    fused_hm = (heatmaps[0] + heatmaps[1][list(keypoint_flip), :, ::-1]) / np.float32(2)
    n, _, h, w = offsets.shape
    vec = np.asarray(offsets, np.float32).reshape(n, -1, 2, h, w)
    mirrored = vec[1][:, :, :, ::-1].copy()
    mirrored[:, 0] *= -1
    mirrored = mirrored[list(limb_flip)]
    reverse = list(limb_reverse)
    if concat:
        fused = np.concatenate((vec[0], mirrored), axis=1)
        fused[reverse, 2:] = vec[0][reverse]
    else:
        fused = (vec[0] + mirrored) / np.float32(2)
        fused[reverse] = vec[0][reverse]
    return np.ascontiguousarray(fused_hm), np.ascontiguousarray(fused.reshape(-1, h, w))


def poses_from_decoded(
    poses: np.ndarray, meta_offset: np.ndarray, meta_scale: np.ndarray
) -> Poses:
    """(M, K, 6) input-pixel people -> Poses in image pixels: (0, 0, 0) for joints not found,
    score = sum of the heatmap values / K (``evaluate.py``)."""
    image = back_project(poses, meta_offset, meta_scale)
    found = poses[..., 0] > 0  # quirk 5: a found joint has x > 0 and y > 0
    keypoints = np.where(found[..., None], image[..., :3], 0).astype(np.float32)
    scores = keypoints[..., 2].astype(np.float64).sum(axis=-1) / max(poses.shape[1], 1)
    return Poses(keypoints.reshape(len(poses), poses.shape[1], 3), scores)  # also 0 people


class OffsetPredictor:
    """One image in, the people in it out, as the official ``evaluate.py`` (module docstring).

    Args:
        model: SimplePose network: ``model(x) -> (heatmaps (B,S,K,h,w), offsets (B,S,2L,h,w),
            ...)``; the last stack is used.
        spec: keypoint spec (flip index).
        params: decoding settings (default: the README evaluation flags).
        input_size: long edge (long-edge) or height (fixed-height) of the network input.
        resize_mode: "long-edge" or "fixed-height".
        flip: average with the horizontally flipped image's maps.
        cat_flip_offset: stack the flip offsets as 4-vectors (``--cat-flip-offset``).
        skeleton: the L directed limbs of the offset channels.
        device: torch device of the model.
    """

    def __init__(self, model: Any, spec: KeypointSpec, params: OffsetParams | None = None,
                 input_size: int = 640, resize_mode: str = "long-edge", flip: bool = True,
                 cat_flip_offset: bool = False,
                 skeleton: Sequence[tuple[int, int]] = COCO_OFFSET_SKELETON,
                 device: str | torch.device = "cpu") -> None:
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
        if input_size < 32:
            raise ValueError(f"input size must be >= 32, got {input_size}")
        multiple = getattr(model, "input_multiple", 1)  # long-edge: the input is size x size
        if resize_mode == "long-edge" and input_size % multiple:
            raise ValueError(f"input size {input_size} is not a multiple of {multiple}, which "
                             "this hourglass needs with --resize-mode long-edge")
        self.model, self.spec, self.params = model, spec, params or OffsetParams()
        self.input_size, self.resize_mode, self.flip = input_size, resize_mode, flip
        self.cat_flip_offset, self.skeleton = cat_flip_offset, tuple(skeleton)
        self.device = torch.device(device)
        self.limb_flip, self.limb_reverse = limb_flip_index(self.skeleton, spec.flip_index)

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> (network input (3, H', W'), meta_offset, meta_scale)."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        resized, meta_scale = resize_image(image, self.input_size, self.resize_mode)
        padded, meta_offset = pad_image(resized, self.input_size, self.resize_mode)
        return normalize(padded), meta_offset, meta_scale

    @torch.no_grad()
    def maps(self, image: np.ndarray) -> OffsetMaps:
        """The fused last-stack maps of one image."""
        x, meta_offset, meta_scale = self.preprocess(image)
        batch = torch.stack((x, torch.flip(x, [-1]))) if self.flip else x[None]
        out = self.model(batch.to(self.device))
        heatmaps = out[0][:, -1].float().cpu().numpy()
        offsets = out[1][:, -1].float().cpu().numpy()
        if self.flip:
            hm, off = fuse_flip(heatmaps, offsets, self.spec.flip_index, self.limb_flip,
                                self.limb_reverse, self.cat_flip_offset)
        else:
            hm, off = heatmaps[0], offsets[0]
        return OffsetMaps(hm, off, meta_offset, meta_scale)

    def decode(self, maps: OffsetMaps) -> Poses:
        """Group fused maps into people in image pixels."""
        decoded = decode_offsets(maps.heatmaps, maps.offsets, self.params, self.skeleton)
        return poses_from_decoded(decoded.poses, maps.meta_offset, maps.meta_scale)

    def __call__(self, image: np.ndarray) -> Poses:
        return self.decode(self.maps(image))
