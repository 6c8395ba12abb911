"""The inference fast path: BatchNorm folding, channels-last, precision (issue 12).

The official-fixture equality tests (tests/cli/test_infer_cmd.py, tests/inference/...) run the
fast path too: ``Predictor`` folds by default."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bupose.inference.fast import (
    InferenceModel,
    check_precision,
    fold_batchnorm,
    optimize_for_inference,
)
from bupose.models import create_model


def _with_bn_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN running statistics and affine terms, so that folding is exercised."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model.eval()


def _flat(out: object) -> list[torch.Tensor]:
    return list(out) if isinstance(out, (list, tuple)) else [out]  # type: ignore[list-item]


@pytest.mark.parametrize("name", ["higherhrnet_tiny", "simplepose_hg_small",
                                  "cal_hrnet_small_64x48"])
def test_folded_model_equals_the_original(name: str) -> None:
    model = _with_bn_stats(create_model(name))
    fast = optimize_for_inference(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        want, got = _flat(model(x)), _flat(fast(x))
    assert len(want) == len(got)
    for a, b in zip(want, got):
        assert b.is_contiguous() and b.dtype == torch.float32
        torch.testing.assert_close(b, a, rtol=0, atol=1e-5 * float(a.abs().max()))
    assert fast.meta.name == model.meta.name
    if hasattr(model, "output_layout"):
        assert fast.output_layout == model.output_layout


def test_transposed_conv_with_batchnorm_is_folded() -> None:
    net = _with_bn_stats(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4),
                                       nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1,
                                                          bias=False), nn.BatchNorm2d(6)))
    folded = fold_batchnorm(net)
    assert [type(m) for m in folded] == [nn.Conv2d, nn.Identity, nn.ConvTranspose2d, nn.Identity]
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)


class _Shared(nn.Module):
    """A convolution whose output is read by its BN and by a residual sum: not foldable."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.bn(y) + y


def test_folding_refuses_a_shared_convolution_output() -> None:
    with pytest.raises(RuntimeError, match="changed the outputs"):
        fold_batchnorm(_with_bn_stats(_Shared()), torch.randn(1, 3, 8, 8))


def test_precision_names_and_bf16_maps() -> None:
    with pytest.raises(ValueError, match="unknown precision"):
        check_precision("int8")
    model = _with_bn_stats(create_model("higherhrnet_tiny"))
    fp32 = optimize_for_inference(model)
    bf16 = optimize_for_inference(model, precision="bf16")
    assert isinstance(bf16, InferenceModel) and bf16.precision == "bf16"
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        for a, b in zip(fp32(x), bf16(x)):
            assert b.dtype == torch.float32
            scale = float(a.abs().max())
            err = float((a - b).abs().max())
            assert 0 < err < 0.05 * scale  # bf16 has 8 mantissa bits: differs, but boundedly


def test_predictor_runs_the_fast_copy_unless_told() -> None:
    from bupose.inference.predictor import Predictor

    model = create_model("higherhrnet_tiny").eval()
    assert isinstance(Predictor(model).model, InferenceModel)
    assert Predictor(model, fast=False).model is model
    assert Predictor(model, precision="bf16").model.precision == "bf16"


@pytest.mark.parametrize("native", [True, False])
def test_emulated_precision_is_announced(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    class _Probe:  # stands in for torch.ops.mkldnn's support queries
        def _is_mkldnn_bf16_supported(self) -> bool:
            return native

    monkeypatch.setattr(torch.ops, "mkldnn", _Probe())
    model = create_model("higherhrnet_tiny").eval()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimize_for_inference(model, precision="bf16")
        optimize_for_inference(model)  # fp32 is never announced
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert said == ([] if native else [
        "bf16 on this CPU is emulated (no bf16 instructions): expect it several times slower "
        "than fp32"])
