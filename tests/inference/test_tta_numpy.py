"""tta on numpy arrays (the torch-free aggregation of the onnxruntime path) against tta on torch
tensors: every function on random float32 maps shaped like HigherHRNet outputs, the official
recorded outputs, and a check that importing and running the module leaves torch unimported."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from bupose.inference import tta
from bupose.models.outputs import StageOutput
from bupose.structures.spec import get_spec
from tests.conftest import FIXTURES, ROOT, require

K = 17
FLIP_INDEX = tuple(get_spec("coco17").flip_index)
LAYOUTS = {
    "higher": (StageOutput(4, K, K), StageOutput(2, K)),
    "tag_dim2": (StageOutput(4, K, 2 * K), StageOutput(2, K)),
    "per_image_tag": (StageOutput(4, K, 1), StageOutput(2, K)),
    "tags_both_stages": (StageOutput(4, K, K), StageOutput(2, K, K)),
}
BASE_WH = (100, 68)  # network input (W, H) at scale 1: not a multiple of 4 at every scale


def assert_matches(actual: np.ndarray | None, expected: torch.Tensor | None) -> None:
    """Same shape and dtype; max |difference| <= 1e-5 * max(1, max |torch output|)."""
    if expected is None:
        assert actual is None
        return
    assert actual is not None
    reference = expected.numpy()
    assert actual.shape == reference.shape and actual.dtype == reference.dtype
    bound = 1e-5 * max(1.0, float(np.abs(reference).max()))
    diff = float(np.abs(actual - reference).max())
    assert diff <= bound, f"max |numpy - torch| = {diff:.3g} > {bound:.3g}"


def assert_pass_maps(actual: tta.PassMaps, expected: tta.PassMaps) -> None:
    assert_matches(actual.heatmaps, expected.heatmaps)
    assert len(actual.tags) == len(expected.tags)
    for a, e in zip(actual.tags, expected.tags):
        assert_matches(a, e)


def as_torch(arrays: Sequence[np.ndarray]) -> list[torch.Tensor]:
    return [torch.from_numpy(a.copy()) for a in arrays]


def stage_outputs(
    rng: np.random.Generator, layouts: Sequence[StageOutput], hw: tuple[int, int], batch: int = 1
) -> list[np.ndarray]:
    """Random (B, C_i, h_i, w_i) outputs: stage 0 at ``hw``, the others scaled by stride ratio."""
    outputs = []
    for layout in layouts:
        f = layouts[0].stride // layout.stride
        shape = (batch, layout.channels, hw[0] * f, hw[1] * f)
        outputs.append((rng.standard_normal(shape) * 2).astype(np.float32))
    return outputs


def stage0_hw(scale: float) -> tuple[int, int]:
    """Stride-4 (h, w) of the input at ``scale``: 2 -> (34, 50), 1 -> (17, 25), 0.5 -> (9, 13)."""
    return math.ceil(scale * BASE_WH[1] / 4), math.ceil(scale * BASE_WH[0] / 4)


@pytest.mark.parametrize(("hw", "size_wh"), [
    ((12, 17), (34, 24)),  # x2 up
    ((24, 34), (17, 12)),  # x2 down
    ((9, 13), (100, 68)),  # non-integer up
    ((68, 100), (13, 9)),  # non-integer down
    ((40, 61), (23, 17)),
    ((13, 20), (20, 13)),  # same size
    ((1, 7), (5, 3)),
    ((19, 5), (19, 11)),  # one axis only
    ((128, 192), (383, 257)),
])
def test_resize_matches_torch(hw, size_wh, rng):
    maps = (rng.standard_normal((2, 34, *hw)) * 3).astype(np.float32)
    out = tta.resize(maps, size_wh)
    assert out.flags.c_contiguous
    assert_matches(out, tta.resize(torch.from_numpy(maps), size_wh))


def test_resize_tolerance_separates_the_torch_modes(rng):
    """Guards the comparison: align_corners=True or nearest would exceed the tolerance."""
    maps = torch.from_numpy((rng.standard_normal((1, 3, 9, 13)) * 3).astype(np.float32))
    out = tta.resize(maps.numpy(), (29, 21))
    for options in ({"mode": "bilinear", "align_corners": True}, {"mode": "nearest"}):
        other = torch.nn.functional.interpolate(maps, size=(21, 29), **options)
        with pytest.raises(AssertionError):
            assert_matches(out, other)


def make_run(layouts: Sequence[StageOutput], rng: np.random.Generator, seen: list[np.ndarray]):
    """A toy network, not mirror-equivariant: each stage = a random channel mix of the image
    pooled to its stride, times a horizontal ramp."""
    mixes = [rng.standard_normal((layout.channels, 3)).astype(np.float32) for layout in layouts]

    def run(image: np.ndarray) -> list[np.ndarray]:
        seen.append(image)
        b, c, h, w = image.shape
        outputs = []
        for layout, mix in zip(layouts, mixes):
            s = layout.stride
            pooled = image.reshape(b, c, h // s, s, w // s, s).mean(axis=(3, 5))
            ramp = np.linspace(0.5, 2.0, w // s, dtype=np.float32)
            outputs.append(np.einsum("oc,bchw->bohw", mix, pooled * ramp).astype(np.float32))
        return outputs

    return run


@pytest.mark.parametrize("flip", [False, True])
def test_forward_and_run_passes_match_torch(flip, rng):
    layouts = LAYOUTS["higher"]
    seen: list[np.ndarray] = []
    run = make_run(layouts, rng, seen)
    image = rng.standard_normal((1, 3, 36, 52)).astype(np.float32)

    def model(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(o) for o in run(x.numpy()))

    passes = tta.run_passes(run, image, flip)
    if flip:
        assert seen[1].flags.c_contiguous and np.array_equal(seen[1], image[..., ::-1])
    for actual, expected in [(tta.forward_passes(run, image, flip),
                              tta.forward_passes(model, torch.from_numpy(image), flip)),
                             (passes, tta.run_passes(model, torch.from_numpy(image), flip))]:
        assert len(actual) == len(expected) == 1 + flip
        for a_pass, e_pass in zip(actual, expected):
            assert len(a_pass) == len(e_pass) == 2
            for a, e in zip(a_pass, e_pass):
                assert_matches(a, e)
    if flip:
        assert [o.shape for o in passes[1]] == [(1, 2 * K, 18, 26), (1, K, 18, 26)]
        assert np.abs(passes[1][1] - passes[0][1]).max() > 0.1  # the image is not symmetric


def test_to_last_stage_size_and_flip_back_match_torch(rng):
    plain = stage_outputs(rng, LAYOUTS["higher"], (17, 25))
    mirror = stage_outputs(rng, LAYOUTS["higher"], (17, 25))
    assert tta.to_last_stage_size(plain)[1] is plain[1]  # no-op at the last size
    for a, e in zip(tta.to_last_stage_size(plain), tta.to_last_stage_size(as_torch(plain))):
        assert_matches(a, e)
    actual = tta.flip_back([plain, mirror])
    expected = tta.flip_back([as_torch(plain), as_torch(mirror)])
    for a_pass, e_pass in zip(actual, expected):
        for a, e in zip(a_pass, e_pass):
            assert_matches(a, e)


SELECTIONS = [
    (None, None),
    ((True, False), (True, False)),
    ((False, True), (False, False)),
    ((False, False), (True, True)),
]


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("flip_index", [None, FLIP_INDEX], ids=["plain", "flipped"])
@pytest.mark.parametrize(("use_heatmaps", "use_tags"), SELECTIONS)
def test_average_stages_matches_torch(layout_name, flip_index, use_heatmaps, use_tags, rng):
    layouts = LAYOUTS[layout_name]
    outputs = tta.to_last_stage_size(stage_outputs(rng, layouts, (9, 13), batch=2))
    actual = tta.average_stages(outputs, layouts, flip_index, use_heatmaps, use_tags)
    expected = tta.average_stages(as_torch(outputs), layouts, flip_index, use_heatmaps, use_tags)
    assert_pass_maps(actual, expected)
    if use_tags is None or use_tags[0]:
        tag_dim = max(1, layouts[0].tag_channels // K)
        assert actual.tags[0].shape == (2, K, 18, 26, tag_dim)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("size_wh", [None, BASE_WH, (37, 29)])
def test_project_and_aggregate_passes_match_torch(layout_name, flip, size_wh, rng):
    layouts = LAYOUTS[layout_name]
    passes = [stage_outputs(rng, layouts, (9, 13)) for _ in range(1 + flip)]
    flip_index = FLIP_INDEX if flip else None
    actual = tta.aggregate_passes(passes, layouts, flip_index, size_wh)
    expected = tta.aggregate_passes([as_torch(p) for p in passes], layouts, flip_index, size_wh)
    assert len(actual) == len(expected) == 1 + flip
    for a, e in zip(actual, expected):
        assert_pass_maps(a, e)
    if size_wh is not None:
        maps = tta.average_stages(tta.to_last_stage_size(passes[0]), layouts)
        reference = tta.average_stages(tta.to_last_stage_size(as_torch(passes[0])), layouts)
        assert_pass_maps(tta.project(maps, size_wh), tta.project(reference, size_wh))


def aggregate(module, passes_per_scale, layouts, flip, scales, projected):
    """``Predictor.maps``/``accumulate`` with ``module`` = tta or tta."""
    acc = module.ScaleAccumulator()
    size = BASE_WH if projected else None
    for s, passes in zip(sorted(scales, reverse=True), passes_per_scale):
        maps = module.aggregate_passes(
            module.flip_back(passes), layouts, FLIP_INDEX if flip else None, size
        )
        module.accumulate_scale(acc, s, maps, len(scales) == 1, projected)
    return module.finish_scales(acc)


@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("scales", [(1.0,), (0.5,), (2.0, 1.0, 0.5)])
@pytest.mark.parametrize("projected", [True, False])
def test_multi_scale_aggregation_matches_torch(layout_name, flip, scales, projected, rng):
    layouts = LAYOUTS[layout_name]
    passes_per_scale = [
        [stage_outputs(rng, layouts, stage0_hw(s)) for _ in range(1 + flip)]
        for s in sorted(scales, reverse=True)
    ]
    copies = [[[o.copy() for o in p] for p in ps] for ps in passes_per_scale]
    heatmaps, tags = aggregate(tta, passes_per_scale, layouts, flip, scales, projected)
    torch_passes = [[as_torch(p) for p in ps] for ps in passes_per_scale]
    expected = aggregate(tta, torch_passes, layouts, flip, scales, projected)
    assert_matches(heatmaps, expected[0])
    assert_matches(tags, expected[1])
    first_hw = stage0_hw(max(scales))  # without projection: the largest scale's stage-1 size
    h, w = (BASE_WH[1], BASE_WH[0]) if projected else (2 * first_hw[0], 2 * first_hw[1])
    assert heatmaps.shape == (1, K, h, w)
    tag_stages = sum(1 for layout in layouts if layout.tag_channels)
    tag_dim = max(1, layouts[0].tag_channels // K)
    assert tags is not None and tags.shape == (1, K, h, w, tag_dim * tag_stages * (1 + flip))
    for ps, cs in zip(passes_per_scale, copies):  # the inputs are left untouched
        for p, c in zip(ps, cs):
            assert all(np.array_equal(o, oc) for o, oc in zip(p, c))


def test_official_flip_aggregation_reproduced():
    """The recorded official raw outputs (image 196141, flip, scale 1) -> the recorded parser
    inputs, and the same maps as tta."""
    z = np.load(require(FIXTURES / "e2e" / "e2e_tiny_staged.npz"))
    raw = [z[f"raw_output{i}"] for i in range(4)]
    height, width = (int(v) for v in z["final_heatmaps_shape"][2:])
    layouts = LAYOUTS["higher"]
    passes = tta.aggregate_passes([raw[:2], raw[2:]], layouts, FLIP_INDEX, (width, height))
    acc = tta.accumulate_scale(tta.ScaleAccumulator(), 1.0, passes, True)
    heatmaps, tags = tta.finish_scales(acc)
    assert tags is not None
    np.testing.assert_allclose(heatmaps[:, :, ::4, ::4], z["final_heatmaps_sub4"], rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(tags[:, :, ::4, ::4], z["tags_sub4"], rtol=1e-5, atol=1e-5)
    torch_passes = tta.aggregate_passes(
        [as_torch(raw[:2]), as_torch(raw[2:])], layouts, FLIP_INDEX, (width, height)
    )
    expected = tta.finish_scales(tta.accumulate_scale(tta.ScaleAccumulator(), 1.0, torch_passes,
                                                      True))
    assert_matches(heatmaps, expected[0])
    assert_matches(tags, expected[1])


def test_errors_match_torch():
    layouts = (StageOutput(2, 2),)
    maps = np.zeros((1, 2, 4, 4), np.float32)
    with pytest.raises(ValueError, match="flip_index"):
        tta.aggregate_passes([[maps]] * 2, layouts, None, None)
    with pytest.raises(ValueError, match="stage layouts"):
        tta.average_stages([maps, maps], layouts)
    with pytest.raises(ValueError, match="needs heatmaps"):
        tta.accumulate_scale(tta.ScaleAccumulator(), 1.0,
                                   [tta.PassMaps(None)], True)
    with pytest.raises(ValueError, match="no scale"):
        tta.finish_scales(tta.ScaleAccumulator())


TORCH_FREE = """
import sys
from typing import NamedTuple
import numpy as np
import bupose.inference.tta as t

class Layout(NamedTuple):
    num_heatmaps: int
    tag_channels: int

def run(image):
    return [image[:, :1, ::4, ::4].repeat(34, 1), image[:, :1, ::2, ::2].repeat(17, 1)]

acc = t.ScaleAccumulator()
for s, size in ((2.0, 64), (1.0, 32)):
    passes = t.run_passes(run, np.random.rand(1, 3, size, size).astype(np.float32), True)
    maps = t.aggregate_passes(passes, [Layout(17, 17), Layout(17, 0)], list(range(17)), (20, 20))
    t.accumulate_scale(acc, s, maps, False)
heatmaps, tags = t.finish_scales(acc)
assert heatmaps.shape == (1, 17, 20, 20) and tags.shape == (1, 17, 20, 20, 2), tags.shape
assert "torch" not in sys.modules, "tta imported torch"
"""


def test_import_and_use_without_torch():
    result = subprocess.run([sys.executable, "-c", TORCH_FREE], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
