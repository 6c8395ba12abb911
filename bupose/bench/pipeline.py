"""Stage-by-stage timing of the AE-family test pipeline on a list of images.

For each image, medians over repeated runs after warm-up of:
  preprocess  resize-align + normalise, every test scale;
  forward     the network calls (1 + flip per scale), alone (``tta.forward_passes``); when
              the fast path fused the convolutions with their add / ReLU, the same calls
              without fusion too (``forward_unfused``), the two alternating;
  aggregate   the rest of ``Predictor.maps``, timed on those outputs: flipping the mirror pass
              back, stage averaging, flip fusion, projection, multi-scale averaging;
  decode      ``Predictor.decode``, and for the "ae" decoder its stages: ``peaks`` (checks,
              tiles, top-k NMS), ``match`` (tag matching), ``finish`` (adjust, refine,
              back-projection is in ``decode`` only);
  end_to_end  ``Predictor(image)``.
Achieved GFLOP/s = 2 x the model's multiply-adds at the actual input size / forward time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from bupose.bench.measure import interleaved_medians, median_seconds
from bupose.inference import tta


def time_image(predictor: Any, image: np.ndarray, repeat: int, warmup: int) -> dict[str, Any]:
    """Stage times (s) of one (H, W, 3) uint8 RGB image; see the module docstring."""
    scales = sorted(predictor.scales, reverse=True)
    inputs = [predictor.prepare(image, s)[0] for s in scales]

    def forward(model: Any = predictor.model) -> list[list[list[torch.Tensor]]]:
        with torch.inference_mode():
            return [tta.forward_passes(model, x, predictor.flip) for x in inputs]

    def preprocess() -> None:
        for s in scales:
            predictor.prepare(image, s)

    unfused = _unfused(predictor.model)  # builds the fused runner first: warmed just below
    outputs, base_size = forward(), predictor.base_size(image)
    if unfused is not None:
        forward(unfused)  # first calls at a new size build oneDNN's kernels

    def aggregate() -> None:
        with torch.inference_mode():
            acc = tta.ScaleAccumulator()
            for s, raw in zip(scales, outputs):
                predictor.accumulate(acc, s, tta.flip_back(raw), base_size)
            tta.finish_scales(acc)

    t: dict[str, Any] = {"preprocess": median_seconds(preprocess, repeat, warmup)}
    if unfused is None:
        t["forward"] = median_seconds(forward, repeat, warmup)
    else:
        t.update(interleaved_medians({"forward": forward,
                                      "forward_unfused": lambda: forward(unfused)},
                                     repeat, warmup))
    t["aggregate"] = median_seconds(aggregate, repeat, warmup)
    maps = predictor.maps(image)
    t["decode"] = median_seconds(lambda: predictor.decode(maps), repeat, warmup)
    if predictor.decoder == "ae":
        t.update(_ae_stages(predictor, maps, repeat, warmup))
    t["end_to_end"] = median_seconds(lambda: predictor(image), repeat, warmup)
    t["input_hw"] = [int(x) for x in inputs[0].shape[-2:]]
    t["people"] = len(predictor.decode(maps))
    return t


def _unfused(model: Any) -> Any:
    """The fast-path ``model`` run without its convolution fusion (same weights), or None when
    it runs none (``bupose.inference.fast.InferenceModel.runner``, fused now if pending)."""
    from bupose.inference.fast import InferenceModel

    if not isinstance(model, InferenceModel):
        return None
    model.fuse_now()
    if model.runner is model.net:
        return None
    return InferenceModel(model.net, model.precision, model.channels_last)


def _ae_stages(predictor: Any, maps: Any, repeat: int, warmup: int) -> dict[str, float]:
    from bupose.decoders.ae import check_joint_order, finish, match_by_tag, prepare

    params = predictor.params
    heat, tag, tiles, peaks = prepare(maps.heatmaps, maps.tags, params)
    order = check_joint_order(predictor.spec.joint_order, heat.shape[0])
    grouped = match_by_tag(peaks, order, params, None)
    return {
        "decode_peaks": median_seconds(lambda: prepare(maps.heatmaps, maps.tags, params),
                                       repeat, warmup),
        "decode_match": median_seconds(lambda: match_by_tag(peaks, order, params, None),
                                       repeat, warmup),
        "decode_finish": median_seconds(lambda: finish(grouped, heat, tag, params, tiles),
                                        repeat, warmup),
    }


def forward_gflops(model_name: str | None, input_hw: Sequence[int], passes: int,
                   seconds: float) -> float | None:
    """Achieved GFLOP/s of ``passes`` forward calls at ``input_hw`` taking ``seconds``, or None
    for a model that is not registered (unknown cost)."""
    from bupose.models import MODELS
    from bupose.models.flops import registered_cost

    if model_name is None or model_name not in MODELS:
        return None
    cost = registered_cost(model_name, input_size=(int(input_hw[0]), int(input_hw[1])))
    return 2.0 * cost.gmacs * passes / seconds


def summarise(per_image: list[dict[str, Any]]) -> dict[str, float]:
    """Median over images of every timed stage."""
    keys = [k for k, v in per_image[0].items() if isinstance(v, float)]
    return {k: statistics.median(t[k] for t in per_image) for k in keys}
