"""Predictor: one image in, the people in it out — the official HigherHRNet test path
(ALGORITHMS.md §2.5 steps 1-5 and 12; reference ``tools/valid.py``).

    image (H,W,3) uint8 RGB
      -> for s in scales, largest first: resize_align (s) -> normalize -> model (+ flipped image)
         -> tta: stage average, flip, project to base size, multi-scale average
      -> DecoderInputs: heatmaps (K,H',W'), tags (K,H',W',L), center, scale, base_size
      -> decoder (ae | hae) -> grouped (P,K,3+L) map pixels -> back_project -> Poses (image frame)

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
from bupose.inference import tta
from bupose.inference.decoding import DecoderInputs, check_image, decode_maps
from bupose.inference.poses import Poses
from bupose.inference.settings import TestSettings, settings_for_model
from bupose.structures.spec import KeypointSpec

__all__ = ["DecoderInputs", "Predictor", "decode_maps"]


class Predictor:
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
        layouts = tuple(getattr(model, "output_layout", ()))
        if not layouts:
            raise ValueError("the model has no output_layout")
        if layouts[0].num_heatmaps != spec.num_keypoints:
            raise ValueError(
                f"the model predicts {layouts[0].num_heatmaps} keypoints but spec "
                f"{spec.name!r} has {spec.num_keypoints}"
            )
        for name, flags in (("use_heatmaps", settings.use_heatmaps),
                            ("use_tags", settings.use_tags)):
            if flags is not None and len(flags) != len(layouts):
                raise ValueError(
                    f"{name} has {len(flags)} entries but the model has {len(layouts)} outputs"
                )
        if fast or precision != "fp32":
            from bupose.inference.fast import optimize_for_inference

            model = optimize_for_inference(model, precision=precision, fold_bn=fast,
                                           channels_last=None if fast else False)
        self.model, self.spec, self.settings = model, spec, settings
        self.precision = precision
        self.decoder, self.params = settings.decoder, settings.grouping
        self.layouts = layouts
        self.input_size, self.flip = settings.input_size, settings.flip
        self.scales = settings.scales
        self.project2image = settings.project2image
        self.use_heatmaps, self.use_tags = settings.use_heatmaps, settings.use_tags
        if device is None:
            first = next(iter(model.parameters()), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)

    def prepare(
        self, image: np.ndarray, scale_factor: float
    ) -> tuple[Tensor, np.ndarray, np.ndarray]:
        """Resize-align and normalise for one test scale (official ``resize_align_multi_scale``).

        Returns:
            input (1, 3, h, w) float32 on the device, center (2,), scale (2,) (200-px units).
        """
        from bupose.data.transforms import normalize, resize_align

        resized, center, scale, _ = resize_align(
            image, self.input_size, scale_factor, min(self.scales)
        )
        tensor = torch.from_numpy(np.ascontiguousarray(normalize(resized))).unsqueeze(0)
        return tensor.to(self.device), np.asarray(center), np.asarray(scale)

    def base_size(self, image: np.ndarray) -> tuple[int, int]:
        """(W, H) of the network input at scale 1 (official ``get_multi_scale_size``)."""
        from bupose.data.transforms import multi_scale_size

        size_wh = multi_scale_size(image, self.input_size, 1.0, min(self.scales))[0]
        return int(size_wh[0]), int(size_wh[1])

    @torch.inference_mode()
    def maps(self, image: np.ndarray, trace: dict[str, Any] | None = None) -> DecoderInputs:
        """The decoder inputs of one (H, W, 3) uint8 RGB image.

        Args:
            trace: if a dict is given, it receives per scale factor s: ``input/{s}`` (the network
                input) and ``outputs/{s}`` (list of passes, see ``tta.run_passes``).
        """
        check_image(image)
        base_size = self.base_size(image)
        acc = tta.ScaleAccumulator()
        center = scale = None
        for s in sorted(self.scales, reverse=True):
            tensor, center, scale = self.prepare(image, s)
            passes = tta.run_passes(self.model, tensor, self.flip)
            if trace is not None:
                trace[f"input/{s:g}"], trace[f"outputs/{s:g}"] = tensor, passes
            self.accumulate(acc, s, passes, base_size)
        heatmaps, tags = tta.finish_scales(acc)
        return DecoderInputs(
            heatmaps[0].float(), None if tags is None else tags[0].float(), center, scale,
            base_size,
        )

    def accumulate(self, acc: tta.ScaleAccumulator, scale_factor: float,
                   passes: list[list[Tensor]], base_size: tuple[int, int]) -> None:
        """Add one test scale's ``tta.run_passes`` output to ``acc``: stage averaging, flip
        fusion, projection to ``base_size`` (W, H) with project2image (in place)."""
        size = base_size if self.project2image else None
        maps = tta.aggregate_passes(
            passes, self.layouts, self.spec.flip_index, size, self.use_heatmaps, self.use_tags
        )
        tta.accumulate_scale(acc, scale_factor, maps, len(self.scales) == 1, self.project2image)

    def decode(self, inputs: DecoderInputs) -> Poses:
        """Group decoder inputs into people, in image pixels when center/scale are set."""
        return decode_maps(inputs, self.decoder, self.params, self.spec.joint_order)

    def __call__(self, image: np.ndarray | str | os.PathLike) -> Poses:
        """(H, W, 3) uint8 RGB image, or an image file path -> Poses in image pixels."""
        from bupose.inference.pretrained import as_image

        return self.decode(self.maps(as_image(image)))

    def predict_batch(self, images: Sequence[np.ndarray | str | os.PathLike]) -> list[Poses]:
        """Poses of each image (arrays or paths), in order; one forward pass per image and
        scale (bottom-up inputs differ in size)."""
        return [self(image) for image in images]

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
