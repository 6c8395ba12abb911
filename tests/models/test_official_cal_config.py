"""Official CAL yamls: architecture, crop size, TEST / training settings, the port rules for
the released files, and errors that name the file and key."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from bupose.errors import ConfigError
from bupose.models.official_cal_config import CAL_TEST_DEFAULTS, is_cal_config, read_cal_config
from tests.conftest import SHARED, require

CAL_YAML = SHARED / "fixtures" / "official_cal" / "tiny" / "tiny_config.yaml"
HH_YAML = SHARED / "fixtures" / "official_higherhrnet" / "tiny" / "tiny_config.yaml"


def _write(tmp_path: Path, edit: Any) -> Path:
    cfg = copy.deepcopy(yaml.safe_load(require(CAL_YAML).read_text()))
    edit(cfg)
    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def test_tiny_yaml() -> None:
    cfg = read_cal_config(require(CAL_YAML))
    assert cfg.input_size == (64, 48) and cfg.spec_name == "coco17" and cfg.rules == []
    assert cfg.arch["num_keypoints"] == 17 and cfg.arch["stage4_om"] == cfg.arch["stages"][2]
    assert cfg.arch["stages"][0]["num_channels"] == [8, 16]
    assert cfg.train == {"sigma": 0.3, "mask_sigma": 0.3, "locref_stdev": 1.5, "kpd": 4.0,
                         "offset_weight": 0.7, "gt_mask": True, "heatmap_size": (16, 12)}
    assert cfg.test["in_vis_thre"] == 0.2 and cfg.test["nms_thre"] == 1.0
    assert "batch_size_per_gpu" not in cfg.test and "model_file" not in cfg.test
    assert is_cal_config(CAL_YAML) and not is_cal_config(require(HH_YAML))


def test_released_yaml_rules_and_defaults(tmp_path: Path) -> None:
    def released(cfg: dict[str, Any]) -> None:
        extra = cfg["MODEL"]["EXTRA"]
        del extra["STAGE4OM"], extra["FINAL_HM"], extra["FINAL_OM"]
        cfg["MODEL"]["SIGMA"] = 2
        del cfg["TEST"], cfg["LOSS"]["OFFSET_WEIGHT"]

    cfg = read_cal_config(_write(tmp_path, released))
    assert cfg.rules == ["STAGE4OM := STAGE4", "FINAL_HM := {BLOCK: BASIC}",
                         "FINAL_OM := {BLOCK: BASIC}"]
    assert cfg.train["sigma"] == 2.0 and cfg.train["offset_weight"] == 1.0
    assert cfg.test == {**CAL_TEST_DEFAULTS, "locref_stdev": 1.5}


def test_stage4om_is_read_when_present(tmp_path: Path) -> None:
    def wide(cfg: dict[str, Any]) -> None:
        cfg["MODEL"]["EXTRA"]["STAGE4OM"]["NUM_CHANNELS"] = [24, 16, 32]

    cfg = read_cal_config(_write(tmp_path, wide))
    assert cfg.arch["stage4_om"]["num_channels"] == [24, 16, 32]
    assert cfg.arch["stages"][2]["num_channels"] == [8, 16, 32]


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["MODEL"].update(IMAGE_SIZE=[48]), "MODEL.IMAGE_SIZE must be"),
    (lambda c: c["MODEL"].update(SIGMA="wide"), "MODEL.SIGMA must be a number"),
    (lambda c: c["MODEL"]["EXTRA"].pop("STAGE3"), "no STAGE3"),
    (lambda c: c["MODEL"]["EXTRA"]["STAGE4OM"].update(NUM_BRANCHES=2), "STAGE4OM has"),
    (lambda c: c["MODEL"]["EXTRA"]["FINAL_OM"].update(BLOCK="BOTTLENECK"), "differs"),
])
def test_errors_name_file_and_key(tmp_path: Path, edit: Any, message: str) -> None:
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError, match=message) as info:
        read_cal_config(path)
    assert str(path) in str(info.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_cal_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("just text")
    with pytest.raises(ConfigError, match="no MODEL section"):
        read_cal_config(bad)
    assert not is_cal_config(bad)
