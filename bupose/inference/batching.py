"""Batched test-time inference (``bupose infer --batch N``): images whose network inputs have the
same size at every test scale run through the network together; results equal one-at-a-time.

Images are grouped by ``batch_key`` (the resized input (W, H) at every test scale and the base
size, all functions of the image's (H, W) only), so no padding is needed and each image's maps
are those ``Predictor.maps`` gives it alone (convolutions treat batch items independently; the
tests check equality).

    items (index, image) -> group_batches -> [(index, image)] * <= N, same key
      -> batch_maps(predictor, images) -> [DecoderInputs] (one per image, as Predictor.maps)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from bupose.inference import tta
from bupose.inference.predictor import DecoderInputs, Predictor

T = TypeVar("T")


def batch_key(predictor: Predictor, image: np.ndarray) -> tuple[tuple[int, int], ...]:
    """What must be equal for two images to share a batch: the network input (W, H) at every
    test scale (largest first), then the base size (W, H)."""
    from bupose.data.transforms import multi_scale_size

    hw = image.shape[:2]
    low = min(predictor.scales)
    sizes = [multi_scale_size(hw, predictor.input_size, s, low)[0]
             for s in sorted(predictor.scales, reverse=True)]
    return tuple((int(w), int(h)) for w, h in sizes) + (predictor.base_size(image),)


def group_batches(items: Iterable[T], key: Callable[[T], Hashable], size: int,
                  max_pending: int | None = None) -> Iterator[list[T]]:
    """Group a stream into lists of at most ``size`` items with equal ``key``.

    A group is emitted as soon as it is full; at the end, the remaining groups in the order of
    their first item. To bound memory, when more than ``max_pending`` (default 4 x size) items
    wait, the group holding the oldest item is emitted early. Order inside a group is stream
    order, so a stream with one key (video frames) comes out in order.
    """
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    limit = max_pending or 4 * size
    pending: dict[Hashable, list[T]] = {}
    count = 0
    for item in items:
        k = key(item)
        group = pending.setdefault(k, [])
        group.append(item)
        count += 1
        if len(group) >= size:
            count -= len(group)
            yield pending.pop(k)
        elif count > limit:
            oldest = next(iter(pending))  # dicts keep insertion order: the oldest group first
            count -= len(pending[oldest])
            yield pending.pop(oldest)
    yield from pending.values()


@torch.inference_mode()
def batch_maps(predictor: Predictor, images: Sequence[np.ndarray]) -> list[DecoderInputs]:
    """``Predictor.maps`` of several images with one ``batch_key`` in one network call per test
    scale (and flip pass).

    Args:
        predictor: the AE-family predictor (its settings, model and spec are used).
        images: (H, W, 3) uint8 RGB images with equal ``batch_key``.

    Returns:
        One ``DecoderInputs`` per image, as ``predictor.maps(image)`` returns it.
    """
    if not images:
        return []
    keys = {batch_key(predictor, im) for im in images}
    if len(keys) != 1:
        raise ValueError(f"images of one batch need equal network input sizes, got {keys}")
    if len(images) == 1:
        return [predictor.maps(images[0])]
    base_size = predictor.base_size(images[0])
    acc = tta.ScaleAccumulator()
    centers: list[Any] = []
    scales: list[Any] = []
    for s in sorted(predictor.scales, reverse=True):
        prepared = [predictor.prepare(im, s) for im in images]
        tensor = torch.cat([p[0] for p in prepared])
        centers, scales = [p[1] for p in prepared], [p[2] for p in prepared]
        passes = tta.run_passes(predictor.model, tensor, predictor.flip)
        predictor.accumulate(acc, s, passes, base_size)
    heatmaps, tags = tta.finish_scales(acc)
    return [DecoderInputs(heatmaps[i].float(), None if tags is None else tags[i].float(),
                          centers[i], scales[i], base_size) for i in range(len(images))]
