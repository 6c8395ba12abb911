"""Reading official HigherHRNet experiment YAMLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from bupose.errors import ConfigError
from bupose.models import MODELS
from bupose.models.official_config import read_official_config
from bupose.models.zoo import match_registered
from tests.models.conftest import TINY, require


def test_tiny_config() -> None:
    cfg = read_official_config(require(TINY / "tiny_config.yaml"))
    assert cfg.input_size == 256 and cfg.output_size == [64, 128]
    assert cfg.spec_name == "coco17" and not cfg.fp16
    assert [s["num_modules"] for s in cfg.arch["stages"]] == [1, 1, 2]
    assert cfg.arch["stages"][2]["num_channels"] == [16, 32, 64, 128]
    assert cfg.arch["deconv_channels"] == [16] and cfg.arch["tag_stages"] == [True, False]
    assert cfg.test["flip_test"] is True and cfg.test["nms_kernel"] == 5
    assert cfg.test["with_heatmaps"] == [True, True] and cfg.test["with_ae"] == [True, False]
    assert cfg.test["max_num_people"] == 30
    assert match_registered(cfg.arch, cfg.input_size) == ("higherhrnet_tiny", {})


@pytest.mark.parametrize("width, size, fp16, name", [
    (32, 512, False, "higherhrnet_w32_512"), (32, 640, True, "higherhrnet_w32_640"),
    (48, 640, True, "higherhrnet_w48_640"),
])
def test_derived_official_configs_match_registered(official_yaml, width, size, fp16,
                                                   name) -> None:
    cfg = read_official_config(official_yaml(width, size, fp16))
    assert match_registered(cfg.arch, cfg.input_size) == (name, {})
    assert cfg.fp16 is fp16


def test_crowdpose_k_and_custom_arch(official_yaml) -> None:
    path = official_yaml(24, 512, num_joints=14)
    text = path.read_text().replace("DATASET: coco_kpt", "DATASET: crowd_pose_kpt")
    text = text.replace("DATASET_TEST: coco", "DATASET_TEST: crowd_pose")
    path.write_text(text)
    cfg = read_official_config(path)
    assert cfg.arch["num_keypoints"] == 14 and cfg.spec_name == "crowdpose14"
    name, kwargs = match_registered(cfg.arch, cfg.input_size)
    assert MODELS.get(name).arch(**kwargs) == cfg.arch  # overrides rebuild the exact arch


def test_yacs_literal_strings_and_defaults(tmp_path: Path) -> None:
    text = require(TINY / "tiny_config.yaml").read_text()
    start = text.index("\nTEST:")
    end = text.index("\nTRAIN:")
    test = "\nTEST:\n  FLIP_TEST: true\n  WITH_HEATMAPS: (True, True)\n  WITH_AE: (True, False)\n"
    path = tmp_path / "c.yaml"
    path.write_text(text[:start] + test + text[end:])
    cfg = read_official_config(path)
    assert cfg.test["with_heatmaps"] == [True, True] and cfg.test["with_ae"] == [True, False]
    assert cfg.test["detection_threshold"] == 0.2 and cfg.test["nms_kernel"] == 3  # defaults


def test_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  NAME: pose_resnet\n")
    with pytest.raises(ConfigError, match="bad.yaml.*pose_resnet"):
        read_official_config(bad)
    bad.write_text("MODEL:\n  NAME: pose_higher_hrnet\n  EXTRA: {}\n")
    with pytest.raises(ConfigError, match="bad.yaml.*STAGE2"):
        read_official_config(bad)
    bad.write_text(": [")
    with pytest.raises(ConfigError, match="bad.yaml"):
        read_official_config(bad)
    with pytest.raises(ConfigError, match="not found"):
        read_official_config(tmp_path / "missing.yaml")
