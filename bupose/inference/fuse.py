"""Convolution + residual add + ReLU in one oneDNN call, for CPU fp32 inference (issue 12).

After BatchNorm folding (``bupose.inference.fast.fold_batchnorm``) an HRNet is a chain of

    y = relu(conv(x))                    (stems, transitions, first conv of every block)
    y = relu(conv(x) + shortcut)         (second / third conv of every residual block)
    y = s + conv(x)                      (the multi-resolution fusion's down-sampling terms)

run as separate kernels: each ``add`` and ``relu`` re-reads and re-writes a whole feature map.
oneDNN applies them as post-operations while the convolution's output is still in cache
(``torch.ops.mkldnn._convolution_pointwise``, the operator PyTorch's own compiler emits for the
same patterns on CPU). ``fuse_conv_pointwise(net)`` traces the network with ``torch.fx`` and
rewrites those patterns. Each fused call runs only where PyTorch would run that convolution
with oneDNN itself (``uses_onednn``: not a single small image, where its native kernel sums in
another order); there the convolution computes the same sums and the post-operations add and
clamp the float32 result as the separate kernels do, so the outputs are bit-identical
(``bupose.inference.fast.fuse_pointwise`` checks a probe input; the tests compare every model
family). A network that cannot be traced whole has its traceable ``nn.Sequential`` parts fused.

Only a convolution whose output has no other reader is fused, into an add or ReLU whose result
is read: an in-place ``t.add_(conv(x))`` or ``relu_(t)`` whose result is dropped keeps its
eager meaning. (``torch.fx`` records ``a += b`` as ``a + b``, as the traced graph runs it.)
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import torch
from torch import Tensor, fx, nn

_ADDS = (operator.add, operator.iadd, torch.add)
_RELUS = (torch.relu, torch.relu_, nn.functional.relu)


def available() -> bool:
    """Whether this PyTorch build has oneDNN's fused convolution operator."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn,
                                                            "_convolution_pointwise")


def uses_onednn(x: Tensor, conv: nn.Conv2d) -> bool:
    """Whether PyTorch runs ``conv(x)`` with oneDNN: float32 on the CPU, except a single image
    of <= 20480 input values with a kernel of 3x3 or less, and an unstrided 1x1 kernel on one
    thread below batch 16, where its native kernel runs instead (ConvParams::use_mkldnn in
    aten/src/ATen/native/Convolution.cpp). Different kernels sum in different orders: fusing
    only where oneDNN runs anyway keeps the outputs bit-identical."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or not torch.backends.mkldnn.enabled:
        return False
    (kh, kw), batch = conv.kernel_size, x.shape[0]
    unstrided = all(s == 1 for s in conv.stride) and all(d == 1 for d in conv.dilation)
    if unstrided and batch < 16 and (kh, kw) == (1, 1) and torch.get_num_threads() == 1:
        return False
    return conv.groups > 1 or (kh > 3 and kw > 3) or batch > 1 or x.numel() > 20480


def _output_shape(x: Tensor, conv: nn.Conv2d) -> tuple[int, int, int, int]:
    """(B, C_out, H', W') of ``conv(x)`` for x (B, C_in, H, W) and numeric padding."""
    size = [x.shape[0], conv.out_channels]
    padding: tuple[int, ...] = conv.padding  # type: ignore[assignment]  # numeric (fusable)
    for n, k, p, s, d in zip(x.shape[-2:], conv.kernel_size, padding, conv.stride,
                             conv.dilation):
        size.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple(size)  # type: ignore[return-value]


class PointwiseConv(nn.Module):
    """``conv(x)``, ``+ other`` if given, then ReLU if ``relu``, as one oneDNN call where
    PyTorch itself would run the convolution with oneDNN (``uses_onednn``); elsewhere as the
    separate PyTorch operations, so the sums are always PyTorch's own.

    The weight is passed as it is: reordering it once into oneDNN's blocked layout for one
    input shape made the sums differ (~1e-6 of the scale) at other shapes, and was no faster
    at 512x832 here (alternating forwards of HigherHRNet-W32: medians 2.00 s against 1.90 s).

    Args:
        conv: a zero-padded ``nn.Conv2d`` (its weight and bias are shared, not copied).
        relu: apply ReLU to the result.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.conv, self.relu = conv, relu

    def forward(self, x: Tensor, other: Tensor | None = None) -> Tensor:
        """x (B, C_in, H, W), other (B, C_out, H', W') -> (B, C_out, H', W')."""
        c = self.conv
        if not uses_onednn(x, c) or other is not None and (
                other.shape != _output_shape(x, c) or other.dtype != x.dtype):  # broadcast
            y = c(x) if other is None else c(x) + other
            return torch.relu(y) if self.relu else y
        args = (c.weight, c.bias, c.padding, c.stride, c.dilation, c.groups)
        unary = "relu" if self.relu else None
        if other is None:
            return torch.ops.mkldnn._convolution_pointwise(x, *args, unary or "none", [], "")
        return torch.ops.mkldnn._convolution_pointwise.binary(x, other, *args, "add", 1.0,
                                                              unary, [], "")


def _is_relu(gm: fx.GraphModule, node: fx.Node) -> bool:
    if node.op == "call_module":
        return isinstance(gm.get_submodule(str(node.target)), nn.ReLU)
    if node.op == "call_method":
        return node.target in ("relu", "relu_")
    return node.op == "call_function" and node.target in _RELUS


