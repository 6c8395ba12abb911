"""Key layouts: wrappers, layout detection, prefix mapping and architecture inference."""

from __future__ import annotations

import torch

from bupose.models import create_model
from bupose.models.keymap import detect_layout, infer_arch, strip_wrappers, to_bupose, to_official


def test_strip_wrappers_and_fp16() -> None:
    state = {"module.1.conv1.weight": torch.ones(2, dtype=torch.float16),
             "module.1.bn1.num_batches_tracked": torch.tensor(3)}
    out = strip_wrappers(state)
    assert set(out) == {"conv1.weight", "bn1.num_batches_tracked"}
    assert out["conv1.weight"].dtype == torch.float32
    assert out["bn1.num_batches_tracked"].dtype == torch.int64
    partial = {"module.a": torch.zeros(1), "b": torch.zeros(1)}  # not on every key: kept
    assert set(strip_wrappers(partial)) == {"module.a", "b"}


def test_layouts_and_mapping() -> None:
    z = torch.zeros(1)
    official = {"conv1.weight": z, "final_layers.0.weight": z, "deconv_layers.0.0.0.weight": z,
                "davit.norm0.weight": z, "conv_128.weight": z}
    assert detect_layout(official) == "official"
    mapped = to_bupose(official, "official")
    assert set(mapped) == {"backbone.conv1.weight", "head.final_layers.0.weight",
                           "head.deconv_layers.0.0.0.weight", "backbone.davit.norm0.weight",
                           "backbone.conv_128.weight"}
    assert to_official(mapped) == official
    mm = {"backbone.conv1.weight": z, "keypoint_head.final_layer.weight": z}
    assert detect_layout(mm) == "mmpose"
    assert set(to_bupose(mm, "mmpose")) == {"backbone.conv1.weight",
                                            "head.final_layers.0.weight"}
    cls = {"conv1.weight": z, "classifier.weight": z, "incre_modules.0.0.conv1.weight": z}
    assert detect_layout(cls) == "classification"
    assert set(to_bupose(cls, "classification")) == {"backbone.conv1.weight"}
    assert detect_layout(mapped) == "bupose"


def test_infer_arch_round_trip() -> None:
    kwargs = {"num_keypoints": 6, "width": 8, "num_blocks": 2, "num_modules": [1, 2, 1],
              "deconv_channels": [12], "num_basic_blocks": 2, "final_conv_kernel": 3}
    with torch.device("meta"):
        model = create_model("higherhrnet_w32_512", **kwargs)
    arch = infer_arch(model.state_dict())
    from bupose.models import MODELS

    assert arch == MODELS.get("higherhrnet_w32_512").arch(**kwargs)
    with torch.device("meta"):
        fusion = create_model("higherhrnet_w32_davit_512", num_keypoints=4)
    assert infer_arch(fusion.state_dict()) == MODELS.get("higherhrnet_w32_davit_512").arch(
        num_keypoints=4)
