"""One synthetic crowd image: place people, draw them far to near with occluders, and annotate.

A joint is labelled v=2 when the pixel at its centre shows one of its own limbs, v=1 when it
lies in the image but something else is on top (another person, an occluding object, another
part of the same body, or its own head for a face turned away), and v=0 with coordinates 0 when
it falls outside the image. The segmentation is the person's visible silhouette (polygons from
the label map), the bbox and area are those of the same silhouette (as in COCO).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from bupose.data.synth.body import NUM_KEYPOINTS, Body, PoseParams, build_body, sample_pose
from bupose.data.synth.crowd_index import crowd_index
from bupose.data.synth.render import (
    BACKGROUND_LABEL,
    OCCLUDER_LABEL,
    PARTS_PER_PERSON,
    Clothing,
    decode_label,
    draw_background,
    draw_occluder,
    draw_person,
    finish,
    sample_clothing,
)
from bupose.errors import ConfigError

MIN_VISIBLE_JOINTS = 2  # fewer visible joints: the person is kept unlabelled (num_keypoints 0)
MIN_AREA = 4  # pixels of visible silhouette below which a person is left out


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the generator.

    Attributes:
        size: image (W, H); None picks a random aspect ratio with the long side 512.
        people: (min, max) number of persons per image, inclusive.
        scale: (min, max) person height as a fraction of the image height.
        crowding: 0..1, how strongly people cluster and overlap (0 avoids overlaps).
        occluders: 0..1, how many occluding objects (about 2 * occluders per image).
    """

    size: tuple[int, int] | None = (512, 512)
    people: tuple[int, int] = (1, 8)
    scale: tuple[float, float] = (0.08, 0.9)
    crowding: float = 0.3
    occluders: float = 0.3

    def __post_init__(self) -> None:
        if self.size is not None and min(self.size) < 16:
            raise ConfigError(f"synthetic image size {self.size} is too small (min 16 px)")
        if not 0 <= self.people[0] <= self.people[1]:
            raise ConfigError(f"people range {self.people} must satisfy 0 <= MIN <= MAX")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"scale range {self.scale} must satisfy 0 < MIN <= MAX")
        for name in ("crowding", "occluders"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name} = {getattr(self, name)} must be in [0, 1]")


@dataclass(frozen=True)
class PersonAnnotation:
    """keypoints (17, 3) float32 [x, y, v] image px; bbox (4,) [x, y, w, h]; area (visible
    pixels); segmentation: COCO polygons; facing: psi of the body (not written to JSON)."""

    keypoints: np.ndarray
    bbox: np.ndarray
    area: float
    segmentation: list[list[float]]
    facing: float


@dataclass(frozen=True)
class Scene:
    """image (H, W, 3) uint8 RGB, its persons, and its CrowdPose crowd index (clipped to 1)."""

    image: np.ndarray
    persons: list[PersonAnnotation]
    crowd_index: float


@dataclass(frozen=True)
class _Placed:
    pose: PoseParams
    hip: tuple[float, float]
    height: float
    clothing: Clothing
    depth: float


def generate_scene(rng: np.random.Generator, cfg: SceneConfig) -> Scene:
    """Draw one annotated image; the result depends only on the state of ``rng``."""
    width, height = _image_size(rng, cfg)
    image = draw_background(rng, height, width)
    label = np.zeros((height, width), dtype=np.int32)
    people = _place_people(rng, cfg, width, height)
    n_occ = min(int(rng.poisson(2.0 * cfg.occluders)), 8)
    slots = np.sort(rng.integers(0, len(people) + 1, n_occ))
    bodies: list[Body] = []
    for i in range(len(people) + 1):
        for _ in range(int(np.sum(slots == i))):
            _add_occluder(image, label, rng, bodies)
        if i < len(people):
            p = people[i]
            bodies.append(build_body(p.pose, p.hip, p.height))
            draw_person(image, label, bodies[-1], p.clothing, i)
    image = finish(image, rng)
    persons = _annotate(bodies, label)
    ci = crowd_index(np.stack([p.keypoints for p in persons]) if persons else np.zeros((0, 17, 3)),
                     np.stack([p.bbox for p in persons]) if persons else np.zeros((0, 4)),
                     clip=True)
    return Scene(image, persons, ci)


def _image_size(rng: np.random.Generator, cfg: SceneConfig) -> tuple[int, int]:
    if cfg.size is not None:
        return int(cfg.size[0]), int(cfg.size[1])
    short = int(round(512 * rng.uniform(0.6, 1.0)))
    return (512, short) if rng.random() < 0.6 else (short, 512)


