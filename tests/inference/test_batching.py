"""--batch: grouping by network input size, and batched maps equal to Predictor.maps one image
at a time (official tiny HigherHRNet, flip test, two test scales)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.inference.batching import batch_key, batch_maps, group_batches
from bupose.inference.predictor import Predictor
from tests.conftest import FIXTURES, require

TINY = FIXTURES / "tiny"


def test_group_batches_keeps_order_and_size():
    items = [(i, "ab"[i % 2] if i < 8 else "c") for i in range(11)]
    groups = list(group_batches(items, lambda it: it[1], 3))
    assert [[i for i, _ in g] for g in groups] == [[0, 2, 4], [1, 3, 5], [8, 9, 10], [6], [7]]
    assert all(len({k for _, k in g}) == 1 for g in groups)
    flat = sorted(i for g in groups for i, _ in g)
    assert flat == list(range(11))
    bounded = list(group_batches(range(10), lambda i: i, 4, max_pending=3))
    assert max(len(g) for g in bounded) == 1 and [g[0] for g in bounded] == list(range(10))
    with pytest.raises(ValueError):
        list(group_batches([1], lambda i: i, 0))


def test_batched_maps_equal_one_at_a_time(rng, one_torch_thread):
    from bupose.models import load_checkpoint

    model = load_checkpoint(require(TINY / "tiny_model.pth"), require(TINY / "tiny_config.yaml"))
    predictor = Predictor(model, input_size=128, scales=(1.0, 0.5))
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
              for h, w in ((200, 300), (201, 300), (150, 226))]
    keys = {batch_key(predictor, im) for im in images}
    assert len(keys) == 1  # different image sizes, one network input size
    single = [predictor.maps(im) for im in images]
    batched = batch_maps(predictor, images)
    for a, b in zip(single, batched):
        assert torch.allclose(a.heatmaps, b.heatmaps, atol=1e-5)
        assert torch.allclose(a.tags, b.tags, atol=1e-4)
        assert np.array_equal(a.center, b.center) and np.array_equal(a.scale, b.scale)
        assert a.base_size == b.base_size
        pa, pb = predictor.decode(a), predictor.decode(b)
        assert len(pa) == len(pb)
        assert np.allclose(pa.keypoints, pb.keypoints, atol=1e-3)
    other = rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="equal network input sizes"):
        batch_maps(predictor, [images[0], other])
