"""A 2-D articulated person on the COCO-17 skeleton: pose sampling and body geometry.

The body is built in a local frame measured in person heights (x to the image right, y down,
origin at the mid-hip), then tilted, scaled and moved into the image. The person stands on a
"cylinder" model of the horizontal plane: ``facing`` psi = 0 faces the camera, psi = pi shows the
back. A body point at angle phi from the person's front (positive towards the person's left) and
radius r projects to x = r sin(phi + psi) with depth z = -r cos(phi + psi) (z < 0 is nearer to
the camera). So when facing the camera the person's left side is on the image right, and the face
(nose, eyes) is visible only while it points towards the camera; this is the front/back cue that
makes left and right learnable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# COCO-17 keypoint indices (bupose.structures.spec.COCO17 order).
NOSE, L_EYE, R_EYE, L_EAR, R_EAR = 0, 1, 2, 3, 4
L_SHO, R_SHO, L_ELB, R_ELB, L_WRI, R_WRI = 5, 6, 7, 8, 9, 10
L_HIP, R_HIP, L_KNE, R_KNE, L_ANK, R_ANK = 11, 12, 13, 14, 15, 16
NUM_KEYPOINTS = 17

# Proportions in person heights (head top to ankle is about 0.99 when standing straight).
HEAD_R, HEAD_Y, NECK_Y = 0.062, -0.44, -0.345
SHOULDER_W, HIP_W = 0.105, 0.062
UPPER_ARM, FOREARM, THIGH, SHIN = 0.165, 0.15, 0.245, 0.24
R_UPPER_ARM, R_FOREARM, R_HAND, R_THIGH, R_SHIN, R_NECK = 0.032, 0.026, 0.024, 0.046, 0.035, 0.027
STANDING_HEIGHT = -(HEAD_Y - HEAD_R) + THIGH + SHIN

# Pose presets: (arm upper angle, elbow bend, thigh angle, knee bend) ranges in degrees. Angles are
# measured from "straight down", positive = outwards (away from the body midline in the image).
_PRESETS: dict[str, tuple[tuple[float, float], ...]] = {
    "stand": ((2, 25), (-25, 5), (0, 10), (-6, 4)),
    "walk": ((-15, 35), (-60, 0), (-12, 28), (-45, 0)),
    "akimbo": ((30, 55), (-135, -95), (2, 15), (-8, 4)),
    "arms_up": ((115, 178), (-45, 25), (0, 18), (-10, 4)),
    "reach": ((55, 120), (-25, 20), (0, 20), (-20, 4)),
    "fold": ((-20, 12), (-140, -80), (0, 12), (-8, 4)),
    "squat": ((0, 70), (-100, 0), (40, 85), (-135, -60)),
    "lunge": ((0, 60), (-60, 10), (15, 60), (-70, 0)),
}
_PRESET_NAMES = tuple(_PRESETS)
_PRESET_P = np.array([0.2, 0.2, 0.08, 0.1, 0.14, 0.08, 0.1, 0.1])


@dataclass(frozen=True)
class PoseParams:
    """Articulation of one person (angles in radians).

    Attributes:
        facing: psi, body yaw; 0 faces the camera, pi shows the back.
        head_turn: extra yaw of the head relative to the body.
        head_roll: sideways lean of the head about the neck.
        tilt: in-plane rotation of the whole body about the mid-hip (counter-clockwise on screen).
        arms: (2, 2) rows (left, right), columns (upper-arm angle, elbow bend); outwards positive.
        legs: (2, 2) rows (left, right), columns (thigh angle, knee bend).
        arm_depth: (2,) depth offset of each arm from its shoulder (< 0 in front of the torso).
        leg_depth: (2,) depth offset of each leg from its hip.
        build: width factor of shoulders, hips and limbs (about 0.85 to 1.2).
    """

    facing: float
    head_turn: float
    head_roll: float
    tilt: float
    arms: np.ndarray
    legs: np.ndarray
    arm_depth: np.ndarray
    leg_depth: np.ndarray
    build: float


@dataclass(frozen=True)
class Part:
    """One drawable body part in image pixels.

    Attributes:
        name: e.g. "torso", "left_forearm", "head".
        kind: "capsule" (points (2,2), radii (r0, r1)), "polygon" (points (P,2)) or "head"
            (points (1,2) centre, radii (r,)).
        material: "shirt", "sleeve", "pants", "skin" or "shoe" (colours come from the clothing).
        side: +1 person's left, -1 right, 0 centre (left and right get different shades).
        joints: keypoint indices this part may cover without hiding them (their own limbs).
        z: depth; parts are drawn from large z (far) to small z (near).
    """

    name: str
    kind: str
    points: np.ndarray
    radii: tuple[float, ...]
    material: str
    side: int
    joints: tuple[int, ...]
    z: float


@dataclass(frozen=True)
class Head:
    """Head geometry in image pixels.

    Attributes:
        centre: (2,) head centre.
        radius: head radius.
        up: (2,) unit vector from the neck to the head centre.
        yaw: psi of the head (body facing plus head turn).
        eyes: (2, 2) rows (left, right); nose: (2,); ears: (2, 2) rows (left, right).
    """

    centre: np.ndarray
    radius: float
    up: np.ndarray
    yaw: float
    eyes: np.ndarray
    nose: np.ndarray
    ears: np.ndarray


@dataclass(frozen=True)
class Body:
    """A posed person in image pixels.

    Attributes:
        keypoints: (17, 2) float64 joint centres [x, y] in image pixels (COCO-17 order).
        head_hidden: (17,) bool, True for face keypoints turned away from the camera (nose and
            eyes on a back view, the far ear in profile): labelled, but self-occluded (v=1).
        parts: drawing order, far to near.
        head: the head's face geometry.
        height: standing height in pixels.
        facing: psi of the body.
    """

    keypoints: np.ndarray
    head_hidden: np.ndarray
    parts: tuple[Part, ...]
    head: Head
    height: float
    facing: float


def sample_pose(rng: np.random.Generator) -> PoseParams:
    """Draw a plausible pose: a preset (stand, walk, wave ...) with jittered angles and view."""
    preset = _PRESETS[_PRESET_NAMES[rng.choice(len(_PRESET_NAMES), p=_PRESET_P)]]
    ranges = np.radians(np.array(preset))  # (4, 2)
    angles = rng.uniform(ranges[:, 0], ranges[:, 1], size=(2, 4))  # (side, 4)
    if rng.random() < 0.3:  # one arm does something else (waving, pointing)
        other = np.radians(np.array(_PRESETS[("arms_up", "reach")[rng.integers(2)]]))
        angles[rng.integers(2), :2] = rng.uniform(other[:2, 0], other[:2, 1])
    view = rng.random()
    if view < 0.55:
        facing = rng.normal(0.0, 0.45)
    elif view < 0.85:
        facing = np.pi + rng.normal(0.0, 0.45)
    else:
        facing = rng.choice([-1.0, 1.0]) * np.pi / 2 + rng.normal(0.0, 0.2)
    tilt = rng.normal(0.0, 0.08) if rng.random() > 0.05 else rng.uniform(-1.6, 1.6)
    front = rng.random() < 0.6  # arms crossing the body are usually in front of it
    return PoseParams(
        facing=float(facing),
        head_turn=float(np.clip(rng.normal(0.0, 0.3), -0.6, 0.6)),
        head_roll=float(rng.normal(0.0, 0.1)),
        tilt=float(tilt),
        arms=angles[:, :2].copy(),
        legs=angles[:, 2:].copy(),
        arm_depth=rng.uniform(-0.08, 0.02, 2) if front else rng.uniform(-0.02, 0.08, 2),
        leg_depth=rng.uniform(-0.03, 0.03, 2),
        build=float(rng.uniform(0.85, 1.2)),
    )


def _chain(start: np.ndarray, outward: float, angles: np.ndarray, lengths: tuple[float, float]
           ) -> tuple[np.ndarray, np.ndarray]:
    """Two-segment limb from ``start``: (middle joint, end joint) in the local frame."""
    a1 = angles[0]
    a2 = angles[0] + angles[1]
    mid = start + lengths[0] * np.array([outward * np.sin(a1), np.cos(a1)])
    end = mid + lengths[1] * np.array([outward * np.sin(a2), np.cos(a2)])
    return mid, end


def _local_skeleton(pose: PoseParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints (17, 2) and depths (17,) in the local frame, and head centre (2,)."""
    psi = pose.facing
    kps = np.zeros((NUM_KEYPOINTS, 2))
    z = np.zeros(NUM_KEYPOINTS)
    out_left = 1.0 if np.cos(psi) >= 0 else -1.0  # image direction of the person's left
    for side, sign in ((0, 1.0), (1, -1.0)):
        sho, hip = (L_SHO, L_HIP) if side == 0 else (R_SHO, R_HIP)
        for j, w, y in ((sho, SHOULDER_W, NECK_Y), (hip, HIP_W, 0.0)):
            w = w * pose.build
            kps[j] = (sign * w * np.cos(psi), y)
            z[j] = sign * w * np.sin(psi)
        outward = sign * out_left
        arm, leg = (UPPER_ARM, FOREARM), (THIGH, SHIN)
        kps[sho + 2], kps[sho + 4] = _chain(kps[sho], outward, pose.arms[side], arm)
        kps[hip + 2], kps[hip + 4] = _chain(kps[hip], outward, pose.legs[side], leg)
        z[[sho + 2, sho + 4]] = z[sho] + pose.arm_depth[side]
        z[[hip + 2, hip + 4]] = z[hip] + pose.leg_depth[side]
    neck = np.array([0.0, NECK_Y])
    roll = np.array([[np.cos(pose.head_roll), -np.sin(pose.head_roll)],
                     [np.sin(pose.head_roll), np.cos(pose.head_roll)]])
    head = neck + roll @ np.array([0.0, HEAD_Y - NECK_Y])
    yaw = psi + pose.head_turn
    # (angle phi from the face direction, radius and height in head radii) of the face points
    face = {NOSE: (0.0, 1.05, 0.2), L_EYE: (0.45, 0.92, -0.15), R_EYE: (-0.45, 0.92, -0.15),
            L_EAR: (1.65, 0.95, 0.0), R_EAR: (-1.65, 0.95, 0.0)}
    for j, (phi, r, dy) in face.items():
        offset = HEAD_R * np.array([r * np.sin(phi + yaw), dy])
        kps[j] = head + roll @ offset
        z[j] = -r * np.cos(phi + yaw) * HEAD_R
    return kps, z, head


