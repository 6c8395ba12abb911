"""Test-time aggregation: the official HigherHRNet aggregation reproduced from its recorded raw
outputs, plus synthetic checks of flip, tag layout and multi-scale rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bupose.inference import tta
from bupose.models.outputs import StageOutput
from bupose.structures.spec import COCO17
from tests.conftest import FIXTURES, require

HIGHER = (StageOutput(4, 17, 17), StageOutput(2, 17))


def test_official_flip_aggregation_reproduced():
    """e2e_tiny_staged.npz (image 196141, flip_s1): raw stage outputs of both passes -> the parser
    inputs, to the README's ~1e-5 relative (same operations in the same order: in practice
    bit-identical)."""
    z = np.load(require(FIXTURES / "e2e" / "e2e_tiny_staged.npz"))
    raw = [torch.from_numpy(z[f"raw_output{i}"]) for i in range(4)]
    height, width = (int(v) for v in z["final_heatmaps_shape"][2:])
    passes = tta.aggregate_passes([raw[:2], raw[2:]], HIGHER, COCO17.flip_index, (width, height))
    acc = tta.accumulate_scale(tta.ScaleAccumulator(), 1.0, passes, single_scale=True)
    heatmaps, tags = tta.finish_scales(acc)
    assert tuple(heatmaps.shape) == tuple(z["final_heatmaps_shape"])
    assert tuple(tags.shape[:4]) == tuple(z["tags_shape"][:4]) and tags.shape[4] == 2
    np.testing.assert_allclose(
        heatmaps[:, :, ::4, ::4].numpy(), z["final_heatmaps_sub4"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(tags[:, :, ::4, ::4].numpy(), z["tags_sub4"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        heatmaps.double().sum((0, 2, 3)).numpy(), z["final_heatmaps_channel_sum"], rtol=1e-5
    )
    np.testing.assert_allclose(
        tags.double().sum((0, 2, 3)).numpy(), z["tags_channel_sum"], rtol=1e-5
    )


class MirrorModel(torch.nn.Module):
    """Mirror-equivariant toy network: stage 0 (stride 4) = K heatmaps + K*D tags, stage 1
    (stride 2) = K heatmaps; every channel is a fixed positive multiple of pooled image
    channel 0."""

    def __init__(self, k: int = 17, tag_dim: int = 1) -> None:
        super().__init__()
        self.k, self.tag_dim = k, tag_dim
        self.output_layout = (StageOutput(4, k, k * tag_dim), StageOutput(2, k))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c0 = 2 * self.k + self.k * self.tag_dim
        w0 = torch.arange(1, c0 + 1, dtype=x.dtype).view(1, -1, 1, 1)
        w1 = torch.arange(1, self.k + 1, dtype=x.dtype).view(1, -1, 1, 1)
        s4 = torch.nn.functional.avg_pool2d(x[:, :1], 4)
        s2 = torch.nn.functional.avg_pool2d(x[:, :1], 2)
        return s4 * w0, s2 * w1 * 0.5


def test_flip_pass_permutes_heatmap_and_tag_channels():
    """With a mirror-equivariant model the flipped-back pass equals the plain pass, so after the
    flip permutation channel k must equal plain channel flip_index[k] (heatmaps and tags)."""
    model = MirrorModel(tag_dim=1)
    image = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    passes = tta.run_passes(model, image, flip=True)
    assert [tuple(o.shape) for o in passes[1]] == [(1, 51, 16, 24), (1, 17, 16, 24)]
    plain, flipped = tta.aggregate_passes(passes, model.output_layout, COCO17.flip_index, None)
    idx = list(COCO17.flip_index)
    torch.testing.assert_close(flipped.heatmaps, plain.heatmaps[:, idx], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(flipped.tags[0], plain.tags[0][:, idx], rtol=1e-5, atol=1e-6)
    assert idx != list(range(17))  # the check above is not vacuous


def test_stage_average_and_joint_major_tags():
    """Heatmaps = mean of the two stages after resizing stage 0; tag channel k*D + d ->
    [k, ..., d]."""
    k, d = 3, 2
    layouts = (StageOutput(4, k, k * d), StageOutput(2, k))
    out0 = torch.randn(1, k + k * d, 4, 6)
    out1 = torch.randn(1, k, 8, 12)
    maps = tta.average_stages(tta.to_last_stage_size([out0, out1]), layouts)
    up0 = tta.resize(out0, (12, 8))
    torch.testing.assert_close(maps.heatmaps, (up0[:, :k] + out1) / 2)
    (tags,) = maps.tags
    assert tags.shape == (1, k, 8, 12, d)
    torch.testing.assert_close(tags[0, 2, :, :, 1], up0[0, k + 2 * d + 1])
    only_first = tta.average_stages([up0, out1], layouts, use_heatmaps=(True, False))
    torch.testing.assert_close(only_first.heatmaps, up0[:, :k])


def test_shared_tag_is_expanded_to_every_joint():
    layouts = (StageOutput(4, 4, 1),)
    out = torch.randn(1, 5, 6, 6)
    maps = tta.average_stages([out], layouts, flip_index=[1, 0, 3, 2])
    assert maps.tags[0].shape == (1, 4, 6, 6, 1)
    for j in range(4):  # not permuted: one tag map for all joints
        torch.testing.assert_close(maps.tags[0][0, j, :, :, 0], out[0, 4])


def _pass(value: float, size: int, tag: float) -> tta.PassMaps:
    return tta.PassMaps(
        torch.full((1, 2, size, size), value), [torch.full((1, 2, size, size, 1), tag)]
    )


def test_multi_scale_heatmaps_averaged_tags_from_scale_one():
    acc = tta.ScaleAccumulator()
    for s, v in ((2.0, 3.0), (1.0, 5.0), (0.5, 10.0)):  # largest first, as the reference
        passes = [_pass(v, 8, tag=s), _pass(v + 1, 8, tag=-s)]
        tta.accumulate_scale(acc, s, passes, single_scale=False)
    heatmaps, tags = tta.finish_scales(acc)
    # per scale (v + v + 1) / 2, then mean over 3 scales: (3.5 + 5.5 + 10.5) / 3
    torch.testing.assert_close(heatmaps, torch.full((1, 2, 8, 8), 19.5 / 3))
    assert tags.shape == (1, 2, 8, 8, 2)
    assert tags[0, 0, 0, 0].tolist() == [1.0, -1.0]


def test_unprojected_scales_resized_to_first_scale():
    acc = tta.ScaleAccumulator()
    tta.accumulate_scale(acc, 2.0, [_pass(1.0, 16, 2.0)], single_scale=False, projected=False)
    tta.accumulate_scale(acc, 1.0, [_pass(3.0, 8, 7.0)], single_scale=False, projected=False)
    heatmaps, tags = tta.finish_scales(acc)
    assert heatmaps.shape[-2:] == (16, 16) and tags.shape == (1, 2, 16, 16, 1)
    torch.testing.assert_close(heatmaps, torch.full((1, 2, 16, 16), 2.0))
    torch.testing.assert_close(tags, torch.full((1, 2, 16, 16, 1), 7.0))


def test_single_scale_keeps_tags_whatever_the_factor():
    acc = tta.accumulate_scale(tta.ScaleAccumulator(), 0.5, [_pass(1.0, 4, 3.0)], True)
    assert tta.finish_scales(acc)[1] is not None


def test_errors():
    with pytest.raises(ValueError, match="flip_index"):
        tta.aggregate_passes([[torch.zeros(1, 2, 4, 4)]] * 2, (StageOutput(2, 2),), None, None)
    with pytest.raises(ValueError, match="no scale"):
        tta.finish_scales(tta.ScaleAccumulator())
