"""The AE test-time pipeline around any network, without torch: ``AEPipeline``, the shared part
of ``Predictor`` (a PyTorch model) and ``OnnxPredictor`` (an ONNX file in onnxruntime).

    image (H,W,3) uint8 RGB
      -> for s in scales, largest first: prepare (resize_align (s), normalize, network_input)
         -> tta.run_passes (network_fn, + mirror image) -> accumulate (stage average, flip,
            project to base size, multi-scale sum)
      -> DecoderInputs -> decode_maps (ae | hae) -> Poses (image frame)

A subclass sets the attributes with ``_use`` and provides ``network_fn`` (the network called on
``network_input``'s result) and, when its maps are not plain arrays, ``network_input`` and
``_as_output``. The maps are torch tensors or numpy arrays (``bupose.inference.tta`` takes both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bupose.inference import tta
from bupose.inference.decoding import DecoderInputs, check_image, decode_maps
from bupose.inference.poses import Poses
from bupose.inference.settings import TestSettings
from bupose.structures.outputs import StageOutput
from bupose.structures.spec import KeypointSpec


def check_layouts(layouts: Sequence[StageOutput], spec: KeypointSpec,
                  settings: TestSettings) -> None:
    """ValueError unless the network's outputs fit the spec and the per-stage settings."""
    if not layouts:
        raise ValueError("the model has no output_layout")
    if layouts[0].num_heatmaps != spec.num_keypoints:
        raise ValueError(f"the model predicts {layouts[0].num_heatmaps} keypoints but spec "
                         f"{spec.name!r} has {spec.num_keypoints}")
    for name, flags in (("use_heatmaps", settings.use_heatmaps),
                        ("use_tags", settings.use_tags)):
        if flags is not None and len(flags) != len(layouts):
            raise ValueError(f"{name} has {len(flags)} entries but the model has "
                             f"{len(layouts)} outputs")


class AEPipeline:
    """Image -> Poses with the official HigherHRNet test pipeline (``valid.py``).

    Attributes:
        settings: the ``TestSettings`` in use (also exposed as ``decoder``, ``params``,
            ``input_size``, ``flip``, ``scales``, ``project2image``, ``use_heatmaps``,
            ``use_tags``); spec: the keypoint spec; layouts: the network's ``StageOutput``s.
    """

    settings: TestSettings
    spec: KeypointSpec
    layouts: tuple[StageOutput, ...]

    def _use(self, settings: TestSettings, spec: KeypointSpec,
             layouts: Sequence[StageOutput]) -> None:
        """Check and set the settings, spec and output layouts (ValueError when they clash)."""
        layouts = tuple(layouts)
        check_layouts(layouts, spec, settings)
        self.spec, self.settings, self.layouts = spec, settings, layouts
        self.decoder, self.params = settings.decoder, settings.grouping
        self.input_size, self.flip = settings.input_size, settings.flip
        self.scales = settings.scales
        self.project2image = settings.project2image
        self.use_heatmaps, self.use_tags = settings.use_heatmaps, settings.use_tags

    @property
    def network_fn(self) -> Callable[[Any], Sequence[Any]]:
        """The network: ``network_input``'s result -> its outputs, lowest resolution first."""
        raise NotImplementedError

    def network_input(self, normalized: np.ndarray) -> Any:
        """(3, h, w) float32 normalised image -> the network's (1, 3, h, w) input."""
        return normalized[None]

    def _as_output(self, maps: Any) -> Any:
        """The aggregated (K, h, w[, L]) maps as ``DecoderInputs`` holds them."""
        return maps

    def prepare(self, image: np.ndarray, scale_factor: float) -> tuple[Any, np.ndarray, np.ndarray]:
        """Resize-align and normalise for one test scale (official ``resize_align_multi_scale``).

        Returns:
            input (1, 3, h, w) (``network_input``), center (2,), scale (2,) (200-px units).
        """
        from bupose.data.transforms import normalize, resize_align

        resized, center, scale, _ = resize_align(
            image, self.input_size, scale_factor, min(self.scales)
        )
        return self.network_input(normalize(resized)), np.asarray(center), np.asarray(scale)

    def base_size(self, image: np.ndarray) -> tuple[int, int]:
        """(W, H) of the network input at scale 1 (official ``get_multi_scale_size``)."""
        from bupose.data.transforms import multi_scale_size

        size_wh = multi_scale_size(image, self.input_size, 1.0, min(self.scales))[0]
        return int(size_wh[0]), int(size_wh[1])

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
            net_input, center, scale = self.prepare(image, s)
            passes = tta.run_passes(self.network_fn, net_input, self.flip)
            if trace is not None:
                trace[f"input/{s:g}"], trace[f"outputs/{s:g}"] = net_input, passes
            self.accumulate(acc, s, passes, base_size)
        heatmaps, tags = tta.finish_scales(acc)
        return DecoderInputs(self._as_output(heatmaps[0]),
                             None if tags is None else self._as_output(tags[0]),
                             center, scale, base_size)

    def accumulate(self, acc: tta.ScaleAccumulator, scale_factor: float,
                   passes: list[list[Any]], base_size: tuple[int, int]) -> None:
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
