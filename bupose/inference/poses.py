"""Poses: the people found in one image, and their COCO results entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Poses:
    """People detected in one image.

    Attributes:
        keypoints: (N, K, 3) float32 [x, y, score] in image pixels (the frame of the image given to
            the predictor); score is the heatmap value, 0 for joints not found.
        scores: (N,) float32 person scores.
        tags: optional (N, K, L) float32 associative-embedding tags of the joints (0 where a joint
            was added by refinement or not found).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    tags: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.keypoints.ndim != 3 or self.keypoints.shape[2] < 3:
            raise ValueError(f"keypoints must be (N, K, 3), got {self.keypoints.shape}")
        self.keypoints = self.keypoints[..., :3]
        if len(self.scores) != len(self.keypoints):
            raise ValueError(
                f"{len(self.keypoints)} people in keypoints but {len(self.scores)} scores"
            )
        if self.tags is not None:
            self.tags = np.asarray(self.tags, dtype=np.float32)
            if self.tags.shape[:2] != self.keypoints.shape[:2]:
                raise ValueError(
                    f"tags {self.tags.shape} do not fit keypoints {self.keypoints.shape}"
                )

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def num_keypoints(self) -> int:
        return self.keypoints.shape[1]

    @classmethod
    def empty(cls, num_keypoints: int) -> Poses:
        return cls(np.zeros((0, num_keypoints, 3), np.float32), np.zeros((0,), np.float32))

    def draw(self, image: Any, spec: Any = None, min_score: float = 0.0,
             joint_threshold: float = 0.0) -> np.ndarray:
        """A copy of ``image`` with the people drawn, each in its own colour with its score.

        Args:
            image: (H, W, 3) uint8 RGB, the frame of the keypoints, or its file path.
            spec: the ``KeypointSpec`` (skeleton; left limbs darker than right ones); default
                the built-in spec of K keypoints (17 COCO, 14 CrowdPose, 16 MPII).
            min_score: people with a lower score are not drawn.
            joint_threshold: joints with a value <= this are not drawn (0: joints not found).

        Returns:
            (H, W, 3) uint8 RGB.
        """
        from bupose.inference.pretrained import as_image
        from bupose.viz.draw import draw_poses

        if spec is None:
            from bupose.models import default_spec

            spec = default_spec(self.num_keypoints)
            if spec is None:
                raise ValueError(f"no built-in spec has {self.num_keypoints} keypoints: "
                                 "pass spec=")
        keep = self.scores >= min_score
        return draw_poses(as_image(image), self.keypoints[keep], spec, scores=self.scores[keep],
                          threshold=joint_threshold)

    def to_coco(
        self, image_id: int, category_id: int = 1, file_name: str | None = None
    ) -> list[dict[str, Any]]:
        """COCO keypoint results, one entry per person (the official writer's content).

        Returns:
            [{"image_id", "category_id", "keypoints": [x1, y1, v1, ...] (v = heatmap value, 0 for
            joints not found), "score", and "file_name" when given}] as plain Python floats.
        """
        entries = []
        for keypoints, score in zip(self.keypoints, self.scores):
            entry: dict[str, Any] = {"image_id": int(image_id), "category_id": int(category_id)}
            if file_name is not None:
                entry["file_name"] = file_name
            entry["keypoints"] = [float(v) for v in keypoints.reshape(-1)]
            entry["score"] = float(score)
            entries.append(entry)
        return entries
