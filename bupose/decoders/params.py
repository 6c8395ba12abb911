"""Test-time grouping parameters shared by the AE and HAE decoders.

Defaults are the official HigherHRNet / mmpose 0.x test settings (ALGORITHMS.md §2.5, §3.8).
"""

from __future__ import annotations

from dataclasses import dataclass

from bupose.errors import ConfigError


@dataclass(frozen=True)
class GroupingParams:
    """Parameters of the associative-embedding heatmap parser.

    Attributes:
        detection_threshold: a top-k peak is a candidate when its heatmap value is above this.
        tag_threshold: a candidate joins a person only when the raw L2 tag distance to the
            person's mean tag is below this.
        max_people: only the first ``max_people`` people created are matching candidates
            (the official MAX_NUM_PEOPLE).
        top_k: peaks kept per joint type after NMS (the official code uses MAX_NUM_PEOPLE).
        nms_kernel: odd side of the square max-pool window of the peak NMS.
        use_detection_val: cost = round(distance) * 100 - value instead of the raw distance.
        ignore_too_much: skip a joint type entirely once ``max_people`` people exist.
        adjust: quarter-pixel shift toward the larger neighbour, then +0.5 (pixel centres).
        refine: fill missing joints from the full maps (tag-distance penalised heatmap maximum).
        tag_key_collisions: reproduce the official bookkeeping where people are keyed by the
            float value of their first tag component: a new person whose key equals an
            existing person's key overwrites that person's joint and resets its tag list
            instead of being created. Only matters when two detections carry bit-identical
            first tag values (more likely with fp16 models); False gives every detection
            that starts a person its own person.
        solver: "scipy" (``linear_sum_assignment``, fast) or "munkres" (our solver that breaks
            ties between equally good assignments exactly as the official munkres 1.1.4 does;
            for reproducing official outputs, slower on large ties).
    """

    detection_threshold: float = 0.1
    tag_threshold: float = 1.0
    max_people: int = 30
    top_k: int = 30
    nms_kernel: int = 5
    use_detection_val: bool = True
    ignore_too_much: bool = False
    adjust: bool = True
    refine: bool = True
    tag_key_collisions: bool = True
    solver: str = "scipy"

    def __post_init__(self) -> None:
        if not self.detection_threshold >= 0.0:
            raise ConfigError(
                f"grouping: detection_threshold must be >= 0 (joints with value <= 0 count as "
                f"missing in adjust/refine), got {self.detection_threshold}"
            )
        if self.tag_threshold != self.tag_threshold:
            raise ConfigError("grouping: tag_threshold is NaN")
        if self.max_people < 1 or self.top_k < 1:
            raise ConfigError(
                f"grouping: max_people and top_k must be >= 1, got {self.max_people}, "
                f"{self.top_k}"
            )
        if self.solver not in ("scipy", "munkres"):
            raise ConfigError(f"grouping: solver must be 'scipy' or 'munkres', got {self.solver!r}")
        if self.nms_kernel < 1 or self.nms_kernel % 2 == 0:
            raise ConfigError(f"grouping: nms_kernel must be odd and >= 1, got {self.nms_kernel}")
