"""Convolution + add + ReLU fusion of the inference fast path (bupose.inference.fuse, issue 12).

Fusion must never change a result: every comparison here is bit-for-bit (``torch.equal``)
against the same folded, channels-last network run without it."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bupose.inference.fast import fold_batchnorm, fuse_pointwise, optimize_for_inference
from bupose.inference.fuse import PointwiseConv, available, fuse_conv_pointwise, uses_onednn
from bupose.models import create_model
from tests.inference.test_fast import _with_bn_stats

pytestmark = pytest.mark.skipif(not available(), reason="this PyTorch build has no oneDNN")


def _leaves(out: object) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in out for t in _leaves(o)]  # type: ignore[union-attr]


def _fused_count(module: nn.Module) -> int:
    return sum(isinstance(m, PointwiseConv) for m in module.modules())


def _image(b: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    x = torch.randn(b, 3, h, w, generator=torch.Generator().manual_seed(seed))
    return x.contiguous(memory_format=torch.channels_last)


def _assert_bit_equal(a: nn.Module, b: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        want, got = _leaves(a(x)), _leaves(b(x))
    assert len(want) == len(got)
    for p, q in zip(want, got):
        assert torch.equal(p, q), float((p - q).abs().max())


@pytest.mark.parametrize("name,sizes", [
    ("higherhrnet_tiny", [(1, 128, 128), (2, 128, 192), (1, 256, 448)]),
    ("simplepose_hg_small", [(1, 128, 128), (2, 128, 128)]),
    ("cal_hrnet_small_64x48", [(1, 64, 48), (3, 64, 48)]),
])
def test_every_family_is_fused_with_bit_identical_outputs(name, sizes) -> None:
    """Whole-network graphs (HigherHRNet, CAL) and, where the network's own forward cannot be
    traced (SimplePose checks its input size), its Sequential parts; single small images take
    PyTorch's native kernel and so are left unfused there (``uses_onednn``)."""
    net = fold_batchnorm(_with_bn_stats(create_model(name))).to(
        memory_format=torch.channels_last)
    runner = fuse_conv_pointwise(copy.deepcopy(net))
    assert _fused_count(runner) > 0.6 * sum(type(m) is nn.Conv2d for m in net.modules())
    for b, h, w in sizes:
        _assert_bit_equal(net, runner, _image(b, h, w))


class _Residual(nn.Module):
    """The block shapes of HRNet, as separate patterns."""

    def __init__(self, shortcut_first: bool = False, inplace_into_other: bool = False):
        super().__init__()
        self.a, self.b = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut_first, self.inplace_into_other = shortcut_first, inplace_into_other

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.a(x))
        if self.inplace_into_other:
            s = x * 1
            s.add_(self.b(y))  # writes into s: a fused call would leave s unchanged
            return s + s
        out = (x + self.b(y)) if self.shortcut_first else (self.b(y) + x)
        return self.relu(out)


@pytest.mark.parametrize("shortcut_first", [False, True])
def test_conv_add_relu_fuses_in_either_operand_order(shortcut_first) -> None:
    net = _Residual(shortcut_first).eval()
    runner = fuse_conv_pointwise(copy.deepcopy(net))
    fused = [m for m in runner.modules() if isinstance(m, PointwiseConv)]
    assert len(fused) == 2 and all(m.relu for m in fused)
    _assert_bit_equal(net, runner, torch.randn(2, 4, 40, 40))


def test_a_broadcast_addend_runs_unfused() -> None:
    """oneDNN's binary post-operation needs the output's shape; PyTorch's add broadcasts."""
    conv = nn.Conv2d(4, 6, 3, padding=1, stride=2).eval()
    fused = PointwiseConv(conv, relu=True)
    x = torch.randn(2, 4, 15, 15)
    with torch.inference_mode():
        for other in (torch.randn(2, 6, 8, 8), torch.randn(1, 6, 8, 8), torch.randn(6, 1, 1)):
            assert torch.equal(fused(x, other), torch.relu(conv(x) + other))


def test_an_in_place_add_into_the_other_operand_is_left_alone() -> None:
    net = _Residual(inplace_into_other=True).eval()
    runner = fuse_conv_pointwise(copy.deepcopy(net))
    assert _fused_count(runner) == 1  # the first conv + ReLU only
    _assert_bit_equal(net, runner, torch.randn(2, 4, 40, 40))


class _ReadTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return torch.relu(y) + y


def test_a_convolution_read_twice_is_not_fused() -> None:
    net = _ReadTwice().eval()
    assert fuse_conv_pointwise(net) is net and _fused_count(net) == 0


def test_uses_onednn_follows_pytorchs_own_choice() -> None:
    conv3, conv1 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 1)
    assert not uses_onednn(torch.randn(1, 8, 16, 16), conv3)  # 2048 values: native
    assert uses_onednn(torch.randn(2, 8, 16, 16), conv3)
    assert uses_onednn(torch.randn(1, 8, 64, 64), conv3)  # 32768 > 20480
    assert not uses_onednn(torch.randn(2, 8, 16, 16).double(), conv3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert not uses_onednn(torch.randn(2, 8, 64, 64), conv1)
        assert uses_onednn(torch.randn(2, 8, 64, 64), conv3)
    finally:
        torch.set_num_threads(threads)


def test_fast_path_fuses_from_its_third_call_with_the_nets_state() -> None:
    model = _with_bn_stats(create_model("higherhrnet_tiny"))
    fast, plain = optimize_for_inference(model), optimize_for_inference(model, fuse=False)
    x = _image(2, 128, 128)
    for _ in range(2):  # an image and its mirror image: a one-image run pays nothing
        _assert_bit_equal(plain, fast, x)
    assert fast.runner is fast.net and fast.fuse_pending
    _assert_bit_equal(plain, fast, x)
    assert fast.runner is not fast.net and _fused_count(fast.runner) > 0
    assert fast.state_dict().keys() == {f"net.{k}" for k in fast.net.state_dict()}
    _assert_bit_equal(plain, copy.deepcopy(fast), _image(2, 128, 192))
    for other in (plain, optimize_for_inference(model, precision="bf16")):
        for _ in range(3):
            other(x)
        assert other.runner is other.net and _fused_count(other.runner) == 0


def test_a_fusion_that_changes_the_outputs_is_undone_with_a_warning(monkeypatch) -> None:
    import bupose.inference.fuse as fuse

    monkeypatch.setattr(fuse.PointwiseConv, "forward",
                        lambda self, x, other=None: self.conv(x) * 1.5)
    net = fold_batchnorm(_with_bn_stats(create_model("higherhrnet_tiny")))
    net = net.to(memory_format=torch.channels_last)
    with pytest.warns(RuntimeWarning, match="changed the outputs"):
        assert fuse_pointwise(net) is net
    assert _fused_count(net) == 0


class _IndexesItsSequential(nn.Module):
    """Traceable parts, but a forward that reads a Sequential's items (data-dependent control
    flow stops tracing the whole)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2:
            raise ValueError("even widths only")
        return self.body[1](self.body[0](x))


def test_a_network_that_breaks_when_fused_is_restored() -> None:
    net = _IndexesItsSequential().eval()
    reference = copy.deepcopy(net)
    with pytest.warns(RuntimeWarning, match="failed"):
        assert fuse_pointwise(net, torch.randn(2, 3, 8, 8)) is net
    assert isinstance(net.body, nn.Sequential) and _fused_count(net) == 0
    _assert_bit_equal(reference, net, torch.randn(2, 3, 8, 8))
