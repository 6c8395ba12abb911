"""Drawing for the synthetic crowds: people, backgrounds, occluding objects, camera noise.

Everything draws with OpenCV in image pixels (pixel centres at integer coordinates) on an RGB
uint8 image and, for people and occluders, also on an int32 label map without anti-aliasing, so
the scene can tell which part of whom is on top at each pixel. Randomness comes only from the
numpy Generator passed in, so a scene is a pure function of its seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bupose.data.synth.body import Body, Head, Part

SHIFT = 4  # fixed-point bits for sub-pixel drawing
_ONE = 1 << SHIFT

BACKGROUND_LABEL, OCCLUDER_LABEL = 0, 1
PARTS_PER_PERSON = 32
PART_NAMES: tuple[str, ...] = (
    "neck", "torso", "waist", "head",
    *(f"{side}_{p}" for side in ("left", "right")
      for p in ("upper_arm", "forearm", "hand", "thigh", "shin", "foot")),
)
PART_INDEX = {name: i for i, name in enumerate(PART_NAMES)}

Colour = tuple[int, int, int]

_SKIN = np.array([[255, 224, 196], [241, 194, 160], [224, 172, 130], [198, 134, 96],
                  [160, 106, 70], [120, 78, 52], [86, 56, 40]], dtype=np.float64)
_HAIR = np.array([[25, 20, 18], [60, 40, 28], [110, 74, 40], [200, 160, 100], [150, 150, 150],
                  [150, 60, 30]], dtype=np.float64)


@dataclass(frozen=True)
class Clothing:
    """RGB colours of one person's materials (see body.Part.material)."""

    skin: Colour
    hair: Colour
    shirt: Colour
    sleeve: Colour
    pants: Colour
    legwear: Colour
    shoe: Colour

    def colour(self, material: str, side: int) -> Colour:
        """The material's colour with the side cue: the person's left darker, right lighter."""
        c = np.asarray(getattr(self, material), dtype=np.float64)
        if side > 0:
            c = 0.68 * c
        elif side < 0:
            c = c + 0.22 * (255.0 - c)
        return _rgb(c)


def _rgb(c: np.ndarray) -> Colour:
    c = np.clip(np.round(c), 0, 255).astype(int)
    return int(c[0]), int(c[1]), int(c[2])


def random_colour(rng: np.random.Generator, lo: int = 0, hi: int = 256) -> Colour:
    return _rgb(rng.integers(lo, hi, 3))


def sample_clothing(rng: np.random.Generator) -> Clothing:
    """Random skin tone, hair and clothes (long or short sleeves and legs)."""
    skin = _SKIN[rng.integers(len(_SKIN))] + rng.normal(0, 8, 3)
    hair = _HAIR[rng.integers(len(_HAIR))] + rng.normal(0, 8, 3)
    shirt, pants = random_colour(rng), random_colour(rng, 0, 200)
    sleeve = shirt if rng.random() < 0.6 else _rgb(skin)
    legwear = pants if rng.random() < 0.8 else _rgb(skin)
    return Clothing(_rgb(skin), _rgb(hair), shirt, sleeve, pants, legwear,
                    random_colour(rng, 0, 120))


def _fx(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32)


