"""Residual blocks and stochastic depth."""

from __future__ import annotations

import torch

from bupose.models.layers import DropPath, make_blocks


def test_make_blocks_projects_shortcut_only_when_channels_change() -> None:
    same = make_blocks("BASIC", 8, 8, 2)
    assert same[0].downsample is None
    wider = make_blocks("BOTTLENECK", 8, 4, 2)  # 4 * 4 = 16 output channels
    assert wider[0].downsample is not None and wider[1].downsample is None
    assert wider(torch.zeros(1, 8, 5, 5)).shape == (1, 16, 5, 5)


def test_drop_path() -> None:
    torch.manual_seed(0)
    layer = DropPath(0.5)
    x = torch.ones(2000, 3)
    layer.eval()
    assert torch.equal(layer(x), x)
    layer.train()
    y = layer(x)
    rows = y[:, 0]
    assert set(rows.unique().tolist()) <= {0.0, 2.0}  # whole samples dropped, survivors x2
    assert torch.equal(y, rows[:, None].expand_as(y))
    assert abs(y.mean().item() - 1.0) < 0.1  # expectation preserved
