"""The inference fast path: BatchNorm folded into the convolutions, optional channels-last
memory format, convolutions fused with their add / ReLU (``bupose.inference.fuse``) and
reduced-precision autocast (issue 12).

``optimize_for_inference(model)`` returns an eval copy of a pose network whose every BatchNorm
that directly follows a convolution (the only consumer of the convolution's output) is folded
into it and replaced by ``nn.Identity``:

    BN(conv(x)) = gamma * (W x + b - mean) / sqrt(var + eps) + beta
                = (W * s) x + (b - mean) * s + beta,     s = gamma / sqrt(var + eps)

(for a transposed convolution the weight's output-channel axis is dim 1). The pairs are found by
running the model once on a small input with forward hooks (which module produced the tensor a
BN receives), so every family (HRNet, HigherHRNet, fusion, hourglass, CAL) is covered without
per-architecture code; the folded copy is then checked against the original on that input.
Outputs equal the unfolded model's to float32 rounding (~1e-6 of the map scale).
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

FUSE_AFTER_CALLS = 2  # an image and its mirror image
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_CONVS = (nn.Conv2d, nn.ConvTranspose2d)


def _conv_bn_pairs(model: nn.Module, probe: Tensor) -> list[tuple[str, str]]:
    """(conv name, bn name) for every eval BatchNorm2d whose input is a convolution's output,
    found by one forward pass on ``probe`` (B, 3, H, W). Outputs are kept alive during the pass
    so that tensor ids are not reused."""
    names = {id(m): n for n, m in model.named_modules()}
    produced: dict[int, tuple[str, Tensor]] = {}
    pairs: list[tuple[str, str]] = []

    def on_bn(module: nn.Module, args: tuple) -> None:
        hit = produced.get(id(args[0])) if args else None
        if hit is not None and hit[1] is args[0] and module.track_running_stats:
            pairs.append((hit[0], names[id(module)]))

    def on_conv(module: nn.Module, args: tuple, out: Tensor) -> None:
        produced[id(out)] = (names[id(module)], out)

    hooks = [m.register_forward_pre_hook(on_bn) for m in model.modules()
             if isinstance(m, nn.BatchNorm2d)]
    hooks += [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, _CONVS)]
    try:
        with torch.no_grad():
            model(probe)
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(pairs))


def _fold(conv: nn.Conv2d | nn.ConvTranspose2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` into ``conv`` in place (``conv`` gets a bias if it had none)."""
    assert bn.running_mean is not None and bn.running_var is not None
    scale = torch.rsqrt(bn.running_var.double() + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    w: Tensor = conv.weight
    if isinstance(conv, nn.ConvTranspose2d):
        groups = conv.groups
        view = w.view(groups, w.shape[0] // groups, w.shape[1], *w.shape[2:])
        view = view * scale.view(groups, 1, -1, 1, 1).to(w.dtype)
        conv.weight = nn.Parameter(view.reshape(w.shape).contiguous(), requires_grad=False)
    else:
        conv.weight = nn.Parameter((w.double() * scale.view(-1, 1, 1, 1)).to(w.dtype),
                                   requires_grad=False)
    bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(scale)
    conv.bias = nn.Parameter((bias * scale + shift).to(w.dtype), requires_grad=False)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def fold_batchnorm(model: nn.Module, probe: Tensor | None = None) -> nn.Module:
    """An eval copy of ``model`` with every conv -> BN pair folded (see the module docstring).

    Args:
        model: a pose network taking (B, 3, H, W) images.
        probe: the input used to find the pairs and check the result; default a (1, 3, 64, 64)
            random image (any size the model accepts, on the model's device).

    Raises:
        RuntimeError: the folded copy's outputs differ from the original's (a BN input that the
            model also reads elsewhere: the pair would not be foldable).
    """
    model = copy.deepcopy(model).eval()
    if probe is None:
        param = next(iter(model.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        probe = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)).to(device)
    pairs = _conv_bn_pairs(model, probe)
    with torch.no_grad():
        before = [t.clone() for t in _tensors(model(probe))]
        for conv_name, bn_name in pairs:
            _fold(model.get_submodule(conv_name), model.get_submodule(bn_name))  # type: ignore[arg-type]
            _replace(model, bn_name, nn.Identity())
        after = _tensors(model(probe))
    if not _same(before, after):
        raise RuntimeError("BatchNorm folding changed the outputs: a folded BN input is "
                           "read elsewhere in the model")
    return model


def _same(before: list[Tensor], after: list[Tensor]) -> bool:
    """Equal shapes and values within 1e-4 of each output's scale (float32 rounding)."""
    return len(before) == len(after) and all(
        a.shape == b.shape and torch.allclose(a, b, rtol=0, atol=1e-4 * max(1.0, float(
            a.abs().max()))) for a, b in zip(before, after))


def fuse_pointwise(net: nn.Module, probe: Tensor | None = None) -> nn.Module:
    """``bupose.inference.fuse.fuse_conv_pointwise(net)`` (may modify ``net`` in place), checked
    against ``net``'s outputs on ``probe`` (default two (3, 128, 128) random images,
    channels-last). When the fused module fails or differs (a network whose forward reads its
    parts in ways tracing cannot see), ``net`` is restored and returned, with a warning.
    """
    from bupose.inference.fuse import fuse_conv_pointwise, unfuse

    if probe is None:  # two images: PyTorch runs (and fusion replaces) oneDNN at any size
        probe = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
        param = next(iter(net.parameters()), None)
        probe = probe.contiguous(memory_format=torch.channels_last).to(
            param.device if param is not None else "cpu")
    with torch.inference_mode():
        try:
            before = [t.clone() for t in _tensors(net(probe))]
            runner = fuse_conv_pointwise(net)
            problem = None if _same(before, _tensors(runner(probe))) else "changed the outputs"
        except Exception as err:  # noqa: BLE001 - any failure: run the network unfused
            problem = f"failed ({type(err).__name__}: {err})"
    if problem is None:
        return runner
    unfuse(net)
    warnings.warn(f"fusing the convolutions with their add / ReLU {problem}; running the "
                  f"network unfused", RuntimeWarning, stacklevel=2)
    return net


def _tensors(out: object) -> list[Tensor]:
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _tensors(o)]
    return []


class InferenceModel(nn.Module):
    """A folded network run under a precision and memory format; outputs are contiguous
    float32 tensors in the wrapped network's structure (tuple / list / dict / tensor).

    Attributes other than its own (``meta``, ``output_layout``, ``num_keypoints`` ...) are read
    from the wrapped network, so the predictors use it in place of the model.

    Args:
        net: the (folded) network, eval mode.
        precision: "fp32", "bf16" or "fp16" (autocast of the forward pass on the net's device).
        channels_last: feed NHWC (channels-last) inputs; the net's weights must be converted too.
        fuse: from the third call on (``FUSE_AFTER_CALLS``), run ``fuse_pointwise(net)``
            (which shares ``net``'s parameters) in place of ``net``. Tracing and checking it
            costs 0.1-0.4 s on a CPU here, which a one-image run (one call, two with flip)
            would not win back.
    """

    def __init__(self, net: nn.Module, precision: str = "fp32", channels_last: bool = False,
                 fuse: bool = False):
        super().__init__()
        self.net, self.precision, self.channels_last = net, precision, channels_last
        self.fuse_pending, self.calls = fuse, 0
        self.__dict__["runner"] = net  # not a submodule: the state dict stays ``net``'s

    def fuse_now(self) -> None:
        """Build the fused runner now if it is still pending (``fuse``)."""
        if self.fuse_pending:
            self.__dict__["runner"] = fuse_pointwise(self.net)
            self.fuse_pending = False

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("net"), name)

    def forward(self, images: Tensor) -> object:
        """images (B, 3, H, W) float32 -> the net's outputs, float32, contiguous NCHW."""
        self.calls += 1
        if self.calls > FUSE_AFTER_CALLS:
            self.fuse_now()
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.precision, images.device):
            out = self.runner(images)
        return _as_float(out)