def build_body(pose: PoseParams, hip_xy: tuple[float, float], height: float) -> Body:
    """Pose a person of standing ``height`` pixels with the mid-hip at ``hip_xy`` (image px)."""
    kps_local, z, head_local = _local_skeleton(pose)
    c, s = np.cos(pose.tilt), np.sin(pose.tilt)
    rot = height * np.array([[c, s], [-s, c]])  # counter-clockwise on screen (y points down)
    origin = np.asarray(hip_xy, dtype=np.float64)

    def to_image(p: np.ndarray) -> np.ndarray:
        return origin + np.asarray(p) @ rot.T

    kps = to_image(kps_local)
    hidden = np.zeros(NUM_KEYPOINTS, dtype=bool)
    hr = HEAD_R
    hidden[NOSE] = z[NOSE] > -0.3 * hr
    hidden[[L_EYE, R_EYE]] = z[[L_EYE, R_EYE]] > -0.2 * hr
    hidden[[L_EAR, R_EAR]] = z[[L_EAR, R_EAR]] > 0.4 * hr
    head = _head(pose, to_image(head_local), to_image(np.array([0.0, NECK_Y])), height, kps)
    parts = _parts(pose, kps, z, kps_local, to_image, height, head.centre)
    return Body(kps, hidden, parts, head, float(height), pose.facing)


