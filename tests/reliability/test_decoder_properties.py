"""Property-based tests (hypothesis) of the AE-family decoders ("ae", "hae").

Random maps of random sizes, K, tag dimensions and thresholds, all-zero and constant maps: no
crash, joints inside the map, finite scores; NaN/inf in the heatmaps: the documented DataError.
The numba kernels compile once per session (or load from numba's disk cache).
"""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis not installed (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bupose.decoders import DECODERS, GroupingParams  # noqa: E402
from bupose.errors import DataError  # noqa: E402

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def maps(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps (K, h, w), tags (K, h, w, L)) float32, random or degenerate."""
    k = draw(st.integers(1, 6))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    dim = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["random", "zero", "constant", "spiky"]))
    if kind == "zero":
        heat = np.zeros((k, h, w), np.float32)
    elif kind == "constant":
        heat = np.full((k, h, w), draw(st.floats(-1, 2, width=32)), np.float32)
    elif kind == "spiky":
        heat = (rng.random((k, h, w)) > 0.9).astype(np.float32) * rng.uniform(0.1, 1.5)
    else:
        heat = rng.uniform(-0.5, 1.5, (k, h, w)).astype(np.float32)
    tags = (rng.normal(0, draw(st.floats(0.1, 5)), (k, h, w, dim))).astype(np.float32)
    return heat, tags


@st.composite
def params(draw: st.DrawFn) -> GroupingParams:
    return GroupingParams(detection_threshold=draw(st.floats(0.0, 1.0)),
                          tag_threshold=draw(st.floats(0.1, 3.0)),
                          max_people=draw(st.integers(1, 10)), top_k=draw(st.integers(1, 10)),
                          nms_kernel=draw(st.sampled_from([1, 3, 5])))


@pytest.mark.parametrize("name", ["ae", "hae"])
def test_decoder_random_maps(name: str) -> None:
    decode = DECODERS.get(name)

    @SETTINGS
    @given(maps(), params())
    def check(m: tuple[np.ndarray, np.ndarray], p: GroupingParams) -> None:
        heat, tags = m
        k, h, w = heat.shape
        grouped, scores = decode(heat, tags, p)
        grouped, scores = np.asarray(grouped), np.asarray(scores)
        assert grouped.ndim == 3 and grouped.shape[1] == k and len(scores) == len(grouped)
        assert np.isfinite(scores).all()
        xy = grouped[..., :2]
        assert np.isfinite(xy).all()
        found = grouped[..., 2] > 0
        assert (xy[found][:, 0] >= 0).all() and (xy[found][:, 0] <= w).all()
        assert (xy[found][:, 1] >= 0).all() and (xy[found][:, 1] <= h).all()

    check()


@pytest.mark.parametrize("name", ["ae", "hae"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_decoder_nonfinite_heatmaps(name: str, bad: float) -> None:
    """NaN and +inf raise DataError; -inf (a valid "never a joint" value) decodes normally."""
    rng = np.random.default_rng(0)
    heat = rng.uniform(0, 1, (3, 8, 8)).astype(np.float32)
    heat[1, 3, 4] = bad
    tags = rng.normal(0, 1, (3, 8, 8, 1)).astype(np.float32)
    if bad == -np.inf:
        _, scores = DECODERS.get(name)(heat, tags, GroupingParams())
        assert np.isfinite(np.asarray(scores)).all()
        return
    with pytest.raises(DataError):
        DECODERS.get(name)(heat, tags, GroupingParams())


@SETTINGS
@given(cx=st.floats(-500, 1500), cy=st.floats(-500, 1500), s=st.floats(0.05, 10),
       rot=st.floats(-180, 180), ow=st.integers(8, 1024), oh=st.integers(8, 1024),
       seed=st.integers(0, 2**31 - 1))
def test_affine_round_trip(cx: float, cy: float, s: float, rot: float, ow: int, oh: int,
                           seed: int) -> None:
    """Source -> output -> source with the forward and inverse matrices (and ``invert``)."""
    from bupose.structures.affine import affine_from_center_scale, apply_affine, invert

    fwd = affine_from_center_scale((cx, cy), (s, s), rot, (ow, oh))
    back = affine_from_center_scale((cx, cy), (s, s), rot, (ow, oh), inverse=True)
    xy = np.random.default_rng(seed).uniform(-1000, 2000, (20, 2))
    tol = 1e-6 * max(1.0, s * 200, abs(cx), abs(cy)) * 100
    np.testing.assert_allclose(apply_affine(apply_affine(xy, fwd), back), xy, atol=tol)
    np.testing.assert_allclose(apply_affine(apply_affine(xy, fwd), invert(fwd)), xy, atol=tol)