def _as_float(out: object) -> object:
    if isinstance(out, Tensor):
        return out.float().contiguous()
    if isinstance(out, (list, tuple)):
        return type(out)(_as_float(o) for o in out)
    if isinstance(out, dict):
        return {k: _as_float(v) for k, v in out.items()}
    return out


def check_precision(precision: str, device: torch.device | str = "cpu") -> None:
    """Raise ValueError for an unknown precision or one the device cannot autocast to."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {sorted(PRECISIONS)}")
    kind = torch.device(device).type
    if precision != "fp32" and not torch.amp.autocast_mode.is_autocast_available(kind):
        raise ValueError(f"{precision} autocast is not available on {kind}")


@contextlib.contextmanager
def autocast(precision: str, device: torch.device | str = "cpu") -> Iterator[None]:
    """The forward pass's precision: nothing for fp32, else autocast to bf16 / fp16."""
    check_precision(precision, device)
    if precision == "fp32":
        yield
        return
    with torch.autocast(torch.device(device).type, dtype=PRECISIONS[precision]):
        yield


def warn_if_emulated(precision: str, device: torch.device | str) -> None:
    """A RuntimeWarning when a CPU without bf16 / fp16 instructions (AVX-512-BF16 or AMX;
    AVX-512-FP16 or AMX-FP16), as oneDNN reports it, is asked for that precision: autocast then
    runs slower kernels than fp32's (the README's table: 0.09x of fp32 on an AVX2 EPYC)."""
    if precision == "fp32" or torch.device(device).type != "cpu":
        return
    try:
        native = bool(getattr(torch.ops.mkldnn, f"_is_mkldnn_{precision}_supported")())
    except (AttributeError, RuntimeError):  # this build cannot tell: say nothing, not a guess
        return
    if not native:
        warnings.warn(f"{precision} on this CPU is emulated (no {precision} instructions): "
                      "expect it several times slower than fp32", RuntimeWarning, stacklevel=3)


def default_channels_last(device: torch.device | str) -> bool:
    """Channels-last pays for the HRNet convolutions on CPUs (W32-512 at 512x512 on a 2-core
    AVX2 EPYC: 0.76 s -> 0.63-0.67 s per forward, folded); on CUDA too with fp16/bf16."""
    return torch.device(device).type in ("cpu", "cuda")


def optimize_for_inference(model: nn.Module, *, precision: str = "fp32",
                           channels_last: bool | None = None,
                           fold_bn: bool = True, fuse: bool | None = None) -> InferenceModel:
    """An ``InferenceModel`` of a copy of ``model``: BatchNorm folded (``fold_batchnorm``),
    weights channels-last (default ``default_channels_last`` of the model's device), run under
    ``precision``, convolutions fused with their add / ReLU from its third call on
    (``fuse_pointwise``; default when folded, fp32, channels-last, on the CPU). The model
    itself is not modified. A model without parameters (an exported network) is wrapped as it
    is."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    check_precision(precision, device)
    warn_if_emulated(precision, device)
    if param is None:
        return InferenceModel(model, precision, False)
    net = fold_batchnorm(model) if fold_bn else copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    if channels_last is None:
        channels_last = default_channels_last(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if fuse is None:
        fuse = fold_bn and channels_last and precision == "fp32" and device.type == "cpu"
    return InferenceModel(net, precision, channels_last, fuse)