def _circle(img: np.ndarray, centre: np.ndarray, r: float, colour: tuple, aa: bool) -> None:
    c = _fx(centre)
    cv2.circle(img, (int(c[0]), int(c[1])), max(int(round(r * _ONE)), 1), colour, -1,
               cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def _polygon(img: np.ndarray, points: np.ndarray, colour: tuple, aa: bool) -> None:
    cv2.fillPoly(img, [_fx(points)], colour, cv2.LINE_AA if aa else cv2.LINE_8, SHIFT)


def capsule(img: np.ndarray, p: np.ndarray, q: np.ndarray, r0: float, r1: float,
            colour: tuple, aa: bool = True) -> None:
    """A tapered capsule from p (radius r0) to q (radius r1), image pixels."""
    d = q - p
    n = float(np.hypot(d[0], d[1]))
    if n > 1e-6:
        normal = np.array([-d[1], d[0]]) / n
        quad = np.stack([p + normal * r0, q + normal * r1, q - normal * r1, p - normal * r0])
        _polygon(img, quad, colour, aa)
    _circle(img, p, r0, colour, aa)
    _circle(img, q, r1, colour, aa)


def _draw_part(image: np.ndarray, label: np.ndarray, part: Part, colour: Colour,
               label_id: int) -> None:
    edge = _rgb(0.55 * np.asarray(colour, dtype=np.float64))
    if part.kind == "capsule":
        p, q = part.points
        r0, r1 = part.radii
        outline = min(r0, r1) > 2.0
        if outline:
            capsule(image, p, q, r0 + 0.8, r1 + 0.8, edge)
        capsule(image, p, q, r0, r1, colour)
        capsule(label, p, q, r0, r1, (label_id,), aa=False)
    elif part.kind == "polygon":
        _polygon(image, part.points, colour, True)
        cv2.polylines(image, [_fx(part.points)], True, edge, 1, cv2.LINE_AA, SHIFT)
        _polygon(label, part.points, (label_id,), False)


def _draw_head(image: np.ndarray, label: np.ndarray, head: Head, hidden: np.ndarray,
               clothing: Clothing, label_id: int) -> None:
    r = head.radius
    skin = np.asarray(clothing.skin, dtype=np.float64)
    _circle(image, head.centre, r + 0.8, _rgb(0.55 * skin), True)
    _circle(image, head.centre, r, clothing.skin, True)
    _circle(label, head.centre, r, (label_id,), False)
    _draw_hair(image, head, clothing.hair)
    if not hidden[0]:  # face cue: only a head turned towards the camera shows a face
        for eye, eye_hidden in zip(head.eyes, hidden[1:3]):
            if not eye_hidden:
                _circle(image, eye, max(0.14 * r, 0.5), (20, 20, 30), True)
        _circle(image, head.nose, max(0.12 * r, 0.5), _rgb(0.75 * skin), True)
        mouth = head.nose + 0.9 * (head.nose - head.eyes.mean(axis=0))
        side = np.array([-head.up[1], head.up[0]])
        capsule(image, mouth - 0.2 * r * side, mouth + 0.2 * r * side, max(0.05 * r, 0.4),
                max(0.05 * r, 0.4), (150, 40, 50))
    for ear, ear_hidden in zip(head.ears, hidden[3:5]):
        if not ear_hidden:
            _circle(image, ear, max(0.22 * r, 0.5), _rgb(0.85 * skin), True)
            _circle(label, ear, max(0.22 * r, 0.5), (label_id,), False)


def _draw_hair(image: np.ndarray, head: Head, colour: Colour) -> None:
    """Hair cap: the top half of the head seen from the front, the whole head from the back."""
    back = 0.5 * (1.0 - np.cos(head.yaw))  # 0 front .. 1 back
    extent = np.radians(190.0 + 170.0 * back)
    side = np.array([-head.up[1], head.up[0]])  # image right of an upright head
    direction = head.up - 0.8 * np.sin(head.yaw) * side
    centre_angle = np.arctan2(direction[1], direction[0])
    t = np.linspace(centre_angle - extent / 2, centre_angle + extent / 2, 24)
    rim = head.centre + 1.04 * head.radius * np.stack([np.cos(t), np.sin(t)], axis=1)
    _polygon(image, np.vstack([head.centre[None], rim]), colour, True)


def draw_person(image: np.ndarray, label: np.ndarray, body: Body, clothing: Clothing,
                person_index: int) -> None:
    """Draw ``body`` far part to near part; the label map gets person and part ids."""
    base = 2 + person_index * PARTS_PER_PERSON
    for part in body.parts:
        label_id = base + PART_INDEX[part.name]
        if part.kind == "head":
            _draw_head(image, label, body.head, body.head_hidden, clothing, label_id)
        else:
            _draw_part(image, label, part, clothing.colour(part.material, part.side), label_id)


def decode_label(label: int) -> tuple[int, str]:
    """(person index, part name) of a person label id (>= 2)."""
    person, part = divmod(label - 2, PARTS_PER_PERSON)
    return person, PART_NAMES[part]


def draw_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Cluttered background (H, W, 3) uint8: gradient, low-frequency texture, random shapes and
    limb-like distractor strokes."""
    c0 = rng.uniform(0, 255, 3)
    c1 = rng.uniform(0, 255, 3)
    a = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * np.cos(a) + ys * np.sin(a)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    image = c0.astype(np.float32) + t[..., None] * (c1 - c0).astype(np.float32)
    grid = rng.integers(3, 24)
    noise = rng.standard_normal((grid, grid, 3), dtype=np.float32) * rng.uniform(5, 40)
    image += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    image = np.clip(image, 0, 255).astype(np.uint8)
    scale = min(height, width)
    for _ in range(int(rng.integers(3, 15))):
        _random_shape(image, rng, scale)
    for _ in range(int(rng.integers(0, 6))):
        _distractor_stroke(image, rng, scale)
    return image


def _random_shape(image: np.ndarray, rng: np.random.Generator, scale: int) -> None:
    h, w = image.shape[:2]
    centre = rng.uniform([0, 0], [w, h])
    size = rng.uniform(0.03, 0.35) * scale
    colour = random_colour(rng)
    kind = rng.integers(4)
    if kind == 0:
        _polygon(image, _box(centre, size, size * rng.uniform(0.3, 2), rng.uniform(0, np.pi)),
                 colour, True)
    elif kind == 1:
        _circle(image, centre, size / 2, colour, True)
    elif kind == 2:
        _polygon(image, centre + rng.uniform(-size, size, (int(rng.integers(3, 7)), 2)),
                 colour, True)
    else:
        pts = centre + np.cumsum(rng.uniform(-size, size, (int(rng.integers(2, 6)), 2)), axis=0)
        cv2.polylines(image, [_fx(pts)], False, colour, int(rng.integers(1, 4)), cv2.LINE_AA,
                      SHIFT)


def _distractor_stroke(image: np.ndarray, rng: np.random.Generator, scale: int) -> None:
    """Two or three joined capsules that look like a limb but belong to nobody."""
    h, w = image.shape[:2]
    length = rng.uniform(0.03, 0.2) * scale
    radius = length * rng.uniform(0.12, 0.3)
    colour = _rgb(_SKIN[rng.integers(len(_SKIN))]) if rng.random() < 0.5 else random_colour(rng)
    p = rng.uniform([0, 0], [w, h])
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 4))):
        q = p + length * np.array([np.cos(angle), np.sin(angle)])
        capsule(image, p, q, radius, radius * 0.85, colour)
        p, angle, radius = q, angle + rng.normal(0, 0.8), radius * 0.85


def _box(centre: np.ndarray, w: float, h: float, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2
    return centre + corners @ np.array([[c, s], [-s, c]])


def draw_occluder(image: np.ndarray, label: np.ndarray, rng: np.random.Generator,
                  centre: np.ndarray, size: float) -> None:
    """An opaque object (crate, pole, bush or sign) of about ``size`` pixels around ``centre``,
    marked OCCLUDER_LABEL in the label map."""
    colour = random_colour(rng)
    kind = rng.integers(4)
    if kind == 0:  # striped crate
        box = _box(centre, size, size * rng.uniform(0.4, 1.0), rng.normal(0, 0.1))
        _solid(image, label, box, colour)
        stripe = _rgb(0.7 * np.asarray(colour, dtype=np.float64))
        for f in (0.25, 0.6):
            top, bottom = box[0] + f * (box[1] - box[0]), box[3] + f * (box[2] - box[3])
            width = 0.08 * (box[1] - box[0])
            _polygon(image, np.stack([top, top + width, bottom + width, bottom]), stripe, True)
    elif kind == 1:  # pole
        pole = _box(centre, size * rng.uniform(0.08, 0.2), size * 3, rng.normal(0, 0.05))
        _solid(image, label, pole, colour)
    elif kind == 2:  # bush or balls
        for _ in range(int(rng.integers(1, 4))):
            c = centre + rng.normal(0, 0.2 * size, 2)
            r = size * rng.uniform(0.25, 0.5)
            _circle(image, c, r, colour, True)
            _circle(label, c, r, (OCCLUDER_LABEL,), False)
    else:  # sign on a post
        _solid(image, label, _box(centre + [0, 0.6 * size], 0.1 * size, 1.4 * size, 0.0), colour)
        _solid(image, label, _box(centre, size, 0.6 * size, rng.normal(0, 0.1)), colour)


def _solid(image: np.ndarray, label: np.ndarray, polygon: np.ndarray, colour: Colour) -> None:
    _polygon(image, polygon, colour, True)
    _polygon(label, polygon, (OCCLUDER_LABEL,), False)


def finish(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera effects: brightness/contrast jitter, optional slight blur, sensor noise."""
    out = image.astype(np.float32)
    out = out * rng.uniform(0.85, 1.15) + rng.uniform(-15, 15)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (3, 3), rng.uniform(0.4, 0.9))
    out += rng.standard_normal(out.shape, dtype=np.float32) * rng.uniform(1.0, 6.0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
