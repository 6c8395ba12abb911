"""OffsetLoss against the official ``models.losses`` values (fixtures README, losses.json)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from bupose.errors import ConfigError
from bupose.losses.offset_loss import OffsetLoss, focal_l2
from tests.conftest import SHARED, require

FIX = SHARED / "fixtures" / "official_offsetguided"
RTOL = 1e-5


def _codes(shape: tuple[int, ...], salt: int) -> np.ndarray:
    n = np.arange(int(np.prod(shape)), dtype=np.uint64)
    h = ((n * np.uint64(2654435761) + np.uint64(salt * 40503)) % np.uint64(2**32)) >> np.uint64(24)
    return h.reshape(shape)


def _values(codes: np.ndarray, lo: float, step: float) -> np.ndarray:
    return (np.float32(lo) + np.float32(step) * codes.astype(np.float32)).astype(np.float32)


@pytest.fixture(scope="module")
def case() -> tuple[dict, dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
    ref = json.loads(require(FIX / "losses" / "losses.json").read_text())
    files = [np.load(FIX / "targets" / f"targets_{c}.npz") for c in ref["cases"]]
    t = {k: np.stack([f[k] for f in files]) for k in
         ("heatmaps", "offsets", "scales", "instance_scales", "mask_miss")}
    preds: dict[str, list[np.ndarray]] = {"hmp": [], "off": [], "scale": []}
    for s in (0, 1):
        preds["hmp"].append(_values(_codes(t["heatmaps"].shape, 11 + s), -0.25, 0.0078125))
        c = _codes(t["offsets"].shape, 21 + s)
        off = _values(c, -64.0, 0.5)
        keep = (c < 16) & np.isfinite(t["offsets"])
        off[keep] = t["offsets"][keep]
        preds["off"].append(off)
        c = _codes(t["scales"].shape, 31 + s)
        sc = _values(c, 0.0, 0.0625)
        keep = (c < 16) & np.isfinite(t["scales"])
        sc[keep] = t["scales"][keep] + np.float32(0.0625)
        preds["scale"].append(sc)
    sha = ref["predictions"]["sha256_of_float32_bytes"]
    for name, arrays in preds.items():
        for s, a in enumerate(arrays):
            digest = hashlib.sha256(np.ascontiguousarray(a, np.float32).tobytes()).hexdigest()
            assert digest == sha[f"{name}_s{s}"], f"prediction {name}_s{s} not rebuilt exactly"
    outputs = tuple(torch.from_numpy(np.stack(preds[n], axis=1)) for n in ("hmp", "off", "scale"))
    return ref, {k: torch.from_numpy(v) for k, v in t.items()}, outputs


def test_readme_flags(case) -> None:
    ref, batch, outputs = case
    r = ref["readme_flags"]
    raw = OffsetLoss().unweighted(outputs, batch)
    for ours, key in (("heatmap", "hmp_loss"), ("offset", "offset_loss"), ("scale", "scale_loss")):
        assert float(raw[ours]) == pytest.approx(r[key], rel=RTOL)
    terms = OffsetLoss()(outputs, batch)
    assert set(terms) == {"heatmap", "offset", "scale"}
    w = r["weighted"]
    assert [float(terms[k]) for k in ("heatmap", "offset", "scale")] == pytest.approx(
        [w[0], w[3], w[4]], rel=RTOL)
    assert float(sum(terms.values())) == pytest.approx(r["total"], rel=RTOL)


def test_per_stack_weight1(case) -> None:
    ref, batch, outputs = case
    for s, r in enumerate(ref["per_stack_weight1"]):
        one = tuple(o[:, s:s + 1] for o in outputs)
        raw = OffsetLoss(stack_weights=(1.0,)).unweighted(one, batch)
        assert float(raw["heatmap"]) == pytest.approx(r["hmp_loss"], rel=RTOL)
        assert float(raw["offset"]) == pytest.approx(r["offset_loss"], rel=RTOL)
        assert float(raw["scale"]) == pytest.approx(r["scale_loss"], rel=RTOL)


def test_gamma2_and_plain_l2(case) -> None:
    ref, batch, outputs = case
    g2 = OffsetLoss(gamma=2.0).unweighted(outputs, batch)["heatmap"]
    assert float(g2) == pytest.approx(ref["hmp_loss_gamma2_explicit"], rel=RTOL)
    l2 = OffsetLoss(focal=False).unweighted(outputs, batch)["heatmap"]
    assert float(l2) == pytest.approx(ref["hmp_loss_plain_l2"], rel=RTOL)
    assert ref["flags"]["focal_l2_default_gamma_actually_used"] == 1


def test_focal_weight_and_gradients() -> None:
    s = torch.tensor([0.9, 0.2], requires_grad=True)
    g = torch.tensor([1.0, 0.0])
    out = focal_l2(s, g, gamma=2.0)
    expected = 0.5 * torch.tensor([0.01 * 0.01, 0.04 * 0.04])
    assert torch.allclose(out, expected)
    out.sum().backward()
    assert s.grad is not None and torch.isfinite(s.grad).all()


def test_zero_lambda_term_left_out_and_bad_weights() -> None:
    loss = OffsetLoss(scale_weight=0.0)
    b = {"heatmaps": torch.zeros(1, 17, 4, 4), "offsets": torch.full((1, 38, 4, 4), float("inf")),
         "scales": torch.full((1, 17, 4, 4), float("nan")),
         "instance_scales": torch.ones(1, 38, 4, 4),
         "mask_miss": torch.ones(1, 1, 4, 4, dtype=torch.bool)}
    out = loss((torch.zeros(1, 2, 17, 4, 4), torch.zeros(1, 2, 38, 4, 4),
                torch.zeros(1, 2, 17, 4, 4)), b)
    assert set(out) == {"heatmap", "offset"} and float(out["offset"]) == 0.0
    with pytest.raises(ConfigError):
        OffsetLoss(stack_weights=())
    with pytest.raises(ConfigError):
        OffsetLoss(gamma=-1)
