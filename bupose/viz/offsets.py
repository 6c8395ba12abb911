"""``--show-maps`` pictures of SimplePose V2 (offsets) models: heatmaps in the image frame and
the guiding-offset field at the joints found.

The maps are at stride s of the padded network input: cell (i, j) is input pixel
(s*j + (s-1)/2, s*i + (s-1)/2), image pixel = (input pixel + meta_offset) / meta_scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bupose.structures.spec import KeypointSpec
from bupose.viz.maps import grouping_picture, heatmap_grid, heatmap_overlay, write_jpeg


def heatmaps_to_image(heatmaps: np.ndarray, image_hw: tuple[int, int], meta_offset: Any,
                      meta_scale: Any, stride: int = 4) -> np.ndarray:
    """(K, h, w) stride-s maps -> (K, H, W) float32 in the image frame (bilinear, 0 outside)."""
    (ox, oy), (sx, sy) = np.asarray(meta_offset, float), np.asarray(meta_scale, float)
    centre = (stride - 1) / 2
    to_image = np.array([[stride / sx, 0, (centre + ox) / sx],
                         [0, stride / sy, (centre + oy) / sy]])
    size = (image_hw[1], image_hw[0])
    return np.stack([cv2.warpAffine(np.ascontiguousarray(m, np.float32), to_image, size,
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                     for m in heatmaps])


def offset_field(image: np.ndarray, keypoints: np.ndarray, maps: Any,
                 skeleton: Sequence[tuple[int, int]], stride: int = 4) -> np.ndarray:
    """The image (dimmed) with, for every person and limb a -> b whose joint a was found, an
    arrow from a along the predicted guiding offset (where the offset says b is)."""
    from bupose.decoders.offsets import sample_bilinear

    out = (cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None].repeat(3, 2) * 0.5).astype(np.uint8)
    offset, scale = np.asarray(maps.meta_offset, float), np.asarray(maps.meta_scale, float)
    h, w = maps.offsets.shape[1:]
    vectors = maps.offsets.reshape(len(skeleton), -1, h, w)[:, :2]
    for person, kps in enumerate(keypoints):
        colour = tuple(int(c) for c in cv2.applyColorMap(
            np.uint8([[(person * 47) % 256]]), cv2.COLORMAP_HSV)[0, 0][::-1])
        for limb, (a, _) in enumerate(skeleton):
            if kps[a, 2] <= 0:
                continue
            xy_in = np.rint(kps[a, :2] * scale - offset).astype(int)
            if not (0 <= xy_in[0] < w * stride and 0 <= xy_in[1] < h * stride):
                continue
            v = sample_bilinear(vectors, np.array([limb]), xy_in[1:2], xy_in[:1], stride)[0]
            end = (xy_in + v + offset) / scale
            cv2.arrowedLine(out, tuple(int(round(c)) for c in kps[a, :2]),
                            tuple(int(round(c)) for c in end), colour, 1, cv2.LINE_AA,
                            tipLength=0.2)
    return out


def write_offset_pictures(out_dir: str | Path, stem: str, image: np.ndarray, maps: Any,
                          poses: Any, spec: KeypointSpec,
                          skeleton: Sequence[tuple[int, int]]) -> list[Path]:
    """``<stem>_heatmaps.jpg``, ``_joints.jpg``, ``_offsets.jpg`` and ``_grouping.jpg``.

    Args:
        maps: the image's ``OffsetMaps`` (heatmaps, offsets, meta_offset, meta_scale).
        poses: the people found (``Poses``, image pixels).
    """
    out = Path(out_dir)
    heat = heatmaps_to_image(maps.heatmaps, image.shape[:2], maps.meta_offset, maps.meta_scale)
    return [write_jpeg(out / f"{stem}_heatmaps.jpg", heatmap_overlay(image, heat)),
            write_jpeg(out / f"{stem}_joints.jpg", heatmap_grid(image, heat, spec)),
            write_jpeg(out / f"{stem}_offsets.jpg",
                       offset_field(image, poses.keypoints, maps, skeleton)),
            write_jpeg(out / f"{stem}_grouping.jpg",
                       grouping_picture(image, poses.keypoints, spec, poses.scores))]
