"""DaViT (dual spatial / channel attention transformer) as the CNN-ViT fusion model instantiates
it (ALGORITHMS.md §5.2): depths (1, 1, 3, 1), dims (64, 128, 192, 256), heads (4, 8, 12, 16),
7x7 windows, MLP ratio 4, qkv bias, drop path 0 -> 0.1, no overlapped patches, cpe without
activation. Returns NCHW features at strides 4, 8, 16, 32.

Module names (patch_embeds, main_blocks.{stage}.{layer}.{0 spatial, 1 channel}, cpe, norm1,
attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2, norm0..3) equal the fusion code's, so its
checkpoints load unchanged. Tokens are (B, N, C) tensors as there; the official FLOP convention
(``bupose.models.flops``) depends on that layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bupose.models.layers import DropPath

Size = tuple[int, int]


def tokens_to_map(x: Tensor, size: Size) -> Tensor:
    """(B, N = h*w, C) tokens -> (B, C, h, w)."""
    b, n, c = x.shape
    return x.transpose(1, 2).reshape(b, c, size[0], size[1])


class ConvPosEnc(nn.Module):
    """Conditional positional encoding: x + depthwise 3x3 conv(x), on (B, N, C) tokens."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)

    def forward(self, x: Tensor, size: Size) -> Tensor:
        return x + self.proj(tokens_to_map(x, size)).flatten(2).transpose(1, 2)


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on (B, N, C) tokens."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class PatchEmbed(nn.Module):
    """Stage 0: 7x7 stride-4 conv (pad 3) then LayerNorm. Later stages: LayerNorm on the incoming
    tokens, then 2x2 stride-2 conv. Inputs are zero-padded right/bottom to a stride multiple."""

    def __init__(self, stride: int, in_channels: int, dim: int) -> None:
        super().__init__()
        self.stride = stride
        if stride == 4:
            self.proj = nn.Conv2d(in_channels, dim, 7, stride=4, padding=3)
            self.norm = nn.LayerNorm(dim)
        elif stride == 2:
            self.proj = nn.Conv2d(in_channels, dim, 2, stride=2)
            self.norm = nn.LayerNorm(in_channels)
        else:
            raise ValueError(f"patch stride must be 4 or 2, got {stride}")

    def forward(self, x: Tensor, size: Size) -> tuple[Tensor, Size]:
        """(B, 3, H, W) image (stage 0) or (B, N, C) tokens -> ((B, N', C'), (h', w'))."""
        tokens_in = x.ndim == 3
        if tokens_in:
            x = tokens_to_map(self.norm(x), size)
        s = self.stride
        pad_w, pad_h = -x.shape[3] % s, -x.shape[2] % s
        if pad_w or pad_h:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        new_size = (x.shape[2], x.shape[3])
        x = x.flatten(2).transpose(1, 2)
        if not tokens_in:
            x = self.norm(x)
        return x, new_size


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows: (B*nW, N = w*w, C) -> same shape."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, N, C_h) each
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class ChannelAttention(nn.Module):
    """Channel-group attention: per head, A = softmax((k * C_h^-1/2)^T v) (C_h x C_h) and
    out = (A q^T)^T; on (B, N, C) tokens."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, N, C_h) each
        attention = ((k * self.scale).transpose(-1, -2) @ v).softmax(dim=-1)
        x = q @ attention.transpose(-1, -2)  # = (A q^T)^T: (B, heads, N, C_h)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class DualBlock(nn.Module):
    """cpe -> x + DropPath(attention(LN(x))) -> cpe -> x + DropPath(MLP(LN(x)))."""

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.cpe = nn.ModuleList([ConvPosEnc(dim), ConvPosEnc(dim)])
        self.norm1 = nn.LayerNorm(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def attend(self, x: Tensor, size: Size) -> Tensor:
        return self.attn(x)

    def forward(self, x: Tensor, size: Size) -> Tensor:
        x = self.cpe[0](x, size)
        x = x + self.drop_path(self.attend(self.norm1(x), size))
        x = self.cpe[1](x, size)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SpatialBlock(DualBlock):
    """Window attention over non-overlapping ``window`` x ``window`` windows (no shift)."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float,
                 drop_path: float) -> None:
        super().__init__(dim, WindowAttention(dim, num_heads), mlp_ratio, drop_path)
        self.window = window

    def attend(self, x: Tensor, size: Size) -> Tensor:
        b, _, c = x.shape
        (h, w), s = size, self.window
        x = F.pad(x.view(b, h, w, c), (0, 0, 0, -w % s, 0, -h % s))
        hp, wp = x.shape[1], x.shape[2]
        windows = x.view(b, hp // s, s, wp // s, s, c).transpose(2, 3).reshape(-1, s * s, c)
        x = self.attn(windows).view(b, hp // s, wp // s, s, s, c).transpose(2, 3)
        return x.reshape(b, hp, wp, c)[:, :h, :w].reshape(b, h * w, c)


class ChannelBlock(DualBlock):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__(dim, ChannelAttention(dim, num_heads), mlp_ratio, drop_path)


class DualLayer(nn.Sequential):
    """(spatial block, channel block) applied in turn to (tokens, size)."""

    def forward(self, x: Tensor, size: Size) -> Tensor:  # type: ignore[override]
        for block in self:
            x = block(x, size)
        return x


class DaViT(nn.Module):
    """(B, 3, H, W) -> tuple of (B, dims[i], H / 2^(i+2), W / 2^(i+2)), i = 0..3."""

    def __init__(self, depths: Sequence[int] = (1, 1, 3, 1),
                 dims: Sequence[int] = (64, 128, 192, 256),
                 num_heads: Sequence[int] = (4, 8, 12, 16), window: int = 7,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.1) -> None:
        super().__init__()
        if not len(depths) == len(dims) == len(num_heads):
            raise ValueError("DaViT depths, dims and num_heads need one entry per stage")
        self.dims = tuple(int(d) for d in dims)
        self.patch_embeds = nn.ModuleList(
            PatchEmbed(4 if i == 0 else 2, 3 if i == 0 else dims[i - 1], dims[i])
            for i in range(len(dims)))
        rates = torch.linspace(0, drop_path_rate, 2 * sum(depths), device="cpu").tolist()
        stages, offset = [], 0
        for dim, heads, depth in zip(dims, num_heads, depths):
            layers = []
            for _ in range(depth):
                spatial = SpatialBlock(dim, heads, window, mlp_ratio, rates[2 * offset])
                channel = ChannelBlock(dim, heads, mlp_ratio, rates[2 * offset + 1])
                layers.append(DualLayer(spatial, channel))
                offset += 1
            stages.append(nn.ModuleList(layers))
        self.main_blocks = nn.ModuleList(stages)
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", nn.LayerNorm(dim))

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        size: Size = (x.shape[2], x.shape[3])
        outs = []
        for i, (embed, layers) in enumerate(zip(self.patch_embeds, self.main_blocks)):
            x, size = embed(x, size)
            for layer in layers:
                x = layer(x, size)
            out = getattr(self, f"norm{i}")(x)
            outs.append(out.view(-1, size[0], size[1], self.dims[i]).permute(0, 3, 1, 2)
                        .contiguous())
        return tuple(outs)