def _place_people(rng: np.random.Generator, cfg: SceneConfig, width: int, height: int
                  ) -> list[_Placed]:
    """Sizes, poses, clothes and mid-hip positions, sorted far (drawn first) to near."""
    n = int(rng.integers(cfg.people[0], cfg.people[1] + 1))
    lo, hi = np.log(cfg.scale[0]), np.log(cfg.scale[1])
    typical = np.exp(rng.uniform(lo, hi))
    placed: list[_Placed] = []
    boxes: list[np.ndarray] = []
    for _ in range(n):
        anchor = placed[rng.integers(len(placed))] if placed and rng.random() < cfg.crowding \
            else None
        base = anchor.height / height if anchor else typical
        frac = float(np.exp(np.clip(np.log(base) + rng.normal(0, 0.25 if anchor is None else
                                                             0.12), lo, hi)))
        h = frac * height
        pose = sample_pose(rng)
        extent = _extent(build_body(pose, (0.0, 0.0), h))
        hip = _position(rng, cfg, anchor, extent, boxes, width, height, h)
        clothing = sample_clothing(rng)
        if anchor is not None and rng.random() < 0.5 * cfg.crowding:  # same uniform as anchor
            a = anchor.clothing
            sleeve = a.shirt if a.sleeve == a.shirt else clothing.skin
            clothing = dataclasses.replace(clothing, shirt=a.shirt, sleeve=sleeve, pants=a.pants,
                                           shoe=a.shoe)
        depth = np.log(h) + 0.3 * (hip[1] + extent[3]) / height + rng.normal(0, 0.05)
        placed.append(_Placed(pose, hip, h, clothing, float(depth)))
        boxes.append(extent + np.array([hip[0], hip[1], hip[0], hip[1]]))
    return sorted(placed, key=lambda p: p.depth)


def _extent(body: Body) -> np.ndarray:
    """[x0, y0, x1, y1] of the keypoints relative to the mid-hip, padded by limb thickness."""
    pad = 0.07 * body.height
    k = body.keypoints
    return np.array([k[:, 0].min() - pad, k[:, 1].min() - pad, k[:, 0].max() + pad,
                     k[:, 1].max() + pad])


def _position(rng: np.random.Generator, cfg: SceneConfig, anchor: _Placed | None,
              extent: np.ndarray, boxes: list[np.ndarray], width: int, height: int, h: float
              ) -> tuple[float, float]:
    """Mid-hip position: next to the anchor in a cluster, else the least overlapping of a few
    random tries (more tries for less crowding)."""
    y_lo, y_hi = -extent[1] - 0.15 * h, height - extent[3] + 0.15 * h
    if y_lo > y_hi:
        y_lo = y_hi = 0.5 * (y_lo + y_hi)
    if anchor is not None:
        dx = rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.45) * anchor.height
        x = float(np.clip(anchor.hip[0] + dx, -0.05 * width, 1.05 * width))
        y = float(np.clip(anchor.hip[1] + rng.normal(0, 0.08 * anchor.height), y_lo, y_hi))
        return x, y
    best, best_overlap = (0.0, 0.0), np.inf
    for _ in range(1 + int(round(19 * (1.0 - cfg.crowding)))):
        x, y = rng.uniform(0.05 * width, 0.95 * width), rng.uniform(y_lo, y_hi)
        overlap = max((_overlap(extent + [x, y, x, y], b) for b in boxes), default=0.0)
        if overlap < best_overlap:
            best, best_overlap = (float(x), float(y)), overlap
        if overlap == 0.0:
            break
    return best


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller of two [x0, y0, x1, y1] boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(iw * ih / small)


def _add_occluder(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                  bodies: list[Body]) -> None:
    """An occluder over a random joint of someone already drawn (else anywhere)."""
    h, w = image.shape[:2]
    if bodies:
        body = bodies[rng.integers(len(bodies))]
        centre = body.keypoints[rng.integers(NUM_KEYPOINTS)] + rng.normal(0, 0.1 * body.height, 2)
        size = rng.uniform(0.15, 0.45) * body.height
    else:
        centre = rng.uniform([0, 0], [w, h])
        size = rng.uniform(0.05, 0.2) * min(h, w)
    draw_occluder(image, label, rng, centre, float(size))


def _annotate(bodies: list[Body], label: np.ndarray) -> list[PersonAnnotation]:
    """COCO annotations of the drawn bodies (index = person index in the label map)."""
    owner = np.where(label >= 2, (label - 2) // PARTS_PER_PERSON, -1)
    persons = []
    for p, body in enumerate(bodies):
        mask = (owner == p).astype(np.uint8)
        area = int(cv2.countNonZero(mask))
        if area < MIN_AREA:
            continue
        x, y, bw, bh = cv2.boundingRect(mask)
        kps = _keypoints(body, p, label)
        if np.sum(kps[:, 2] == 2) < MIN_VISIBLE_JOINTS:
            kps[:] = 0.0
        persons.append(PersonAnnotation(kps, np.array([x, y, bw, bh], dtype=np.float64),
                                        float(area), _polygons(mask, (x, y, bw, bh)),
                                        body.facing))
    return persons


def _keypoints(body: Body, person: int, label: np.ndarray) -> np.ndarray:
    """(17, 3) float32 [x, y, v] with v from the label map (see the module docstring)."""
    h, w = label.shape
    owners = {part.name: part.joints for part in body.parts}
    kps = np.zeros((NUM_KEYPOINTS, 3), dtype=np.float32)
    for j, (x, y) in enumerate(body.keypoints):
        if not (0.0 <= x <= w - 1 and 0.0 <= y <= h - 1):
            continue
        top = int(label[int(round(y)), int(round(x))])
        if body.head_hidden[j] or top == OCCLUDER_LABEL:
            v = 1
        elif top == BACKGROUND_LABEL:
            v = 2
        else:
            who, part = decode_label(top)
            v = 2 if who == person and j in owners[part] else 1
        kps[j] = (x, y, v)
    return kps


def _polygons(mask: np.ndarray, box: tuple[int, int, int, int]) -> list[list[float]]:
    """Outer contours of a binary mask as COCO polygons; the box polygon if none is usable."""
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polys = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    if polys:
        return polys
    x, y, w, h = (float(v) for v in box)
    return [[x, y, x + w, y, x + w, y + h, x, y + h]]
