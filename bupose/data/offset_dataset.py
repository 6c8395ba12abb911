"""SimplePose V2 (OffsetGuided) training items: annotations, mask_miss, augmentation, targets.

Reference: ``data/dataset.py``, ``transforms/annotations.py``, ``transforms/affine.py``
(ALGORITHMS.md §4.2-4.3). Frames: annotations in image pixels; the augmentation maps them with
one 3x3 matrix into the square input (``input_size``, 512 for COCO); targets are at stride 4.

* images: those with an annotation having some v > 0 (the reference's filter);
* annotations (P, K, 4) x, y, v, s_k of the people with ``iscrowd == 0 and num_keypoints > 0``,
  s_k = sqrt(bbox_w * bbox_h) * σ_k; people with ``area <= 32²`` get v := 0;
* mask_miss (H, W) uint8, 255 = supervised: 0 on the segmentation of people with
  ``num_keypoints <= 0`` or ``area <= 32²`` and on the crowd region minus the person masks that
  come before the crowd entry in annotation order (the reference's order-dependent rule); more
  than one crowd entry is an error in the reference, here a DataError;
* augmentation (``OffsetAugment``): flip, rotation U[-r, r], scale U[min, max] of the original
  pixel size, x/y stretch U[min, max], integer translation U[-t, t] per axis, plus the
  re-centring of the keypoint box (``offset_affine``); cv2 cubic warp, border (124, 116, 104);
  mask_miss border 255; flipped keypoints swap left/right channels; s_k × sqrt(sx·sy); joints at
  x <= 0, y <= 0, x > W, y > H get v := 0. The reference's optional annotation jitter and colour
  augmentation (p 0.2, 0.02) are not reproduced (they do not change the targets' rules).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from bupose.codecs.offsets import COCO_OFFSET_SKELETON, encode_offset_targets
from bupose.data.coco import segmentation_mask
from bupose.data.transforms import normalize
from bupose.errors import DataError
from bupose.structures.spec import KeypointSpec

PAD_VALUE = (124, 116, 104)
SMALL_AREA = 32 * 32


def offset_annotations(anns: Sequence[dict[str, Any]], sigmas: Sequence[float]) -> np.ndarray:
    """(P, K, 4) float32 x, y, v, s_k of the non-crowd people with keypoints (image px)."""
    people = [a for a in anns if a.get("iscrowd", 0) == 0 and a.get("num_keypoints", 0) > 0]
    k = len(sigmas)
    out = np.zeros((len(people), k, 4), np.float32)
    for i, ann in enumerate(people):
        out[i, :, :3] = np.asarray(ann["keypoints"], np.float32).reshape(k, 3)
        w, h = ann["bbox"][2], ann["bbox"][3]
        out[i, :, 3] = math.sqrt(h * w) * np.asarray(sigmas)
        if ann["area"] <= SMALL_AREA:
            out[i, :, 2] = 0
    return out


def offset_mask_miss(anns: Sequence[dict[str, Any]], height: int, width: int,
                     source: str = "annotations") -> np.ndarray:
    """(H, W) uint8 mask, 255 = supervised (module docstring for the rule)."""
    seen = np.zeros((height, width), np.uint8)
    miss = np.zeros((height, width), np.uint8)
    crowd = None
    for ann in anns:
        seg = ann.get("segmentation")
        where = f"{source}: annotation id {ann.get('id')}"
        m = (segmentation_mask(seg, height, width, where).astype(np.uint8) if seg
             else np.zeros_like(seen))
        if ann.get("iscrowd", 0):
            if crowd is not None:
                raise DataError(f"{where}: more than one crowd annotation in an image")
            crowd = m & (1 - seen)  # minus the person masks seen so far (reference order rule)
            continue
        seen |= m
        if ann.get("num_keypoints", 0) <= 0 or ann.get("area", 0) <= SMALL_AREA:
            miss |= m
    if crowd is not None:
        miss |= crowd
    return ((1 - miss) * 255).astype(np.uint8)


@dataclass(frozen=True)
class OffsetAugParams:
    """One draw of the augmentation: flip, rotation (deg), scale, stretches, translation (px)."""

    flip: bool = False
    rotate: float = 0.0
    scale: float = 1.0
    stretch_x: float = 1.0
    stretch_y: float = 1.0
    translate_x: int = 0
    translate_y: int = 0

    @property
    def scale_xy(self) -> tuple[float, float]:
        return self.stretch_x * self.scale, self.stretch_y * self.scale


@dataclass(frozen=True)
class OffsetAugment:
    """Augmentation ranges; defaults are the README training command (ALGORITHMS.md §4.3)."""

    flip_prob: float = 0.5
    max_rotate: float = 45.0
    min_scale: float = 0.5
    max_scale: float = 2.0
    min_stretch: float = 0.95
    max_stretch: float = 1.05
    max_translate: float = 150.0

    def draw(self, rng: np.random.Generator) -> OffsetAugParams:
        u = rng.uniform(0.0, 1.0, size=7)
        return OffsetAugParams(
            flip=bool(u[0] < self.flip_prob), rotate=(2 * u[1] - 1) * self.max_rotate,
            scale=self.min_scale + (self.max_scale - self.min_scale) * u[2],
            stretch_x=self.min_stretch + (self.max_stretch - self.min_stretch) * u[3],
            stretch_y=self.min_stretch + (self.max_stretch - self.min_stretch) * u[4],
            translate_x=int((2 * u[5] - 1) * self.max_translate),
            translate_y=int((2 * u[6] - 1) * self.max_translate))


def roi_center(keypoints: np.ndarray, image_wh: tuple[int, int]) -> np.ndarray:
    """Centre (x, y) float32 of the labelled keypoints' box, floor-halved as the reference;
    the image centre (W // 2, H // 2) when there are no people."""
    if len(keypoints) == 0:
        return (np.asarray(image_wh, np.float32) // 2).astype(np.float32)
    xy = keypoints[keypoints[:, :, 2] > 0][:, :2]
    if len(xy) == 0:  # the reference would fail on np.min of nothing
        return (np.asarray(image_wh, np.float32) // 2).astype(np.float32)
    return ((xy.min(0) + xy.max(0)) // 2).astype(np.float32)


def offset_affine(p: OffsetAugParams, center: np.ndarray, image_wh: tuple[int, int],
                  out_wh: tuple[int, int]) -> np.ndarray:
    """(3, 3) float64 image -> input: centre to origin, rotate, scale, flip, to the output
    centre, then translate by the offsets plus the keypoint-box re-centring × scale."""
    sx, sy = p.scale_xy
    c, s = math.cos(math.radians(p.rotate)), math.sin(math.radians(p.rotate))
    cx, cy = (np.asarray(image_wh) - 1).astype(np.float32) / 2
    tx = p.translate_x + (cx - center[0]) * sx
    ty = p.translate_y + (cy - center[1]) * sy
    to_zero = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    rot = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1.0]])
    scale = np.diag([sx, sy, 1.0])
    flip = np.diag([-1.0 if p.flip else 1.0, 1.0, 1.0])
    to_out = np.array([[1.0, 0, (out_wh[0] - 1) / 2], [0, 1.0, (out_wh[1] - 1) / 2], [0, 0, 1]])
    shift = np.array([[1.0, 0, tx], [0, 1.0, ty], [0, 0, 1.0]])
    return shift @ to_out @ flip @ scale @ rot @ to_zero


def warp_offset_sample(image: np.ndarray, keypoints: np.ndarray, mask: np.ndarray,
                       matrix: np.ndarray, params: OffsetAugParams, out_wh: tuple[int, int],
                       flip_index: Sequence[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp image (H, W, 3), keypoints (P, K, 4) and mask (H, W) uint8 with ``matrix`` (3, 3).

    Returns the input image, keypoints (P, K, 4) in input px (left/right swapped when
    ``params.flip``, s_k × sqrt(sx·sy), v := 0 outside the input) and the input mask.
    """
    m = matrix[:2]
    out = cv2.warpAffine(image, m, out_wh, flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=PAD_VALUE)
    mask_in = cv2.warpAffine(mask, m, out_wh, flags=cv2.INTER_CUBIC,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    kps = keypoints.astype(np.float32).copy()
    if len(kps):
        xy1 = np.concatenate([kps[..., :2], np.ones_like(kps[..., :1])], -1).astype(np.float64)
        kps[..., :2] = xy1 @ m.T
        if params.flip:
            kps = kps[:, list(flip_index)]
        sx, sy = params.scale_xy
        kps[..., 3] *= math.sqrt(sx * sy)
        x, y = kps[..., 0], kps[..., 1]
        kps[(x <= 0) | (y <= 0) | (x > out_wh[0]) | (y > out_wh[1]), 2] = 0
    return out, kps, mask_in


class OffsetTrainDataset(Dataset):
    """Training items of the ``offsets`` method.

    Args:
        reader: ``CocoKeypoints`` (raw ``annotations(image_id)``, ``image_info``, samples).
        spec: keypoint spec (flip index, OKS sigmas for s_k).
        input_size: square input side (512). stride: target stride (4).
        sigma: heatmap σ in input px (7). augment: ranges (None = the reference's fixed
            parameters: no flip/rotation/scale/stretch/translation, box re-centring only).
        skeleton: directed limbs. seed: item i of epoch e always draws the same parameters.
        clip, fill_size, min_jscale: encoder settings (``codecs.offsets``).

    Items: dict(image (3, S, S) float32, heatmaps (K, h, w), offsets (2L, h, w) +inf undefined,
    scales (K, h, w) NaN undefined, instance_scales (2L, h, w), mask_miss (1, h, w) bool).
    """

    def __init__(self, reader: Any, spec: KeypointSpec, input_size: int = 512, stride: int = 4,
                 sigma: float = 7.0, augment: OffsetAugment | None = None,
                 skeleton: Sequence[tuple[int, int]] = COCO_OFFSET_SKELETON,
                 seed: int | None = None, clip: float = 0.01, fill_size: int = 7,
                 min_jscale: float = 1.0) -> None:
        self.reader, self.spec = reader, spec
        self.input_size, self.stride, self.sigma = int(input_size), int(stride), float(sigma)
        self.augment, self.skeleton, self.seed = augment, tuple(skeleton), seed
        self.clip, self.fill_size, self.min_jscale = clip, fill_size, min_jscale
        self.epoch = 0
        self._index = {image_id: i for i, image_id in enumerate(reader.image_ids)}
        self.ids = [i for i in reader.image_ids if any(  # the reference's image filter
            any(v > 0 for v in a.get("keypoints", [])[2::3]) for a in reader.annotations(i))]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def item(self, image_id: int, params: OffsetAugParams) -> dict[str, torch.Tensor]:
        """The training item of one image under the given augmentation parameters."""
        sample = self.reader[self._index[image_id]]
        anns = self.reader.annotations(image_id)
        h, w = sample.image.shape[:2]
        kps = offset_annotations(anns, self.spec.sigmas)
        mask = offset_mask_miss(anns, h, w, str(getattr(self.reader, "ann_file", "annotations")))
        size = (self.input_size, self.input_size)
        matrix = offset_affine(params, roi_center(kps, (w, h)), (w, h), size)
        image, kps, mask_in = warp_offset_sample(sample.image, kps, mask, matrix, params, size,
                                                 self.spec.flip_index)
        t = encode_offset_targets(kps, mask_in, self.stride, self.sigma, self.clip,
                                  self.skeleton, self.spec.sigmas, self.fill_size,
                                  self.min_jscale)
        return {"image": torch.from_numpy(normalize(image)),
                "heatmaps": torch.from_numpy(t.heatmaps), "offsets": torch.from_numpy(t.offsets),
                "scales": torch.from_numpy(t.scales),
                "instance_scales": torch.from_numpy(t.instance_scales),
                "mask_miss": torch.from_numpy(t.mask_miss)}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = (np.random.default_rng([self.seed, self.epoch, index]) if self.seed is not None
               else np.random.default_rng())
        params = self.augment.draw(rng) if self.augment is not None else OffsetAugParams()
        return self.item(self.ids[index], params)
