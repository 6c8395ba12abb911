"""Pose tracking across video frames: greedy OKS matching with a lost-track timeout.

Each frame's people are matched to the live tracks by object keypoint similarity (OKS, the COCO
formula with the spec's sigmas) between the person and the track's last pose. Pairs are taken
greedily, most similar first, while OKS >= ``oks_threshold``; a person left over starts a new
track (ids count up from 0 and are never reused). A track not matched for more than
``max_lost`` frames is dropped, so a person who comes back later gets a new id. A track that
missed frames is also compared at the position its velocity predicts (per frame, the mean
displacement of its joints between matches, averaged with the previous estimate), and the better
of the two OKS counts, so people walking through a few missed detections keep their id.

    for frame in video:  ids = tracker.update(keypoints (N, K, 3), frame.index)  # (N,) int
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def _box_area(keypoints: np.ndarray, visible: np.ndarray) -> float:
    """Area (px^2) of the box around the visible joints (>= 1 px per side)."""
    if not visible.any():
        return 1.0
    pts = keypoints[visible, :2]
    w, h = pts.max(0) - pts.min(0)
    return float(max(w, 1.0) * max(h, 1.0))


def pose_oks(a: np.ndarray, b: np.ndarray, sigmas: Sequence[float],
             threshold: float = 0.0) -> float:
    """Symmetric OKS between two poses (K, 3) [x, y, value] in the same pixel frame.

    Joints with value > ``threshold`` are visible. Each joint visible in both contributes
    exp(-d^2 / (2 s^2 k^2)) with k = 2 sigma and s^2 the mean of the two poses' box areas (the
    COCO formula, with the box area standing for the segment area); joints visible in one pose
    only contribute 0. The mean is over joints visible in either pose (0 when there are none).
    """
    va, vb = a[:, 2] > threshold, b[:, 2] > threshold
    either = va | vb
    if not either.any():
        return 0.0
    both = va & vb
    area = 0.5 * (_box_area(a, va) + _box_area(b, vb))
    k2 = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2
    d2 = np.sum((a[:, :2].astype(np.float64) - b[:, :2]) ** 2, axis=1)
    e = np.exp(-d2 / (2.0 * area * k2))
    return float(np.sum(e[both]) / np.sum(either))


@dataclass
class Track:
    """A live track: its id, its last pose (K, 3), the frame it was last matched in and its
    smoothed velocity (2,) in pixels per frame."""

    track_id: int
    keypoints: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def predicted(self, frame: int) -> np.ndarray:
        """The last pose moved by the velocity to ``frame``."""
        out = self.keypoints.copy()
        out[:, :2] += self.velocity * (frame - self.last_frame)
        return out

    def match(self, keypoints: np.ndarray, frame: int, threshold: float) -> None:
        """Continue the track with ``keypoints`` seen at ``frame``."""
        both = (keypoints[:, 2] > threshold) & (self.keypoints[:, 2] > threshold)
        if both.any() and frame > self.last_frame:
            shift = keypoints[both, :2].mean(0) - self.keypoints[both, :2].mean(0)
            self.velocity = 0.5 * (self.velocity + shift / (frame - self.last_frame))
        self.keypoints, self.last_frame = keypoints, frame


class PoseTracker:
    """Greedy OKS tracker (module docstring).

    Args:
        sigmas: (K,) OKS sigmas of the keypoint spec.
        oks_threshold: lowest OKS that continues a track.
        max_lost: frames a track may go unmatched before it is dropped.
        joint_threshold: joints with a value <= this are not used.
    """

    def __init__(self, sigmas: Sequence[float], oks_threshold: float = 0.3,
                 max_lost: int = 30, joint_threshold: float = 0.0) -> None:
        if not 0.0 <= oks_threshold <= 1.0:
            raise ValueError(f"oks_threshold must be in [0, 1], got {oks_threshold}")
        if max_lost < 0:
            raise ValueError(f"max_lost must be >= 0, got {max_lost}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.oks_threshold, self.max_lost = float(oks_threshold), int(max_lost)
        self.joint_threshold = float(joint_threshold)
        self.tracks: list[Track] = []
        self.next_id = 0
        self._frame = -1

    def _similarity(self, keypoints: np.ndarray, track: Track) -> float:
        """OKS with the track's last pose or, when better, with its predicted pose."""
        still = pose_oks(keypoints, track.keypoints, self.sigmas, self.joint_threshold)
        if not track.velocity.any():
            return still
        moved = pose_oks(keypoints, track.predicted(self._frame), self.sigmas,
                         self.joint_threshold)
        return max(still, moved)

    def update(self, keypoints: np.ndarray, frame: int | None = None) -> np.ndarray:
        """Assign track ids to one frame's people.

        Args:
            keypoints: (N, K, 3) [x, y, value] in frame pixels.
            frame: the frame index (default: one more than the previous call's).

        Returns:
            (N,) int64 track ids.
        """
        self._frame = self._frame + 1 if frame is None else int(frame)
        kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, len(self.sigmas), 3)
        self.tracks = [t for t in self.tracks if self._frame - t.last_frame <= self.max_lost]
        ids = np.full(len(kps), -1, dtype=np.int64)
        pairs = sorted(
            ((self._similarity(p, t), n, j)
             for n, p in enumerate(kps) for j, t in enumerate(self.tracks)),
            key=lambda x: (-x[0], x[1], x[2]))
        used: set[int] = set()
        for oks, n, j in pairs:
            if oks < self.oks_threshold:
                break
            if ids[n] >= 0 or j in used:
                continue
            ids[n] = self.tracks[j].track_id
            used.add(j)
            self.tracks[j].match(kps[n], self._frame, self.joint_threshold)
        for n in np.flatnonzero(ids < 0):
            ids[n] = self.next_id
            self.tracks.append(Track(self.next_id, kps[n], self._frame))
            self.next_id += 1
        return ids
