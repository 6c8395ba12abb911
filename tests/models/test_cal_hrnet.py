"""CAL two-branch HRNet: parameter counts and key listings of every released yaml (registered
names), the tiny fixture forward (also on the flipped crops), shapes of the small model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bupose.models import MODELS, create_model, model_family
from bupose.models.cal_hrnet import CALHRNet, build_cal_hrnet
from tests.conftest import SHARED, require

CAL = SHARED / "fixtures" / "official_cal"
YAMLS = {
    "cal_hrnet_w32_64x48": "experiments/coco/hrnet/w32_64x48_adam_lr1e-3.yaml",
    "cal_hrnet_w48_64x48": "experiments/coco/hrnet/w48_64x48_adam_lr1e-3.yaml",
    "cal_hrnet_w32_128x96": "experiments/coco/hrnet/w32_128x96_adam_lr1e-3.yaml",
    "cal_hrnet_w48_128x96": "experiments/coco/hrnet/w48_128x96_adam_lr1e-3.yaml",
    "cal_hrnet_w32_256x256_mpii": "experiments/mpii/hrnet/w32_256x256_adam_lr1e-3.yaml",
    "cal_hrnet_w48_256x256_mpii": "experiments/mpii/hrnet/w48_256x256_adam_lr1e-3.yaml",
}
TINY_STAGES = [
    {"num_modules": 1, "num_blocks": [1, 1], "num_channels": [8, 16]},
    {"num_modules": 1, "num_blocks": [1, 1, 1], "num_channels": [8, 16, 32]},
    {"num_modules": 2, "num_blocks": [1, 1, 1], "num_channels": [8, 16, 32]},
]


def _meta(name: str) -> torch.nn.Module:
    with torch.device("meta"):
        return MODELS.get(name).build()


@pytest.mark.parametrize("name", sorted(YAMLS))
def test_registered_models_equal_official_facts(name: str) -> None:
    facts = json.loads(require(CAL / "model" / "model_facts.json").read_text())[YAMLS[name]]
    model = _meta(name)
    assert sum(p.numel() for p in model.parameters()) == facts["params_total"]
    w, h = facts["image_size_wh"]
    assert MODELS.get(name).input_size == (h, w)
    assert model.num_keypoints == facts["num_joints"]
    parts = facts.get("params_by_part")
    if parts:
        count = {k: sum(p.numel() for n, p in model.named_parameters() if n.startswith(k))
                 for k in ("transition3.", "stage4.", "transition3_om.", "stage4_om.",
                           "head_hm.", "head_om.")}
        assert count["transition3."] + count["stage4."] == parts["heatmap_branch_stage4"]
        assert count["transition3_om."] + count["stage4_om."] == parts["offset_branch_stage4"]
        assert (count["head_hm."], count["head_om."]) == (parts["head_hm"], parts["head_om"])


@pytest.mark.parametrize("name", sorted(YAMLS))
def test_registered_models_keys_equal_official(name: str) -> None:
    listing = json.loads(require(CAL / "model" / "state_dict_keys.json").read_text())
    ours = [[k, list(v.shape)] for k, v in _meta(name).state_dict().items()]
    assert ours == listing[YAMLS[name]]


def test_larger_released_configs_counts() -> None:
    """256x192 / 384x288 yamls: the 128x96 architectures with STAGE4OM := STAGE4."""
    facts = json.loads(require(CAL / "model" / "model_facts.json").read_text())
    for width in (32, 48):
        with torch.device("meta"):
            model = build_cal_hrnet(width=width)
        n = sum(p.numel() for p in model.parameters())
        for size in ("256x192", "384x288"):
            assert n == facts[f"experiments/coco/hrnet/w{width}_{size}_adam_lr1e-3.yaml"][
                "params_total"]


def _tiny() -> CALHRNet:
    model = build_cal_hrnet(stages=TINY_STAGES)
    state = torch.load(require(CAL / "tiny" / "tiny_model.pth"), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()


def test_tiny_forward_equals_official() -> None:
    ref = np.load(require(CAL / "tiny" / "tiny_forward.npz"))
    model = _tiny()
    assert sum(p.numel() for p in model.parameters()) == 549_691
    with torch.no_grad():
        for inp, hm_key, om_key in (("input", "heatmaps", "offsets"),
                                    ("input_flipped", "heatmaps_of_flipped",
                                     "offsets_of_flipped")):
            heatmaps, offsets = model(torch.from_numpy(ref[inp]))
            np.testing.assert_allclose(heatmaps.numpy(), ref[hm_key], rtol=0, atol=1e-5)
            np.testing.assert_allclose(offsets.numpy(), ref[om_key], rtol=0, atol=1e-5)


def test_small_model_shapes_backward() -> None:
    torch.manual_seed(0)
    model = create_model("cal_hrnet_small_64x48").train()
    assert model_family(model) == "topdown" and model.meta.input_size == (64, 48)
    heatmaps, offsets = model(torch.randn(2, 3, 64, 48))
    assert heatmaps.shape == (2, 17, 16, 12) and offsets.shape == (2, 34, 16, 12)
    (heatmaps.square().mean() + offsets.abs().mean()).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_mpii_models_have_16_joints_and_spec() -> None:
    model = create_model("cal_hrnet_w32_256x256_mpii", width=8, num_blocks=1,
                         num_modules=[1, 1, 1])
    assert model.num_keypoints == 16 and model.meta.spec.name == "mpii16"
    with torch.no_grad():
        heatmaps, offsets = model.eval()(torch.zeros(1, 3, 64, 64))
    assert heatmaps.shape == (1, 16, 16, 16) and offsets.shape == (1, 32, 16, 16)


def test_stage4_om_branch_count_must_match() -> None:
    om = {"num_modules": 1, "num_blocks": [1, 1], "num_channels": [8, 16]}
    with pytest.raises(ValueError, match="branches"):
        build_cal_hrnet(stages=TINY_STAGES, stage4_om=om)
