"""Draw poses on images and tile images into contact sheets (OpenCV, RGB uint8)."""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from bupose.structures.spec import KeypointSpec

Colour = tuple[int, int, int]


def person_colour(index: int) -> Colour:
    """A distinct saturated RGB colour per person (golden-ratio hue steps)."""
    hue = (0.11 + index * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def limb_sides(spec: KeypointSpec) -> list[int]:
    """Side of each skeleton limb: +1 both ends named left_*, -1 both right_*, 0 otherwise."""
    def side(name: str) -> int:
        return 1 if name.startswith("left") else -1 if name.startswith("right") else 0

    sides = []
    for a, b in spec.skeleton:
        sa, sb = side(spec.keypoints[a]), side(spec.keypoints[b])
        sides.append(sa if sa == sb else 0)
    return sides


def _shade(colour: Colour, side: int) -> Colour:
    """The person's colour for left limbs, lighter for right limbs, halfway for the centre."""
    c = np.asarray(colour, dtype=np.float64)
    c = c if side > 0 else c + (0.55 if side < 0 else 0.3) * (255.0 - c)
    return int(c[0]), int(c[1]), int(c[2])


def draw_poses(image: np.ndarray, keypoints: np.ndarray, spec: KeypointSpec,
               scores: np.ndarray | None = None, threshold: float = 0.0,
               thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` with skeletons drawn on it.

    Args:
        image: (H, W, 3) uint8 RGB.
        keypoints: (N, K, 3) [x, y, value] in image pixels; value is the visibility v of ground
            truth or a confidence. Joints with value <= threshold are not drawn, nor are limbs
            touching them (so v=0 joints never appear with the default threshold 0).
        spec: gives the skeleton and which limbs are left or right.
        scores: optional (N,) person scores, written next to each person.
        threshold: joint value threshold.
        thickness: line thickness in pixels (default from the image size).

    Returns:
        (H, W, 3) uint8 RGB. Each person has its own colour; left limbs are drawn in the full
        colour, right limbs lighter, centre limbs in between.
    """
    out = np.ascontiguousarray(image.copy())
    kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, spec.num_keypoints, 3)
    t = thickness or max(1, int(round(min(out.shape[:2]) / 250)))
    sides = limb_sides(spec)
    joint_side = [1 if n.startswith("left") else -1 if n.startswith("right") else 0
                  for n in spec.keypoints]
    for n, person in enumerate(kps):
        colour = person_colour(n)
        shown = person[:, 2] > threshold
        pts = np.round(person[:, :2]).astype(np.int32)
        for (a, b), side in zip(spec.skeleton, sides):
            if shown[a] and shown[b]:
                cv2.line(out, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]),
                         _shade(colour, side), t, cv2.LINE_AA)
        for k in np.flatnonzero(shown):
            centre = (int(pts[k, 0]), int(pts[k, 1]))
            cv2.circle(out, centre, t + 1, _shade(colour, joint_side[k]), -1, cv2.LINE_AA)
            cv2.circle(out, centre, t + 1, (0, 0, 0), 1, cv2.LINE_AA)
        if scores is not None and shown.any():
            top = pts[shown][np.argmin(pts[shown, 1])]
            cv2.putText(out, f"{float(scores[n]):.2f}", (int(top[0]), int(top[1]) - 3 * t),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35 * t, colour, max(1, t // 2), cv2.LINE_AA)
    return out


def make_grid(images: Sequence[np.ndarray], cols: int, pad: int = 4,
              cell_size: tuple[int, int] | None = None,
              background: Colour = (24, 24, 24)) -> np.ndarray:
    """Tile images row by row into one (H, W, 3) uint8 contact sheet.

    Args:
        images: (h_i, w_i, 3) uint8 images.
        cols: images per row.
        pad: pixels between and around cells.
        cell_size: (w, h) to resize every image into (aspect kept); default the largest image,
            with smaller ones not resized.
        background: RGB of the padding.
    """
    if not images:
        raise ValueError("make_grid needs at least one image")
    cols = max(1, min(cols, len(images)))
    rows = (len(images) + cols - 1) // cols
    cw, ch = cell_size or (max(im.shape[1] for im in images), max(im.shape[0] for im in images))
    grid = np.empty((rows * ch + (rows + 1) * pad, cols * cw + (cols + 1) * pad, 3), np.uint8)
    grid[:] = background
    for i, im in enumerate(images):
        if cell_size is not None or im.shape[0] > ch or im.shape[1] > cw:
            f = min(cw / im.shape[1], ch / im.shape[0])
            size = (max(1, round(im.shape[1] * f)), max(1, round(im.shape[0] * f)))
            im = cv2.resize(im, size, interpolation=cv2.INTER_AREA)
        r, c = divmod(i, cols)
        y = pad + r * (ch + pad) + (ch - im.shape[0]) // 2
        x = pad + c * (cw + pad) + (cw - im.shape[1]) // 2
        grid[y:y + im.shape[0], x:x + im.shape[1]] = im
    return grid