def _head(pose: PoseParams, centre: np.ndarray, neck: np.ndarray, height: float,
          kps: np.ndarray) -> Head:
    return Head(centre, HEAD_R * height, _unit(centre - neck), pose.facing + pose.head_turn,
                kps[[L_EYE, R_EYE]].copy(), kps[NOSE].copy(), kps[[L_EAR, R_EAR]].copy())


def _parts(pose: PoseParams, kps: np.ndarray, z: np.ndarray, local: np.ndarray,
           to_image: Callable[[np.ndarray], np.ndarray], height: float, head_centre: np.ndarray
           ) -> tuple[Part, ...]:
    """All drawable parts, sorted far to near."""
    b = pose.build * height
    cos_psi = abs(np.cos(pose.facing))
    ws = (max(SHOULDER_W * cos_psi, 0.06) + 0.022) * pose.build
    wh = (max(HIP_W * cos_psi, 0.05) + 0.032) * pose.build
    torso = to_image(np.array([[-ws, NECK_Y - 0.012], [ws, NECK_Y - 0.012], [wh, 0.025],
                               [-wh, 0.025]]))
    waist = to_image(np.array([[-wh, -0.07], [wh, -0.07], [wh + 0.004, 0.04],
                               [-wh - 0.004, 0.04]]))
    neck = to_image(np.array([[0.0, NECK_Y], [0.0, HEAD_Y + 0.5 * HEAD_R]]))
    parts = [
        Part("neck", "capsule", neck, (R_NECK * b, R_NECK * b), "skin", 0, (), 0.004),
        Part("torso", "polygon", torso, (), "shirt", 0, (L_SHO, R_SHO, L_HIP, R_HIP), 0.0),
        Part("waist", "polygon", waist, (), "pants", 0, (L_HIP, R_HIP), -0.0005),
        Part("head", "head", head_centre[None], (HEAD_R * height,), "skin", 0,
             (NOSE, L_EYE, R_EYE, L_EAR, R_EAR), -0.003),
    ]
    for side_i, side, name in ((0, 1, "left"), (1, -1, "right")):
        sho, hip = (L_SHO, L_HIP) if side_i == 0 else (R_SHO, R_HIP)
        elb, wri, kne, ank = sho + 2, sho + 4, hip + 2, hip + 4
        za, zl = z[elb], z[kne]
        hand_dir = _unit(kps[wri] - kps[elb])
        foot_dir = _foot_direction(ank, kne, pose, to_image, local)
        parts += [
            Part(f"{name}_upper_arm", "capsule", kps[[sho, elb]], (R_UPPER_ARM * b, 0.9 *
                 R_UPPER_ARM * b), "shirt", side, (sho, elb), za),
            Part(f"{name}_forearm", "capsule", kps[[elb, wri]], (R_FOREARM * b, 0.85 *
                 R_FOREARM * b), "sleeve", side, (elb, wri), za - 1e-4),
            Part(f"{name}_hand", "capsule", np.stack([kps[wri], kps[wri] + hand_dir * 0.03 *
                 height]), (R_HAND * b, 0.8 * R_HAND * b), "skin", side, (wri,), za - 2e-4),
            Part(f"{name}_thigh", "capsule", kps[[hip, kne]], (R_THIGH * b, 0.85 * R_THIGH * b),
                 "pants", side, (hip, kne), zl),
            Part(f"{name}_shin", "capsule", kps[[kne, ank]], (R_SHIN * b, 0.8 * R_SHIN * b),
                 "legwear", side, (kne, ank), zl - 1e-4),
            Part(f"{name}_foot", "capsule", np.stack([kps[ank], kps[ank] + foot_dir * 0.055 *
                 height]), (0.027 * b, 0.022 * b), "shoe", side, (ank,), zl - 2e-4),
        ]
    return tuple(sorted(parts, key=lambda p: -p.z))


def _foot_direction(ank: int, kne: int, pose: PoseParams,
                    to_image: Callable[[np.ndarray], np.ndarray], local: np.ndarray) -> np.ndarray:
    """Unit image direction of the foot: along the shin, turned towards the facing side."""
    shin = _unit(local[ank] - local[kne])
    forward = np.sin(pose.facing)  # > 0: feet point to the image right
    foot_local = _unit(0.5 * shin + np.array([forward, 0.0]) + np.array([0.0, 0.15]))
    return _unit(to_image(foot_local) - to_image(np.zeros(2)))


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.array([0.0, 1.0])
