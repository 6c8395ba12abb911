"""Property-based tests (hypothesis) of the SimplePose V2 ("offsets") and CAL decoders.

Random maps of random sizes, joint counts, skeletons, thresholds and top-k, with degenerate
(all-zero, constant, spiky) heatmaps and huge offsets: no crash, finite outputs, joints inside
the input frame (offsets) or where the read-out formula puts them (CAL); NaN/inf maps: the
documented errors.
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bupose.decoders.cal import CalParams, decode_cal  # noqa: E402
from bupose.decoders.offsets import (  # noqa: E402
    COCO_OFFSET_SKELETON,
    OffsetParams,
    decode_offsets,
)
from bupose.errors import DataError  # noqa: E402
from bupose.structures.spec import get_spec  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _heatmaps(draw: st.DrawFn, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    kind = draw(st.sampled_from(["random", "zero", "constant", "spiky"]))
    if kind == "zero":
        return np.zeros(shape, np.float32)
    if kind == "constant":
        return np.full(shape, draw(st.floats(-1, 2, width=32)), np.float32)
    if kind == "spiky":
        return ((rng.random(shape) > 0.9) * rng.uniform(0.05, 1.5)).astype(np.float32)
    return rng.uniform(-0.2, 1.2, shape).astype(np.float32)


@st.composite
def offset_case(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, OffsetParams, tuple]:
    """(heatmaps (J,h,w), offsets (2L or 4L,h,w), params, skeleton)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if draw(st.booleans()):
        joints, skeleton = 17, COCO_OFFSET_SKELETON
    else:
        joints = draw(st.integers(1, 5))
        n = draw(st.integers(1, 6))
        skeleton = tuple((int(a), int(b)) for a, b in rng.integers(0, joints, (n, 2)))
    h, w = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    heat = _heatmaps(draw, rng, (joints, h, w))
    nvec = draw(st.sampled_from([2, 4]))
    spread = draw(st.sampled_from([1.0, 20.0, 1e4]))
    offsets = rng.normal(0, spread, (nvec * len(skeleton), h, w)).astype(np.float32)
    params = OffsetParams(thre_hmp=draw(st.floats(0.0, 1.0)), topk=draw(st.integers(1, 8)),
                          dist_max=draw(st.floats(1.0, 60.0)),
                          person_thre=draw(st.floats(0.0, 0.5)),
                          peaks=draw(st.sampled_from(["windowed", "full"])),
                          use_scale=draw(st.booleans()))
    return heat, offsets, params, skeleton


@SETTINGS
@given(offset_case())
def test_offsets_decoder_random_maps(case: tuple) -> None:
    heat, offsets, params, skeleton = case
    joints, h, w = heat.shape
    poses = decode_offsets(heat, offsets, params, skeleton).poses
    assert poses.ndim == 3 and poses.shape[1:] == (joints, 6)
    assert np.isfinite(poses).all()
    found = poses[..., 2] > 0
    xy = poses[..., :2][found]
    assert (xy >= 0).all(), xy.min(0)
    assert (xy[:, 0] < w * params.upsample).all() and (xy[:, 1] < h * params.upsample).all()


@SETTINGS
@given(offset_case())
def test_offsets_windowed_peaks_equal_full(case: tuple) -> None:
    """The windowed top-k is an optimisation of the reference's whole-map top-k: the same
    people on any maps."""
    heat, offsets, params, skeleton = case
    a = decode_offsets(heat, offsets, params.__class__(**{**params.__dict__, "peaks": "full"}),
                       skeleton).poses
    b = decode_offsets(heat, offsets,
                       params.__class__(**{**params.__dict__, "peaks": "windowed"}),
                       skeleton).poses
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("where", ["heatmaps", "offsets"])
def test_offsets_decoder_nonfinite(where: str, bad: float) -> None:
    rng = np.random.default_rng(0)
    heat = rng.uniform(0, 1, (17, 8, 8)).astype(np.float32)
    off = rng.normal(0, 4, (38, 8, 8)).astype(np.float32)
    (heat if where == "heatmaps" else off)[3, 2, 2] = bad
    with pytest.raises(DataError, match="not finite"):
        decode_offsets(heat, off)


@st.composite
def cal_case(draw: st.DrawFn) -> tuple:
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n, h, w = draw(st.integers(1, 5)), draw(st.integers(2, 16)), draw(st.integers(2, 12))
    heat = _heatmaps(draw, rng, (n, 17, h, w))
    off = rng.normal(0, draw(st.sampled_from([0.0, 1.0, 1e3])), (n, 34, h, w)).astype(np.float32)
    center = rng.uniform(-100, 1000, (n, 2))
    scale = rng.uniform(0.05, 5, (n, 2))
    flip = draw(st.booleans())
    extra = (heat[:, :, :, ::-1].copy(), off[:, :, :, ::-1].copy()) if flip else (None, None)
    params = CalParams(in_vis_thre=draw(st.floats(0, 1)), oks_thre=draw(st.floats(0.1, 1.0)),
                       readout=draw(st.sampled_from(["offset", "argmax", "quarter", "dark"])))
    image_id = rng.integers(0, 2, n)
    return heat, off, center, scale, rng.uniform(0, 1, n), image_id, extra, params


@SETTINGS
@given(cal_case())
def test_cal_decoder_random_maps(case: tuple) -> None:
    heat, off, center, scale, box_score, image_id, (hf, of), params = case
    out = decode_cal(heat, off, center, scale, box_score, image_id, hf, of,
                     get_spec("coco17"), params)
    n = len(heat)
    assert out.keypoints.shape == (n, 17, 3) and np.isfinite(out.keypoints).all()
    assert np.isfinite(out.scores).all()
    kept = [i for _, members, keep in out.nms for i in np.asarray(members)[keep]]
    assert len(set(kept)) == len(kept) and set(kept) <= set(range(n))
    if params.readout == "argmax":  # cells: the box, exactly (the unbiased inverse)
        side = scale * 200.0
        lo, hi = center - side / 2, center + side / 2
        xy = out.keypoints[..., :2]
        tol = 1e-3 * np.maximum(1.0, np.abs(center) + side)[:, None, :]
        assert (xy >= lo[:, None] - tol).all() and (xy <= hi[:, None] + tol).all()


def test_cal_decoder_nonfinite_maps() -> None:
    rng = np.random.default_rng(0)
    heat = rng.uniform(0, 1, (2, 17, 8, 6)).astype(np.float32)
    off = np.zeros((2, 34, 8, 6), np.float32)
    heat[1, 4, 3, 3] = np.nan
    with pytest.raises(DataError, match="not finite"):
        decode_cal(heat, off, np.zeros((2, 2)), np.ones((2, 2)), np.ones(2), np.zeros(2))
