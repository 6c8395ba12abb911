"""Pictures of what the network and the grouping see (``infer --show-maps``, ``bupose demo``).

Every picture is in the image frame: the aggregated maps (``DecoderInputs``, network input
resolution with PROJECT2IMAGE) are warped back with the inverse of the test-time affine (the
``center``/``scale`` the poses are back-projected with), so they line up with the people.

* ``heatmap_overlay``: the maximum over joints of the heatmaps, a JET colour map over the image.
* ``heatmap_grid``: one small overlay per joint, with its name.
* ``tag_colouring``: at every pixel the tag of its strongest joint as a hue (same hue = same
  person for a well-trained model), brightness = the heatmap value.
* ``grouping_picture``: which joint joined which person: each person's joints in its colour,
  joined to the person's centre, with its number and score.
All functions take and return (H, W, 3) uint8 RGB images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bupose.structures.spec import KeypointSpec
from bupose.viz.draw import make_grid, person_colour


def to_image_frame(maps: np.ndarray, image_hw: tuple[int, int], center: Any = None,
                   scale: Any = None) -> np.ndarray:
    """Warp (h, w) or (h, w, C) map-frame arrays to the (H, W) image frame (bilinear; outside the
    map is 0). Without center/scale the map is resized to the image."""
    from bupose.structures.affine import affine_from_center_scale

    maps = np.ascontiguousarray(maps, dtype=np.float32)
    h_img, w_img = image_hw
    if center is None or scale is None:
        return cv2.resize(maps, (w_img, h_img), interpolation=cv2.INTER_LINEAR)
    map_wh = (maps.shape[1], maps.shape[0])
    to_image = affine_from_center_scale(np.asarray(center), np.asarray(scale), 0.0, map_wh,
                                        inverse=True)
    return cv2.warpAffine(maps, np.asarray(to_image, np.float64), (w_img, h_img),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _blend(image: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """image * (1 - weight) + colour * weight, weight (H, W) in [0, 1]."""
    w = np.clip(weight, 0.0, 1.0)[..., None]
    out = image.astype(np.float32) * (1.0 - w) + colour.astype(np.float32) * w
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _dim(image: np.ndarray, keep: float = 0.45) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None].repeat(3, axis=2)
    return (grey.astype(np.float32) * keep).astype(np.uint8)


def _jet(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) RGB JET colours."""
    u8 = np.clip(values * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def heatmap_overlay(image: np.ndarray, heatmaps: np.ndarray, center: Any = None,
                    scale: Any = None, alpha: float = 0.7) -> np.ndarray:
    """The image with max_k heatmaps[k] (K, h, w) in JET colours on top (weight = value)."""
    peak = np.clip(np.asarray(heatmaps, np.float32).max(axis=0), 0.0, 1.0)
    peak = to_image_frame(peak, image.shape[:2], center, scale)
    return _blend(_dim(image, 0.8), _jet(peak), alpha * np.sqrt(peak))


def heatmap_grid(image: np.ndarray, heatmaps: np.ndarray, spec: KeypointSpec,
                 center: Any = None, scale: Any = None, cols: int = 6,
                 cell: int = 192) -> np.ndarray:
    """One overlay per joint (the spec's names written on each), tiled ``cols`` per row."""
    cells = []
    for k, name in enumerate(spec.keypoints[: len(heatmaps)]):
        tile = heatmap_overlay(image, heatmaps[k: k + 1], center, scale)
        f = cell / max(tile.shape[:2])
        size = (max(1, round(tile.shape[1] * f)), max(1, round(tile.shape[0] * f)))
        tile = cv2.resize(tile, size, interpolation=cv2.INTER_AREA)
        cv2.putText(tile, name, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1,
                    cv2.LINE_AA)
        cells.append(tile)
    return make_grid(cells, cols=cols, cell_size=(cell, cell))


def tag_colouring(image: np.ndarray, heatmaps: np.ndarray, tags: np.ndarray,
                  center: Any = None, scale: Any = None) -> np.ndarray:
    """Hue = the first tag value of each pixel's strongest joint, brightness = its heatmap value.

    Args:
        heatmaps: (K, h, w). tags: (K, h, w, L) (only tag dimension 0 is shown).
    Tag values are mapped to hues between the 2nd and 98th percentile of the tags at confident
    pixels (heatmap > 0.1), so people with distinct tags get distinct hues.
    """
    heat = np.asarray(heatmaps, np.float32)
    tag = np.asarray(tags, np.float32)[..., 0]
    strongest = heat.argmax(axis=0)
    value = np.take_along_axis(heat, strongest[None], axis=0)[0]
    t = np.take_along_axis(tag, strongest[None], axis=0)[0]
    sure = value > 0.1
    lo, hi = np.percentile(t[sure], (2, 98)) if sure.sum() > 10 else (t.min(), t.max())
    hue = np.clip((t - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0) * 0.83
    hsv = np.stack([hue * 179.0, np.full_like(hue, 255.0), np.full_like(hue, 255.0)], axis=-1)
    colour = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    colour = to_image_frame(colour, image.shape[:2], center, scale)
    weight = to_image_frame(np.sqrt(np.clip(value, 0.0, 1.0)), image.shape[:2], center, scale)
    return _blend(_dim(image), colour, weight)


def grouping_picture(image: np.ndarray, keypoints: np.ndarray, spec: KeypointSpec,
                     scores: Sequence[float] | None = None) -> np.ndarray:
    """Each person's found joints (value > 0) in its colour, joined to its centre (the mean of
    its joints) and labelled with the joint index; ``#n score`` at the centre.

    Args:
        keypoints: (N, K, 3) [x, y, value] image pixels.
    """
    out = np.ascontiguousarray(_dim(image, 0.6))
    t = max(1, round(min(out.shape[:2]) / 300))
    for n, person in enumerate(np.asarray(keypoints, np.float64).reshape(-1, spec.num_keypoints,
                                                                          3)):
        found = person[:, 2] > 0
        if not found.any():
            continue
        colour = person_colour(n)
        centre = person[found, :2].mean(axis=0)
        c = (int(round(centre[0])), int(round(centre[1])))
        for k in np.flatnonzero(found):
            p = (int(round(person[k, 0])), int(round(person[k, 1])))
            cv2.line(out, c, p, colour, t, cv2.LINE_AA)
            cv2.circle(out, p, 2 * t + 1, colour, -1, cv2.LINE_AA)
            cv2.putText(out, str(k), (p[0] + 2 * t, p[1] - 2 * t), cv2.FONT_HERSHEY_SIMPLEX,
                        0.3 * t, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.drawMarker(out, c, colour, cv2.MARKER_STAR, 6 * t + 6, t, cv2.LINE_AA)
        label = f"#{n}" + (f" {float(scores[n]):.2f}" if scores is not None else "")
        cv2.putText(out, label, (c[0] + 3 * t, c[1] + 3 * t), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * t,
                    colour, max(1, t), cv2.LINE_AA)
    return out


def write_jpeg(path: str | Path, image: np.ndarray, quality: int = 90) -> Path:
    """Encode an RGB image as JPEG and write it atomically."""
    from bupose.errors import DataError
    from bupose.utils.io import atomic_write_bytes

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DataError(f"{path}: cannot encode the picture")
    return atomic_write_bytes(path, buf.tobytes())


def write_map_pictures(out_dir: str | Path, stem: str, image: np.ndarray, inputs: Any,
                       keypoints: np.ndarray, scores: Sequence[float], spec: KeypointSpec
                       ) -> list[Path]:
    """``<stem>_heatmaps.jpg`` (overlay), ``<stem>_joints.jpg`` (per joint),
    ``<stem>_tags.jpg`` (when the maps have tags) and ``<stem>_grouping.jpg`` in ``out_dir``.

    Args:
        inputs: the image's ``DecoderInputs`` (heatmaps (K, h, w), tags (K, h, w, L) or None,
            center, scale).
        keypoints, scores: the people found (image pixels), for the grouping picture.
    """
    out = Path(out_dir)
    heat = _numpy(inputs.heatmaps)
    center, scale = inputs.center, inputs.scale
    written = [write_jpeg(out / f"{stem}_heatmaps.jpg", heatmap_overlay(image, heat, center,
                                                                        scale)),
               write_jpeg(out / f"{stem}_joints.jpg", heatmap_grid(image, heat, spec, center,
                                                                   scale))]
    if inputs.tags is not None:
        tags = tag_colouring(image, heat, _numpy(inputs.tags), center, scale)
        written.append(write_jpeg(out / f"{stem}_tags.jpg", tags))
    written.append(write_jpeg(out / f"{stem}_grouping.jpg",
                              grouping_picture(image, keypoints, spec, scores)))
    return written


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
