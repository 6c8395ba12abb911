"""Checkpoints: the official tiny model reproduces the official outputs; official key listings,
wrappers, fp16, training snapshots; errors; the bupose format round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import bupose
from bupose.errors import CheckpointError
from bupose.models import create_model
from bupose.models.checkpoint import (
    load_checkpoint,
    read_state_dict,
    save_checkpoint,
)
from bupose.models.keymap import to_official
from tests.models.conftest import FIXTURES, TINY, require


def _tiny_paths() -> tuple[Path, Path]:
    return require(TINY / "tiny_model.pth"), require(TINY / "tiny_config.yaml")


def test_tiny_official_model_reproduces_official_outputs() -> None:
    ckpt, config = _tiny_paths()
    model = bupose.load_checkpoint(ckpt, config=config)
    assert not model.training and model.meta.name == "higherhrnet_tiny"
    assert model.meta.source == "official" and model.meta.input_size == 256
    assert model.meta.test["flip_test"] is True and model.meta.spec.name == "coco17"
    ref = np.load(require(TINY / "tiny_forward.npz"))
    model64 = create_model("higherhrnet_tiny").double().eval()
    model64.load_state_dict(model.state_dict())
    for name in ("rect", "square"):
        images = torch.from_numpy(ref[f"input_{name}"])
        with torch.no_grad():
            outputs = model(images)
            outputs64 = model64(images.double())
        for i, (out, out64) in enumerate(zip(outputs, outputs64)):
            expected = ref[f"out{i}_{name}"]
            assert out.shape == expected.shape
            err = np.abs(out.numpy() - expected)
            assert err[:, :17].max() <= 1e-5  # heatmaps (|h| < 1): absolute 1e-5
            # Tag channels were scaled to std 3 (|tag| up to 27): fp32 rounding of the official
            # run itself is ~4e-5 there (its distance to our float64 forward, checked below),
            # so they are compared at 1e-5 relative to the output's scale.
            scale = max(1.0, float(np.abs(expected).max()))
            assert err.max() <= 1e-5 * scale
            assert np.abs(out64.numpy() - expected).max() <= 1e-5 * scale


def _zero_state_from_listing(path: Path, fp16: bool) -> dict[str, torch.Tensor]:
    """Zero tensors with the listed shapes/dtypes (stride-0 views: tiny files)."""
    state = {}
    for entry in json.loads(path.read_text())["keys"]:
        dtype = getattr(torch, entry["dtype"])
        if fp16 and dtype == torch.float32 and ".bn" not in entry["key"] and \
                len(entry["shape"]) > 1:
            dtype = torch.float16  # network_to_half: convs fp16, BatchNorm fp32
        state[entry["key"]] = torch.zeros(1, dtype=dtype).expand(entry["shape"]) \
            if entry["shape"] else torch.zeros((), dtype=dtype)
    return state


@pytest.mark.parametrize("key, width, size, variant", [
    ("w32_512", 32, 512, "plain"), ("w32_512", 32, 512, "module"),
    ("w32_640", 32, 640, "fp16"), ("w32_640", 32, 640, "snapshot"),
    ("w48_640", 48, 640, "fp16"), ("w48_640", 48, 640, "plain"),
])
def test_official_key_listings_load(tmp_path: Path, official_yaml, key: str, width: int,
                                    size: int, variant: str) -> None:
    listing = require(FIXTURES / "keys" / f"keys_{key}.json")
    state = _zero_state_from_listing(listing, fp16=variant == "fp16")
    if variant == "fp16":
        state = {f"1.{k}": v for k, v in state.items()}
    elif variant == "module":
        state = {f"module.{k}": v for k, v in state.items()}
    obj: object = state
    if variant == "snapshot":  # official checkpoint.pth.tar
        obj = {"epoch": 3, "model": "pose_higher_hrnet", "perf": np.float64(0.67),
               "state_dict": {f"module.{k}": v for k, v in state.items()},
               "best_state_dict": state, "optimizer": {"state": {}, "param_groups": []}}
    path = tmp_path / f"{key}_{variant}.pth"
    torch.save(obj, path)
    model = load_checkpoint(path, config=official_yaml(width, size, fp16=variant == "fp16"))
    assert model.meta.name == f"higherhrnet_{key}" and model.meta.input_size == size
    params = list(model.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    assert all(not p.any() for p in params[:5])  # the zeros were copied in


def test_fp16_official_checkpoint_is_cast_to_fp32(tmp_path: Path) -> None:
    ckpt, config = _tiny_paths()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    half = {f"1.{k}": (v.half() if v.ndim == 4 else v) for k, v in state.items()}
    torch.save(half, tmp_path / "fp16.pth")
    model = load_checkpoint(tmp_path / "fp16.pth", config=config)
    w = model.backbone.conv1.weight
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, state["conv1.weight"].half().float())


def test_architecture_inferred_without_config() -> None:
    ckpt, config = _tiny_paths()
    model = load_checkpoint(ckpt)
    assert model.meta.name == "higherhrnet_tiny" and model.meta.test == {}
    reference = load_checkpoint(ckpt, config=config)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model(x), reference(x)))


def test_mismatch_lists_keys(tmp_path: Path) -> None:
    ckpt, config = _tiny_paths()
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    del state["conv1.weight"]
    state["stage9.extra.weight"] = torch.zeros(1)
    state["final_layers.0.weight"] = torch.zeros(5, 16, 1, 1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.pth", config=config)
    msg = str(info.value)
    assert "bad.pth" in msg and "1 missing keys" in msg and "backbone.conv1.weight" in msg
    assert "1 unexpected keys" in msg and "backbone.stage9.extra.weight" in msg
    assert "1 shape mismatches" in msg and "(5, 16, 1, 1) vs model (34, 16, 1, 1)" in msg


def test_wrong_model_lists_counts() -> None:
    ckpt, _ = _tiny_paths()
    with pytest.raises(CheckpointError, match=r"shape mismatches:[\s\S]*and \d+ more"):
        load_checkpoint(ckpt, model="higherhrnet_w32_512")


def test_bupose_round_trip(tmp_path: Path) -> None:
    ckpt, config = _tiny_paths()
    model = load_checkpoint(ckpt, config=config)
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        expected = model(x)
    for name in ("model.pth", "model.safetensors"):
        save_checkpoint(tmp_path / name, model, config={"note": "run 1"}, epoch=7)
        loaded = load_checkpoint(tmp_path / name)
        assert loaded.meta.source == "bupose"
        assert (loaded.meta.name, loaded.meta.kwargs, loaded.meta.spec, loaded.meta.test,
                loaded.meta.input_size) == (model.meta.name, model.meta.kwargs,
                                             model.meta.spec, model.meta.test, 256)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(loaded(x), expected))
    raw = torch.load(tmp_path / "model.pth", weights_only=True)
    assert raw["format"] == "bupose" and raw["epoch"] == 7 and raw["config"] == {"note": "run 1"}


def test_bupose_round_trip_custom_arch(tmp_path: Path) -> None:
    model = create_model("hrnet_w32_ae_512", num_keypoints=3, width=8, num_blocks=1,
                         num_modules=[1, 1, 1]).eval()
    save_checkpoint(tmp_path / "m.pth", model)
    loaded = load_checkpoint(tmp_path / "m.pth")
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], model(x)[0])
    assert loaded.meta.spec is None and loaded.num_keypoints == 3


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    model = create_model("higherhrnet_tiny", num_keypoints=2)
    save_checkpoint(tmp_path / "m.pth", model)
    raw = torch.load(tmp_path / "m.pth", weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, tmp_path / "m.pth")
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(tmp_path / "m.pth")


class NotData:
    """A class a checkpoint must not make bupose instantiate."""


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "noise.pth").write_bytes(np.random.default_rng(0).bytes(300))
    (tmp_path / "text.pth").write_text("hello")
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{nope")
    for name in ("noise.pth", "text.pth", "bad.safetensors"):
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")
    torch.save({"epoch": 1}, tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="empty.pth: holds no state dict"):
        load_checkpoint(tmp_path / "empty.pth")


def test_pickled_code_is_never_run(tmp_path: Path) -> None:
    torch.save({"state_dict": {"w": torch.zeros(1)}, "obj": NotData()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match=r"evil.pth.*NotData"):
        load_checkpoint(tmp_path / "evil.pth")


def test_mmpose_checkpoints(tmp_path: Path) -> None:
    """mmpose 0.x layout (HAE ships it): backbone.* + keypoint_head.*, numpy metadata."""
    for name, head_map in (("higherhrnet_tiny", "keypoint_head."),
                           ("hrnet_w32_ae_512", "keypoint_head.final_layer.")):
        kwargs = {} if name == "higherhrnet_tiny" else {
            "width": 16, "num_blocks": 1, "num_modules": [1, 1, 2]}
        model = create_model(name, **kwargs).eval()
        torch.nn.init.normal_(model.head.final_layers[0].weight)
        state = {}
        for k, v in model.state_dict().items():
            if k.startswith("head.final_layers.0.") and head_map.endswith("final_layer."):
                k = head_map + k[len("head.final_layers.0."):]
            elif k.startswith("head."):
                k = head_map + k[len("head."):]
            state[k] = v
        meta = {"epoch": 300, "hook_msgs": {"best_score": np.float64(0.67)}, "config": "..."}
        torch.save({"meta": meta, "state_dict": state}, tmp_path / "mm.pth")
        loaded = load_checkpoint(tmp_path / "mm.pth")
        assert loaded.meta.source == "mmpose"
        assert loaded.meta.kwargs == model.meta.kwargs or loaded.meta.name == name
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(loaded(x), model(x)))


def test_fusion_official_layout(tmp_path: Path) -> None:
    """The fusion code's keys (davit.*, conv_128, bn1_128 ... at top level) load with the
    official YAML (which does not mention DaViT) and without it."""
    _, config = _tiny_paths()
    model = create_model("higherhrnet_w32_davit_512", width=16, num_blocks=1,
                         num_modules=[1, 1, 2], deconv_channels=[16]).eval()
    official = to_official(model.state_dict())
    assert "davit.main_blocks.2.1.0.attn.qkv.weight" in official
    assert "conv_128.weight" in official and "bn1_16.running_var" in official
    torch.save({f"module.{k}": v for k, v in official.items()}, tmp_path / "fusion.pth")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        expected = model(x)
        for cfg in (config, None):
            loaded = load_checkpoint(tmp_path / "fusion.pth", config=cfg)
            assert loaded.meta.name == "higherhrnet_w32_davit_512"
            assert all(torch.equal(a, b) for a, b in zip(loaded(x), expected))


def test_read_state_dict_gives_bupose_keys() -> None:
    ckpt, _ = _tiny_paths()
    state = read_state_dict(ckpt)
    assert set(state) == set(create_model("higherhrnet_tiny").state_dict())


def _classification_state(width: int) -> dict[str, torch.Tensor]:
    """ImageNet HRNet layout (cls_hrnet): our backbone names, a multi-scale last stage-4 module
    and the classification head."""
    from bupose.models.hrnet import HRNet, hrnet_stages

    torch.manual_seed(1)
    net = HRNet(hrnet_stages(width, 1, (1, 1, 2)), multi_scale_output=True)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    state = {k: v for k, v in net.state_dict().items() if "num_batches_tracked" not in k}
    state["incre_modules.0.0.conv1.weight"] = torch.zeros(32, width, 1, 1)
    state["downsamp_modules.0.0.weight"] = torch.zeros(256, 128, 3, 3)
    state["final_layer.0.weight"] = torch.zeros(2048, 1024, 1, 1)
    state["classifier.weight"] = torch.zeros(1000, 2048)
    return state


def test_imagenet_backbone_weights(tmp_path: Path) -> None:
    from bupose.models.checkpoint import load_backbone_weights

    state = _classification_state(16)
    torch.save(state, tmp_path / "hrnet_w16.pth")
    model = create_model("higherhrnet_tiny")
    head_before = model.head.final_layers[0].weight.clone()
    report = load_backbone_weights(model, tmp_path / "hrnet_w16.pth")
    assert torch.equal(model.backbone.stage3[0].branches[2][0].conv1.weight,
                       state["stage3.0.branches.2.0.conv1.weight"])
    assert torch.equal(model.head.final_layers[0].weight, head_before)  # head untouched
    assert "classifier.weight" in report["ignored"]
    assert "backbone.stage4.1.fuse_layers.3.0.0.0.weight" in report["ignored"]
    assert all(k.startswith("head.") or "num_batches" in k for k in report["kept"])
    with pytest.raises(CheckpointError, match="classification"):
        load_checkpoint(tmp_path / "hrnet_w16.pth")
    with pytest.raises(CheckpointError, match=r"does not fit the model's backbone[\s\S]*shape"):
        load_backbone_weights(create_model("higherhrnet_w32_512", num_blocks=1,
                                           num_modules=[1, 1, 2]), tmp_path / "hrnet_w16.pth")


def test_backbone_weights_into_the_fusion_model(tmp_path: Path) -> None:
    """Fusion training starts from an HRNet backbone; DaViT and fusion convs stay initialised."""
    from bupose.models.checkpoint import load_backbone_weights

    torch.save(_classification_state(16), tmp_path / "hrnet_w16.pth")
    model = create_model("higherhrnet_w32_davit_512", width=16, num_blocks=1,
                         num_modules=[1, 1, 2], deconv_channels=[16])
    report = load_backbone_weights(model, tmp_path / "hrnet_w16.pth")
    assert any(k.startswith("backbone.davit.") for k in report["kept"])
    assert "backbone.conv_128.weight" in report["kept"]
    missing = _classification_state(16)
    del missing["stage2.0.branches.0.0.conv1.weight"]
    torch.save(missing, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="stage2.0.branches.0.0.conv1.weight"):
        load_backbone_weights(model, tmp_path / "partial.pth")
