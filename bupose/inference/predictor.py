"""Predictor: one image in, the people in it out — the official HigherHRNet test path
(ALGORITHMS.md §2.5 steps 1-5 and 12; reference ``tools/valid.py``).

    image (H,W,3) uint8 RGB
      -> for s in scales, largest first: resize_align (s) -> normalize -> model (+ flipped image)
         -> tta: stage average, flip, project to base size, multi-scale average
      -> DecoderInputs: heatmaps (K,H',W'), tags (K,H',W',L), center, scale, base_size
      -> decoder (ae | hae) -> grouped (P,K,3+L) map pixels -> back_project -> Poses (image frame)

The pipeline itself is ``bupose.inference.ae_pipeline.AEPipeline`` (shared with the onnxruntime
``OnnxPredictor``); this class runs it on a PyTorch model (fast path, precision, device).
As in ``valid.py``, the ``center``/``scale`` used for back-projection are those of the LAST
(smallest) test scale; they equal the scale-1 values whenever the size ratios are integers.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bupose.decoders.params import GroupingParams
from bupose.inference.ae_pipeline import AEPipeline
from bupose.inference.decoding import DecoderInputs, decode_maps
from bupose.inference.settings import TestSettings, settings_for_model
from bupose.structures.spec import KeypointSpec

__all__ = ["DecoderInputs", "Predictor", "decode_maps"]


class Predictor(AEPipeline):
    """Image -> Poses with the official test-time pipeline.

    Every test setting not given here comes from ``settings``, or when that is None from the
    model's ``meta`` (a checkpoint's recorded settings, an official YAML's TEST.*, the input
    size of the registered model), else from the ``TestSettings`` defaults
    (``bupose.inference.settings``: argument > model > default).

    Args:
        model: returns a tuple of stage maps (lowest resolution first) and has ``output_layout``.
        spec: the keypoint spec (flip index, joint order); default ``model.meta.spec``.
        decoder: a DECODERS name ("ae" or "hae").
        params: the decoder's ``GroupingParams`` (replaces all the grouping settings).
        input_size: network input size of the short side at the smallest scale (official
            DATASET.INPUT_SIZE).
        flip: flip test.
        scales: test scale factors (official TEST.SCALE_FACTOR).
        project2image: resize maps to the input resolution before aggregation.
        use_heatmaps, use_tags: per stage, whether its heatmaps/tags are used (official
            TEST.WITH_HEATMAPS / TEST.WITH_AE); default every stage that has them.
        device: where to run the model (default: the model's device).
        settings: the resolved ``TestSettings`` to start from instead of the model's.
        precision: "fp32" (default), "bf16" or "fp16": autocast of the forward passes (maps are
            returned as float32 either way; see ``bupose.inference.fast``).
        fast: run a copy of the model with BatchNorm folded into the convolutions and
            channels-last weights (``optimize_for_inference``; maps equal to ~1e-6 of their
            scale). False runs ``model`` itself, as during training validation.

    Attributes:
        settings: the ``TestSettings`` in use (also exposed as ``decoder``, ``params``,
            ``input_size``, ``flip``, ``scales``, ``project2image``, ``use_heatmaps``,
            ``use_tags``).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        spec: KeypointSpec | None = None,
        decoder: str | None = None,
        params: GroupingParams | None = None,
        input_size: int | None = None,
        flip: bool | None = None,
        scales: Sequence[float] | None = None,
        project2image: bool | None = None,
        use_heatmaps: Sequence[bool] | None = None,
        use_tags: Sequence[bool] | None = None,
        device: torch.device | str | None = None,
        *,
        settings: TestSettings | None = None,
        precision: str = "fp32",
        fast: bool = True,
    ) -> None:
        if scales is not None and (not scales or any(not s > 0 for s in scales)):
            raise ValueError(f"test scales must be positive numbers, got {list(scales)}")
        settings = settings or settings_for_model(model)
        settings = settings.replace(
            decoder=decoder, input_size=input_size, flip=flip, scales=scales,
            project2image=project2image, use_heatmaps=use_heatmaps, use_tags=use_tags,
        )
        if params is not None:
            settings = dataclasses.replace(settings, grouping=params)
        spec = spec or getattr(getattr(model, "meta", None), "spec", None)
        if spec is None:
            raise ValueError("no keypoint spec: pass spec= (the model's meta has none)")
        self._use(settings, spec, tuple(getattr(model, "output_layout", ())))
        if fast or precision != "fp32":
            from bupose.inference.fast import optimize_for_inference

            model = optimize_for_inference(model, precision=precision, fold_bn=fast,
                                           channels_last=None if fast else False)
        self.model, self.precision = model, precision
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)

    @property
    def network_fn(self) -> torch.nn.Module:
        return self.model

    def network_input(self, normalized: np.ndarray) -> Tensor:
        """(3, h, w) float32 normalised image -> (1, 3, h, w) tensor on the device."""
        return torch.from_numpy(np.ascontiguousarray(normalized)).unsqueeze(0).to(self.device)

    def _as_output(self, maps: Tensor) -> Tensor:
        return maps.float()

    @torch.inference_mode()
    def maps(self, image: np.ndarray, trace: dict[str, Any] | None = None) -> DecoderInputs:
        """The decoder inputs of one (H, W, 3) uint8 RGB image (``AEPipeline.maps`` under
        ``torch.inference_mode``; tensors)."""
        return super().maps(image, trace)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None,
                        device: torch.device | str | None = None, spec: KeypointSpec | None = None,
                        config: str | os.PathLike | None = None, precision: str = "fp32",
                        **options: Any) -> Predictor:
        """A ready predictor for a released or shipped model.

        Args:
            name_or_path: None or "default" (the model shipped with bupose, trained on synthetic
                figures), a zoo name (``bupose models --zoo``; downloaded and cached), an
                http(s) URL, or a checkpoint file.
            device: where to run (default cpu).
            spec: keypoint spec overriding the checkpoint's.
            config: the official experiment YAML of an official HigherHRNet checkpoint file.
            precision: "fp32", "bf16" or "fp16" forward passes (see ``Predictor``).
            **options: test settings over the checkpoint's (``bupose.inference.settings``
                keys: decoder, flip, scales, input_size, detection_threshold, tag_threshold ...).
        """
        from bupose.inference.pretrained import load_pretrained

        model = load_pretrained(name_or_path, spec=spec, config=config)
        model.to(device or "cpu").eval()
        return cls(model, settings=settings_for_model(model, **options), device=device,
                   precision=precision)
