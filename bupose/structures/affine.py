"""2x3 affine matrices (numpy only). The only module that does geometry.

Frames: an affine maps (x, y) pixel coordinates of one frame to another, e.g. image -> input.
``scale`` follows the official HigherHRNet/mmpose convention: a box size in units of 200 pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def _rotate(point: np.ndarray, rot_rad: float) -> np.ndarray:
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    return np.array([point[0] * cs - point[1] * sn, point[0] * sn + point[1] * cs], np.float32)


def _third_point(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = a - b
    return b + np.array([-direction[1], direction[0]], dtype=np.float32)


def affine_from_center_scale(
    center: np.ndarray | tuple[float, float],
    scale: np.ndarray | tuple[float, float] | float,
    rot_deg: float,
    out_wh: tuple[int, int] | np.ndarray,
    inverse: bool = False,
) -> np.ndarray:
    """The official ``get_affine_transform``: box (center, scale*200 px wide) -> out_wh output.

    Args:
        center: (2,) box centre (x, y) in source pixels.
        scale: (2,) box (w, h) in units of 200 px (a scalar means square); only w is used, as in
            the official code.
        rot_deg: rotation in degrees (counter-clockwise in the image as displayed).
        out_wh: output (W, H) in pixels.
        inverse: return the output -> source matrix instead.

    Returns:
        (2, 3) float64 matrix, computed from three float32 points with cv2 like the reference.
    """
    scale_arr = np.asarray(scale, dtype=np.float64)
    if scale_arr.ndim == 0:
        scale_arr = np.array([scale_arr, scale_arr])
    src_w = scale_arr[0] * 200.0
    dst_w, dst_h = float(out_wh[0]), float(out_wh[1])
    rot_rad = np.pi * rot_deg / 180.0
    src_dir = _rotate(np.array([0.0, src_w * -0.5], np.float32), rot_rad)
    dst_dir = np.array([0.0, dst_w * -0.5], np.float32)

    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = np.asarray(center, dtype=np.float32)
    src[1] = src[0] + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + dst_dir
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    if inverse:
        return cv2.getAffineTransform(np.float32(dst), np.float32(src))
    return cv2.getAffineTransform(np.float32(src), np.float32(dst))


def apply_affine(xy: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Map points through a 2x3 affine.

    Args:
        xy: (..., 2) coordinates (x, y).
        affine: (2, 3) matrix.

    Returns:
        (..., 2) float64 mapped coordinates, same leading shape.
    """
    xy = np.asarray(xy, dtype=np.float64)
    a = np.asarray(affine, dtype=np.float64)
    return xy @ a[:, :2].T + a[:, 2]


def to_3x3(affine: np.ndarray) -> np.ndarray:
    """(2, 3) -> (3, 3) homogeneous matrix."""
    m = np.eye(3, dtype=np.float64)
    m[:2] = affine
    return m


def compose(second: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The affine that applies ``first`` then ``second`` (both (2, 3))."""
    return (to_3x3(second) @ to_3x3(first))[:2]


def invert(affine: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine."""
    return cv2.invertAffineTransform(np.asarray(affine, dtype=np.float64))


def hflip_affine(width: int) -> np.ndarray:
    """Horizontal flip of an image ``width`` pixels wide, official convention x' = width - 1 - x."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])
