"""HRNet backbone: stage specs, branch shapes, exchange units."""

from __future__ import annotations

import pytest
import torch

from bupose.models.hrnet import HRNet, StageSpec, hrnet_stages


def test_hrnet_stages() -> None:
    s2, s3, s4 = hrnet_stages(32)
    assert (s2.num_modules, s3.num_modules, s4.num_modules) == (1, 4, 3)
    assert s4.num_channels == (32, 64, 128, 256) and s4.num_blocks == (4, 4, 4, 4)


def test_multi_scale_outputs() -> None:
    net = HRNet(hrnet_stages(8, 1, (1, 1, 1)), multi_scale_output=True).eval()
    outs = net(torch.randn(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 16, 16), (1, 16, 8, 8), (1, 32, 4, 4),
                                              (1, 64, 2, 2)]
    single = HRNet(hrnet_stages(8, 1, (1, 1, 2))).eval()
    (out,) = single(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 8, 16, 16)
    assert not hasattr(single.stage4[1].fuse_layers, "1")  # last module: stride-4 target only


def test_inject_hook_sees_stem_and_new_branches() -> None:
    net = HRNet(hrnet_stages(8, 1, (1, 1, 1))).eval()
    seen = []

    def inject(level: int, x: torch.Tensor) -> torch.Tensor:
        seen.append((level, tuple(x.shape)))
        return x

    net(torch.zeros(1, 3, 32, 32), inject)
    assert seen == [(0, (1, 64, 8, 8)), (1, (1, 16, 4, 4)), (2, (1, 32, 2, 2)),
                    (3, (1, 64, 1, 1))]


def test_stage_spec_validation() -> None:
    with pytest.raises(ValueError, match="branches"):
        StageSpec(1, (4, 4), (32,))
    with pytest.raises(ValueError, match="unknown block"):
        StageSpec(1, (4,), (32,), block="RES")