def _is_add(node: fx.Node) -> bool:
    if node.op == "call_method" and node.target in ("add", "add_"):
        return len(node.args) == 2 and not node.kwargs
    return (node.op == "call_function" and node.target in _ADDS and len(node.args) == 2
            and not node.kwargs)


def _add_orders(node: fx.Node) -> tuple[tuple[int, int], ...]:
    """(conv operand, other operand) positions to try: an in-place add writes into its first
    operand, which must then be the (unread elsewhere) convolution output."""
    inplace = node.target in ("add_", operator.iadd)
    return ((0, 1),) if inplace else ((0, 1), (1, 0))


def _fusable_conv(gm: fx.GraphModule, node: object) -> nn.Conv2d | None:
    """The ``nn.Conv2d`` that ``node`` calls, if its output is read only once and oneDNN can
    take it (2-D, zero padding given as numbers)."""
    if not isinstance(node, fx.Node) or node.op != "call_module" or len(node.users) != 1:
        return None
    conv = gm.get_submodule(str(node.target))
    if (type(conv) is not nn.Conv2d or conv.padding_mode != "zeros"
            or isinstance(conv.padding, str)):
        return None
    return conv


def _drop_identities(gm: fx.GraphModule) -> None:
    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Identity):
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)


class _Match(NamedTuple):
    """A fusable chain: the convolution's node and module, the other addend, and the ReLU."""

    conv_node: fx.Node
    conv: nn.Conv2d
    other: fx.Node | None
    relu: bool


def _match(gm: fx.GraphModule, node: fx.Node) -> _Match | None:
    """The fusable chain ending at ``node``: relu(conv(x)), relu(conv(x) + other) or
    conv(x) + other."""
    relu = _is_relu(gm, node)
    src = node.args[0] if relu and node.args else node
    conv = _fusable_conv(gm, src)
    if relu and conv is not None:
        return _Match(src, conv, None, True)  # type: ignore[arg-type]
    if not isinstance(src, fx.Node) or not _is_add(src) or len(src.users) != 1 and relu:
        return None
    for mine, theirs in _add_orders(src):
        conv_node, other = src.args[mine], src.args[theirs]
        conv = _fusable_conv(gm, conv_node)
        if conv is not None and isinstance(other, fx.Node):
            return _Match(conv_node, conv, other, relu)  # type: ignore[arg-type]
    return None


def _rewrite(gm: fx.GraphModule, last: fx.Node, match: _Match, name: str) -> None:
    """Replace the chain ending at ``last`` by one ``PointwiseConv`` call, submodule ``name``."""
    gm.add_submodule(name, PointwiseConv(match.conv, match.relu))
    x = match.conv_node.args[0]
    with gm.graph.inserting_after(last):
        fused = gm.graph.call_module(name, (x,) if match.other is None else (x, match.other))
    last.replace_all_uses_with(fused)
    for node in dict.fromkeys((last, last.args[0], match.conv_node)):  # the chain, now unread
        if isinstance(node, fx.Node) and not node.users:
            gm.graph.erase_node(node)


def _fused_graph(module: nn.Module) -> fx.GraphModule | None:
    """``module`` traced with its patterns fused; None if it cannot be traced or none match."""
    try:
        gm = fx.symbolic_trace(module)
    except Exception:  # noqa: BLE001 - data-dependent control flow: leave it as it is
        return None
    _drop_identities(gm)
    count = 0
    # Last node first, so that relu(conv + other) is seen before its add alone.
    for node in reversed(list(gm.graph.nodes)):
        found = _match(gm, node) if node.users else None
        if found is not None:
            _rewrite(gm, node, found, f"pointwise_conv_{count}")
            count += 1
    if count == 0:
        return None
    gm.recompile()
    return gm


def _fuse_sequentials(module: nn.Module) -> None:
    """Replace, in place, every traceable ``nn.Sequential`` below ``module`` by its fused
    graph (a Sequential has one input and no attributes that its parent could read)."""
    for name, child in module.named_children():
        gm = _fused_graph(child) if isinstance(child, nn.Sequential) else None
        if gm is not None:
            gm.__dict__["unfused"] = child  # for ``unfuse``; not a submodule
            setattr(module, name, gm)
        else:
            _fuse_sequentials(child)


def unfuse(net: nn.Module) -> None:
    """Undo, in place, the Sequential replacements ``fuse_conv_pointwise`` made in ``net``."""
    for name, child in net.named_children():
        original = child.__dict__.get("unfused")
        if original is not None:
            setattr(net, name, original)
        else:
            unfuse(child)


def fuse_conv_pointwise(net: nn.Module) -> nn.Module:
    """The module to run in place of ``net``, with its conv (+ add) + ReLU chains fused (see
    the module docstring): a ``torch.fx.GraphModule`` of the whole network, sharing ``net``'s
    parameters; or, when the whole cannot be traced (data-dependent control flow), ``net``
    itself with every traceable ``nn.Sequential`` inside replaced by its fused graph. ``net``
    unchanged if this PyTorch build lacks the operator.

    Args:
        net: an eval-mode network whose BatchNorms are folded (a BN between a convolution and
            its ReLU stops the match); when it cannot be traced whole it is modified in place
            (``unfuse`` restores it).
    """
    if not available():
        return net
    whole = _fused_graph(net)
    if whole is not None:
        return whole
    _fuse_sequentials(net)
    return net
