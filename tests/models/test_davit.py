"""DaViT branch: shapes, attention semantics against explicit loops, parameter count."""

from __future__ import annotations

import torch

from bupose.models.davit import ChannelAttention, DaViT, SpatialBlock


def test_output_strides_and_channels() -> None:
    model = DaViT().eval()
    outs = model(torch.randn(1, 3, 70, 94))  # not multiples of 4 / 7: padding paths
    sizes = [(18, 24), (9, 12), (5, 6), (3, 3)]  # ceil(/4), then ceil(/2) per stage
    assert [tuple(o.shape) for o in outs] == [(1, d, h, w) for d, (h, w) in
                                              zip((64, 128, 192, 256), sizes)]
    assert sum(p.numel() for p in model.parameters()) == 5_126_080  # ALGORITHMS.md §5.4


def test_channel_attention_matches_formula() -> None:
    torch.manual_seed(0)
    attn = ChannelAttention(8, num_heads=2)
    x = torch.randn(1, 5, 8)
    q, k, v = attn.qkv(x)[0].reshape(5, 3, 8).unbind(1)  # (N, C) each
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        a = ((k[:, sl] * 4**-0.5).T @ v[:, sl]).softmax(dim=-1)  # (C_h, C_h)
        heads.append((a @ q[:, sl].T).T)  # (N, C_h)
    expected = attn.proj(torch.cat(heads, dim=1))
    torch.testing.assert_close(attn(x)[0], expected, atol=1e-6, rtol=1e-5)


def test_spatial_attention_is_windowed() -> None:
    torch.manual_seed(0)
    block = SpatialBlock(8, num_heads=2, window=3, mlp_ratio=4.0, drop_path=0.0).eval()
    h, w = 4, 5  # padded to 6 x 6: windows of 3 x 3
    x = torch.randn(1, h * w, 8)
    out = block.attend(x, (h, w))
    padded = torch.nn.functional.pad(x.view(1, h, w, 8), (0, 0, 0, 1, 0, 2))[0]
    expected = torch.empty(6, 6, 8)
    for wy in (0, 3):
        for wx in (0, 3):
            win = padded[wy:wy + 3, wx:wx + 3].reshape(9, 8)
            q, k, v = block.attn.qkv(win).reshape(9, 3, 2, 4).permute(1, 2, 0, 3)
            a = (q @ k.transpose(-1, -2) * 4**-0.5).softmax(-1) @ v  # (heads, 9, 4)
            expected[wy:wy + 3, wx:wx + 3] = block.attn.proj(
                a.transpose(0, 1).reshape(9, 8)).view(3, 3, 8)
    torch.testing.assert_close(out[0], expected[:h, :w].reshape(h * w, 8), atol=1e-6,
                               rtol=1e-5)


def test_drop_path_rates_rise_linearly() -> None:
    model = DaViT()
    rates = [m.drop_path.p if hasattr(m.drop_path, "p") else 0.0
             for stage in model.main_blocks for layer in stage for m in layer]
    assert len(rates) == 12 and rates[0] == 0.0
    assert abs(rates[-1] - 0.1) < 1e-6 and all(b > a for a, b in zip(rates, rates[1:]))
