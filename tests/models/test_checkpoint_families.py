"""Official OffsetGuided and CAL checkpoints through ``bupose.load_checkpoint``: architecture
from the shapes or the official yaml, strict key checks, meta (test settings, crop size), and
the bupose round trip of both families."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

import bupose
from bupose.errors import CheckpointError, ConfigError
from bupose.models import MODELS, create_model, model_family, save_checkpoint
from bupose.models.checkpoint import model_from_official_config
from bupose.models.checkpoint_families import build_for_family, infer_cal, infer_simplepose
from bupose.models.zoo import match_registered
from tests.conftest import SHARED, require

OG = SHARED / "fixtures" / "official_offsetguided" / "tiny"
CAL = SHARED / "fixtures" / "official_cal" / "tiny"


def _og_state() -> dict[str, torch.Tensor]:
    ckpt = torch.load(require(OG / "tiny_checkpoint.pth"), map_location="cpu",
                      weights_only=True)
    return ckpt["model_state_dict"]


def _og_forward(model: torch.nn.Module) -> tuple[torch.Tensor, ...]:
    ref = np.load(require(OG / "tiny_forward.npz"))
    with torch.no_grad():
        return model(torch.from_numpy(ref["input"]))


def _assert_og_maps(outputs: tuple[torch.Tensor, ...]) -> None:
    ref = np.load(require(OG / "tiny_forward.npz"))
    for s in range(2):
        for i, name in enumerate(("hmp", "off")):
            want = ref[f"{name}_s{s}"]
            np.testing.assert_allclose(outputs[i][:, s].numpy(), want, rtol=1e-5,
                                       atol=1e-5 * float(np.abs(want).max()))


def test_offsetguided_tiny_checkpoint_loads_and_matches_official() -> None:
    model = bupose.load_checkpoint(require(OG / "tiny_checkpoint.pth"))
    assert not model.training and model_family(model) == "offsets"
    assert model.meta.name == "simplepose_hg104" and model.meta.source == "official"
    assert model.meta.spec.name == "coco17" and model.meta.input_size == 640
    assert model.with_scale and model.num_stacks == 2 and model.num_limbs == 19
    outputs = _og_forward(model)
    assert len(outputs) == 3
    _assert_og_maps(outputs)


def test_offsetguided_prefix_and_without_scale_head(tmp_path: Path) -> None:
    state = _og_state()
    ddp = {"epoch": 3, "train_loss": float("inf"),
           "model_state_dict": {f"module.{k}": v for k, v in state.items()},
           "optimizer_state_dict": {"state": {}, "param_groups": []}}
    torch.save(ddp, tmp_path / "ddp.pth")
    _assert_og_maps(_og_forward(bupose.load_checkpoint(tmp_path / "ddp.pth")))
    evaluation = {k: v for k, v in state.items() if "scale_convs" not in k}
    torch.save({"epoch": 0, "train_loss": 1.0, "model_state_dict": evaluation},
               tmp_path / "eval.pth")
    model = bupose.load_checkpoint(tmp_path / "eval.pth")
    assert not model.with_scale and len(_og_forward(model)) == 2
    dropped = bupose.load_checkpoint(require(OG / "tiny_checkpoint.pth"), with_scale=False)
    assert not dropped.with_scale
    _assert_og_maps(_og_forward(dropped))


def test_offsetguided_mismatch_lists_keys(tmp_path: Path) -> None:
    state = dict(_og_state())
    del state["basenet.kps.0.up1.1.conv2.weight"]
    state["basenet.extra.weight"] = torch.zeros(1)
    state["basenet.cnvs.1.bn.weight"] = torch.zeros(9)
    torch.save({"epoch": 0, "model_state_dict": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as info:
        bupose.load_checkpoint(tmp_path / "bad.pth")
    msg = str(info.value)
    assert "bad.pth" in msg and "1 missing keys" in msg and "kps.0.up1.1.conv2.weight" in msg
    assert "1 unexpected keys" in msg and "basenet.extra.weight" in msg
    assert "shape mismatches" in msg and "cnvs.1.bn.weight: checkpoint (9,) vs model (8,)" in msg
    with pytest.raises(CheckpointError, match="needs no config"):
        bupose.load_checkpoint(require(OG / "tiny_checkpoint.pth"),
                               config=require(CAL / "tiny_config.yaml"))


def test_hg104_architecture_inferred_from_shapes() -> None:
    with torch.device("meta"):
        state = create_model("simplepose_hg104", with_scale=True).state_dict()
    arch = infer_simplepose(state)
    assert match_registered(arch, None, "offsets") == ("simplepose_hg104", {"with_scale": True})
    arch_small = infer_simplepose(create_model("simplepose_hg_small").state_dict())
    assert match_registered(arch_small, None, "offsets") == ("simplepose_hg_small", {})


def _cal_yaml(tmp_path: Path, edit: Any = None) -> Path:
    cfg = yaml.safe_load(require(CAL / "tiny_config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    if edit is not None:
        edit(cfg)
    out = tmp_path / "cal.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def _cal_check(model: torch.nn.Module) -> None:
    ref = np.load(require(CAL / "tiny_forward.npz"))
    with torch.no_grad():
        heatmaps, offsets = model(torch.from_numpy(ref["input"]))
    np.testing.assert_allclose(heatmaps.numpy(), ref["heatmaps"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(offsets.numpy(), ref["offsets"], rtol=0, atol=1e-5)


def test_cal_tiny_with_official_yaml() -> None:
    model = bupose.load_checkpoint(require(CAL / "tiny_model.pth"),
                                   config=require(CAL / "tiny_config.yaml"))
    assert model_family(model) == "topdown" and model.meta.input_size == (64, 48)
    test = model.meta.test
    assert (test["locref_stdev"], test["in_vis_thre"], test["oks_thre"]) == (1.5, 0.2, 0.9)
    assert test["flip_test"] is True and test["use_gt_bbox"] is True
    assert test["image_thre"] == 0.0 and "model_file" not in test
    assert model.meta.spec.name == "coco17" and model.meta.source == "official"
    _cal_check(model)


def test_cal_released_yaml_quirks_are_read(tmp_path: Path) -> None:
    def released_like(cfg: dict[str, Any]) -> None:
        extra = cfg["MODEL"]["EXTRA"]
        del extra["STAGE4OM"], extra["FINAL_HM"], extra["FINAL_OM"]
        cfg["MODEL"]["SIGMA"] = 2  # int, as in the 256x192 / MPII yamls
        del cfg["DATASET"]["LOCREF_STDEV"]  # as in the W48 yamls: default 1.0
        cfg["GPUS"] = "(0,1,2,3)"

    model = bupose.load_checkpoint(require(CAL / "tiny_model.pth"),
                                   config=_cal_yaml(tmp_path, released_like))
    assert model.meta.test["locref_stdev"] == 1.0
    _cal_check(model)


def test_cal_without_yaml_and_training_checkpoint(tmp_path: Path) -> None:
    state = torch.load(require(CAL / "tiny_model.pth"), map_location="cpu", weights_only=True)
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()},
                "perf": 0.5}, tmp_path / "checkpoint.pth")
    model = bupose.load_checkpoint(tmp_path / "checkpoint.pth")
    assert model.meta.name == "cal_hrnet_w32_64x48" and model.meta.input_size == (64, 48)
    assert model.meta.test == {}
    _cal_check(model)
    assert infer_cal(state)["stage4_om"]["num_modules"] == 2


def test_cal_yaml_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    def wider(cfg: dict[str, Any]) -> None:
        for s in ("STAGE4", "STAGE4OM"):
            cfg["MODEL"]["EXTRA"][s]["NUM_CHANNELS"] = [8, 16, 48]

    with pytest.raises(CheckpointError, match="shape mismatches") as info:
        bupose.load_checkpoint(require(CAL / "tiny_model.pth"), config=_cal_yaml(tmp_path, wider))
    assert "tiny_model.pth" in str(info.value)

    def not_cal(cfg: dict[str, Any]) -> None:
        cfg["MODEL"]["NAME"] = "pose_resnet"

    with pytest.raises(ConfigError, match="not pose_hrnet"):
        bupose.load_checkpoint(require(CAL / "tiny_model.pth"),
                               config=_cal_yaml(tmp_path, not_cal))


def test_cal_mpii_yaml_and_w48_quirk(tmp_path: Path) -> None:
    def mpii(cfg: dict[str, Any]) -> None:
        cfg["MODEL"]["NUM_JOINTS"] = 16
        cfg["DATASET"]["DATASET"] = "mpii"
        cfg["MODEL"]["IMAGE_SIZE"] = [64, 64]

    path = _cal_yaml(tmp_path, mpii)
    random = model_from_official_config(path)
    assert random.num_keypoints == 16 and random.meta.spec.name == "mpii16"
    assert random.meta.input_size == (64, 64) and random.meta.source == "random"
    torch.save(random.state_dict(), tmp_path / "mpii.pth")
    loaded = bupose.load_checkpoint(tmp_path / "mpii.pth", config=path)
    assert loaded.meta.spec.name == "mpii16"
    with torch.device("meta"):
        quirk = MODELS.get("cal_hrnet_w48_128x96").build()
    arch = infer_cal(quirk.state_dict())
    assert arch["stage4_om"]["num_channels"] == [144, 96, 192, 384]
    assert match_registered(arch, None, "topdown") == ("cal_hrnet_w48_128x96", {})


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_round_trip_of_new_families(tmp_path: Path, suffix: str) -> None:
    cal = bupose.load_checkpoint(require(CAL / "tiny_model.pth"),
                                 config=require(CAL / "tiny_config.yaml"))
    save_checkpoint(tmp_path / f"cal{suffix}", cal, epoch=3)
    again = bupose.load_checkpoint(tmp_path / f"cal{suffix}")
    assert again.meta.input_size == (64, 48) and again.meta.test == cal.meta.test
    assert again.meta.source == "bupose" and model_family(again) == "topdown"
    _cal_check(again)
    og = bupose.load_checkpoint(require(OG / "tiny_checkpoint.pth"))
    save_checkpoint(tmp_path / f"og{suffix}", og)
    og_again = bupose.load_checkpoint(tmp_path / f"og{suffix}")
    assert og_again.meta.kwargs == og.meta.kwargs and og_again.with_scale
    _assert_og_maps(_og_forward(og_again))


@pytest.mark.parametrize("name, locref", [("cal_hrnet_w32_64x48", 1.5),
                                          ("cal_hrnet_w48_64x48", 1.0)])
def test_released_cal_weights_without_yaml_get_its_test_settings(name: str,
                                                                 locref: float) -> None:
    with torch.device("meta"):
        state = MODELS.get(name).build().state_dict()
    net, _ = build_for_family(state, Path("w.pth"), "cal", None, None, {})
    assert net.meta.name == name and net.meta.input_size == (64, 48)
    test = net.meta.test
    assert (test["locref_stdev"], test["in_vis_thre"], test["oks_thre"]) == (locref, 0.2, 0.9)
    assert test["flip_test"] and test["use_gt_bbox"]


def _imagenet_hrnet(width: int) -> dict[str, torch.Tensor]:
    """ImageNet HRNet layout: 4-branch multi-scale stage 4 and a classification head."""
    from bupose.models.hrnet import HRNet, hrnet_stages

    torch.manual_seed(2)
    net = HRNet(hrnet_stages(width, 1, (1, 1, 2)), multi_scale_output=True)
    for p in net.parameters():
        torch.nn.init.normal_(p)
    state = dict(net.state_dict())
    state["classifier.weight"] = torch.zeros(1000, 2048)
    return state


@pytest.mark.parametrize("branches", [3, 4])
def test_cal_training_starts_from_imagenet_hrnet(tmp_path: Path, branches: int) -> None:
    from bupose.models.checkpoint import load_backbone_weights

    state = _imagenet_hrnet(16)
    torch.save(state, tmp_path / "hrnet_w16.pth")
    model = create_model("cal_hrnet_small_64x48", num_blocks=1, num_modules=[1, 1, 2],
                         stage4_branches=branches)
    om_before = model.stage4_om[0].branches[0][0].conv1.weight.clone()
    report = load_backbone_weights(model, tmp_path / "hrnet_w16.pth")
    for key in ("conv1.weight", "stage3.0.branches.2.0.conv1.weight",
                "stage4.1.branches.0.0.conv2.weight", "stage4.1.fuse_layers.0.2.0.weight"):
        assert torch.equal(model.state_dict()[key], state[key]), key
    assert torch.equal(model.stage4_om[0].branches[0][0].conv1.weight, om_before)
    assert "classifier.weight" in report["ignored"]
    assert ("stage4.0.branches.3.0.conv1.weight" in report["ignored"]) == (branches == 3)
    assert all(k.startswith(("transition3_om", "stage4_om", "head_")) or "num_batches" in k
               for k in report["kept"])
    wide = create_model("cal_hrnet_small_64x48", width=32, num_blocks=1, num_modules=[1, 1, 2])
    with pytest.raises(CheckpointError, match="backbone[\\s\\S]*shape mismatches"):
        load_backbone_weights(wide, tmp_path / "hrnet_w16.pth")


def test_simplepose_training_starts_from_a_bare_hourglass(tmp_path: Path) -> None:
    from bupose.models.checkpoint import load_backbone_weights

    state = _og_state()
    bare = {k[len("basenet."):]: v for k, v in state.items() if k.startswith("basenet.")}
    torch.save({"epoch": 0, "train_loss": 0.0, "model_state_dict": bare},
               tmp_path / "hourglass_renamed.pth")
    kwargs = {"dims": [8, 8, 12, 12, 12, 16], "cnv_dim": 8, "stem_channels": 8}
    model = create_model("simplepose_hg104", with_scale=True, **kwargs)
    report = load_backbone_weights(model, tmp_path / "hourglass_renamed.pth")
    assert torch.equal(model.basenet.kps[1].low3[1].conv1.weight,
                       state["basenet.kps.1.low3.1.conv1.weight"])
    assert all(k.startswith("headnets.") or "num_batches" in k for k in report["kept"])
    full = create_model("simplepose_hg104", with_scale=True, **kwargs)
    load_backbone_weights(full, require(OG / "tiny_checkpoint.pth"), include_head=True)
    _assert_og_maps(_og_forward(full.eval()))
