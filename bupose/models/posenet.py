"""The pose network (backbone + head) and the metadata that travels with a built model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from bupose.models.heads import HigherHRNetHead
from bupose.models.hrnet import HRNet
from bupose.models.outputs import StageOutput
from bupose.structures.spec import KeypointSpec


@dataclass(frozen=True)
class ModelMeta:
    """How a model was built and how it is meant to be tested.

    Attributes:
        name: registered model name (``bupose.models.MODELS``); with ``kwargs`` it rebuilds the
            model: ``create_model(name, **kwargs)``.
        kwargs: JSON-compatible constructor arguments (architecture, num_keypoints ...).
        spec: the keypoint spec of the outputs' K channels, or None when unknown.
        input_size: the training / test input side in pixels (512, 640 ...), or (h, w) for
            top-down models (person crops, e.g. (64, 48)).
        test: test-time settings (from an official YAML's TEST section, lower-case keys, plus
            ``max_num_people`` from DATASET.MAX_NUM_PEOPLE); empty when none are known.
        source: where the weights came from ("random", "bupose", "official", "mmpose").
    """

    name: str
    kwargs: dict[str, Any]
    spec: KeypointSpec | None
    input_size: int | tuple[int, int]
    test: dict[str, Any] = field(default_factory=dict)
    source: str = "random"


class PoseNet(nn.Module):
    """images (B, 3, H, W), normalised float -> tuple of stage outputs, lowest resolution first.

    HigherHRNet: ((B, K + K*D, H/4, W/4), (B, K, H/2, W/2)); channel layouts in
    ``output_layout`` (see ``bupose.models.outputs``). Returns tensors only.
    """

    meta: ModelMeta

    def __init__(self, backbone: HRNet, head: HigherHRNetHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def output_layout(self) -> tuple[StageOutput, ...]:
        return self.head.output_layout

    @property
    def num_keypoints(self) -> int:
        return self.head.output_layout[0].num_heatmaps

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        return self.head(self.backbone(images)[0])
