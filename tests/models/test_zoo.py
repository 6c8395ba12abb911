"""Every registered model: shapes, backward, no NaN; parameter counts of the published models."""

from __future__ import annotations

import json

import pytest
import torch

from bupose.errors import ConfigError
from bupose.models import MODELS, create_model, list_models
from bupose.models.outputs import split_stage
from bupose.structures.spec import get_spec
from tests.conftest import FIXTURES, require

AE_MODELS = [n for n in MODELS.names() if MODELS.get(n).family == "ae"]


@pytest.mark.parametrize("name", AE_MODELS)  # other families: test_hourglass / test_cal_hrnet
def test_forward_backward_shapes(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_keypoints=5).train()
    images = torch.randn(2, 3, 64, 96)
    outputs = model(images)
    assert isinstance(outputs, tuple) and len(outputs) == len(model.output_layout)
    for out, layout in zip(outputs, model.output_layout):
        assert out.shape == (2, layout.channels, 64 // layout.stride, 96 // layout.stride)
        assert torch.isfinite(out).all()
        heatmaps, tags, _ = split_stage(out, layout)
        assert heatmaps.shape[1] == 5
    assert model.output_layout[0].tag_channels == 5  # K tags (D = 1) at stride 4
    sum(o.square().mean() for o in outputs).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.meta.name == name and model.meta.spec is None  # no built-in spec has K = 5


def test_higherhrnet_output_layout() -> None:
    model = create_model("higherhrnet_tiny")
    first, second = model.output_layout
    assert (first.stride, first.num_heatmaps, first.tag_channels) == (4, 17, 17)
    assert (second.stride, second.num_heatmaps, second.tag_channels) == (2, 17, 0)
    assert model.meta.spec is get_spec("coco17")


def test_bottom_up_hrnet_has_one_stride4_output() -> None:
    model = create_model("hrnet_w32_ae_512", num_keypoints=14, width=16, num_blocks=1,
                         num_modules=[1, 1, 1]).eval()
    (out,) = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 28, 16, 16)
    assert model.meta.spec is get_spec("crowdpose14")


def test_tag_dim_and_shared_tags() -> None:
    model = create_model("higherhrnet_tiny", num_keypoints=3, tag_dim=2)
    assert model.output_layout[0].channels == 3 + 3 * 2
    shared = create_model("higherhrnet_tiny", num_keypoints=3, tag_per_joint=False)
    assert shared.output_layout[0].channels == 3 + 1


def test_spec_sets_k_and_conflicts_are_errors() -> None:
    model = create_model("higherhrnet_tiny", spec=get_spec("mpii16"))
    assert model.num_keypoints == 16 and model.meta.spec.name == "mpii16"
    with pytest.raises(ConfigError, match="16 keypoints"):
        create_model("higherhrnet_tiny", spec=get_spec("mpii16"), num_keypoints=17)
    with pytest.raises(ConfigError, match="higherhrnet_w32_512"):
        create_model("higherhrnet_w32_51")


def test_official_init() -> None:
    model = create_model("higherhrnet_tiny")
    conv = model.backbone.conv1.weight
    assert abs(conv.std().item() - 0.001) < 2e-4
    assert torch.equal(model.backbone.bn1.weight, torch.ones(64))
    assert torch.equal(model.head.final_layers[0].bias, torch.zeros(34))


@pytest.mark.parametrize("name, key", [
    ("higherhrnet_w32_512", "w32_512"), ("higherhrnet_w48_640", "w48_640"),
])
def test_parameter_counts_equal_official(name: str, key: str) -> None:
    facts = json.loads(require(FIXTURES / "model_facts.json").read_text())["models"][key]
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == facts["params"]
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert buffers == facts["bn_running_stat_elems"]
    assert len(model.state_dict()) == facts["state_dict_keys"]


def test_fusion_parameter_count() -> None:
    # ALGORITHMS.md §5.4: 28,645,331 (HigherHRNet-W32) + 5,126,080 (DaViT) + 1,733,632 (fusion)
    with torch.device("meta"):
        model = create_model("higherhrnet_w32_davit_512")
    davit = sum(p.numel() for p in model.backbone.davit.parameters())
    assert davit == 5_126_080
    assert sum(p.numel() for p in model.parameters()) == 35_505_043


def test_list_models_names_the_required_models() -> None:
    assert {"higherhrnet_w32_512", "higherhrnet_w32_640", "higherhrnet_w48_640",
            "hrnet_w32_ae_512", "higherhrnet_w32_davit_512"} <= set(list_models())


def test_families_and_model_family() -> None:
    from bupose.models import FAMILIES, ModelEntry, model_family

    assert {MODELS.get(n).family for n in MODELS.names()} == set(FAMILIES)
    assert model_family(create_model("higherhrnet_tiny")) == "ae"
    wrapped = torch.nn.DataParallel(create_model("cal_hrnet_small_64x48"))
    assert model_family(wrapped) == "topdown"
    with pytest.raises(ValueError, match="needs a model with .meta"):
        model_family(torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="unknown model family"):
        ModelEntry({}, 64, "x", family="segmentation")
    assert MODELS.get("cal_hrnet_w32_64x48").input_size == (64, 48)
    assert MODELS.get("simplepose_hg104").arch()["dims"] == [256, 256, 384, 384, 384, 512]
