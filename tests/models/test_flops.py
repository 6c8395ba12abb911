"""Parameters and GFLOPs in both conventions against the official measurements."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from bupose.models import MODELS
from bupose.models.flops import (
    COST_CACHE,
    _fingerprint,
    compute_registered_cost,
    count_cost,
    registered_cost,
    table_fields,
)
from tests.conftest import FIXTURES, require


@pytest.mark.parametrize("name, key", [
    ("higherhrnet_w32_512", "w32_512"), ("higherhrnet_w32_640", "w32_640"),
    ("higherhrnet_w48_640", "w48_640"),
])
def test_higherhrnet_cost_equals_official(name: str, key: str) -> None:
    facts = json.loads(require(FIXTURES / "model_facts.json").read_text())["models"][key]
    cost = registered_cost(name)
    assert cost.params == facts["params"]
    assert cost.gmacs == pytest.approx(facts["flopcounter_total_flops"] / 2e9, abs=0.01)
    assert cost.gflops_paper == pytest.approx(
        facts["official_get_model_summary_multiply_adds"] / 1e9, abs=0.01)


def test_fusion_cost() -> None:
    # ALGORITHMS.md §5.4: published 330.5 (get_model_summary rule), true MACs about 55.6
    cost = registered_cost("higherhrnet_w32_davit_512")
    assert cost.params == 35_505_043
    assert cost.gflops_paper == pytest.approx(330.5, abs=0.01)
    assert cost.gmacs == pytest.approx(55.6, abs=0.05)


def test_bottom_up_hrnet_cost() -> None:
    cost = registered_cost("hrnet_w32_ae_512")
    # HigherHRNet-W32 without the deconv module (66*32*16 + BN 64), its 4 BasicBlocks
    # (8 * 32*32*9 + 8 BN * 64) and the stride-2 1x1 conv (32*17 + 17): published "28.5M"
    assert cost.params == 28_645_331 - (66 * 32 * 16 + 64) - (8 * 9216 + 8 * 64) - (32 * 17 + 17)
    # no transposed conv: both conventions agree; the HigherHRNet convs minus the deconv module
    # at 256x256 (deconv 0.554 G true, 4 blocks 8 * 32*32*9*256*256, final conv 32*17*256*256)
    removed = 553_648_128 + 8 * 32 * 32 * 9 * 256 * 256 + 32 * 17 * 256 * 256
    assert cost.gmacs == pytest.approx(cost.gflops_paper)
    assert cost.gmacs == pytest.approx((46_203_404_288 - removed) / 1e9, abs=0.01)


def test_conventions_by_hand() -> None:
    class Tiny(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)  # 4*3*9 MACs per output pixel
            self.up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1, bias=False)
            self.fc = nn.Linear(2, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.up(self.conv(x))  # (1, 2, 16, 16)
            return self.fc(y.flatten(2).transpose(1, 2))  # tokens (1, N=256, C=2)

    cost = count_cost(Tiny(), 8)
    conv = 4 * 3 * 9 * 8 * 8
    up_true = 4 * 8 * 8 * 2 * 16  # each input pixel scatters 2 x 4 x 4
    fc_true = 256 * 5 * 2
    assert cost.gmacs * 1e9 == pytest.approx(conv + up_true + fc_true)
    up_paper = 4 * 2 * 16 * 16 * 16  # weight numel x output pixels = 4x true
    fc_paper = 256 * 5 * 256  # output numel x input.size(1) = N tokens
    assert cost.gflops_paper * 1e9 == pytest.approx(conv + up_paper + fc_paper)
    assert cost.params == (4 * 27 + 4) + 4 * 2 * 16 + (2 * 5 + 5)


def _check_cached(names: list[str]) -> None:
    cached = json.loads(COST_CACHE.read_text())
    for name in names:
        hit = cached[name]
        fresh = compute_registered_cost(name)
        assert hit["params"] == fresh.params, name
        assert hit["gmacs"] == pytest.approx(fresh.gmacs, rel=1e-12), name
        assert hit["gflops_paper"] == pytest.approx(fresh.gflops_paper, rel=1e-12), name


def test_cost_cache_is_current() -> None:
    """`bupose models` reads bupose/resources/model_costs.json without importing torch: it
    lists every registered model with a current fingerprint and listing fields; one model
    per family is recounted (all: the slow test). When stale:
    ``python -c "from bupose.models.flops import write_cost_cache as w; w()"``."""
    cached = json.loads(COST_CACHE.read_text())
    assert set(cached) == set(MODELS.names())
    for name, hit in cached.items():
        assert hit["fingerprint"] == _fingerprint(name), name
        assert {k: hit[k] for k in table_fields(name)} == table_fields(name), name
    _check_cached(["higherhrnet_tiny", "simplepose_hg104", "cal_hrnet_small_64x48"])


@pytest.mark.slow
def test_cost_cache_all_models() -> None:
    _check_cached(sorted(json.loads(COST_CACHE.read_text())))


def test_top_down_cost_uses_h_w() -> None:
    """(h, w) inputs: a 64x48 crop costs less than 64x64 with the same parameters; a 128x256
    hourglass input costs half of 256x256."""
    tall = compute_registered_cost("cal_hrnet_small_64x48")
    assert tall == registered_cost("cal_hrnet_small_64x48")
    square = compute_registered_cost("cal_hrnet_small_64x48", input_size=(64, 64))
    assert tall.params == square.params and tall.gmacs < square.gmacs
    hg = compute_registered_cost("simplepose_hg_small", input_size=(128, 256))
    assert hg.gmacs == pytest.approx(registered_cost("simplepose_hg_small").gmacs / 2, rel=0.02)
