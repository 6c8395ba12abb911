"""Read an official CAL experiment YAML (ilovepose/Low-resolution-human-pose
``experiments/*/hrnet/*.yaml`` or a yacs dump of one) into ``cal_arch`` arguments, the crop
size and the test settings. Parsed with ``yaml.safe_load`` (+ literal-only ``ast`` for
yacs strings such as "(0,1,2,3)"); nothing is executed.

Every released yaml is read as it is (reference quirks, fixtures README "Reference quirks" 1):
* ``MODEL.EXTRA.STAGE4OM`` missing (all but the two 128x96 yamls): taken from ``STAGE4``;
* ``MODEL.SIGMA: 2`` (an int, which yacs rejects): any number is accepted;
* ``FINAL_HM`` / ``FINAL_OM`` missing: ``{BLOCK: BASIC}``, the only value used anywhere.
Keys the file omits take the official defaults (``lib/config/default.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError
from bupose.models.official_config import _get, _literal, _stage

# Official defaults (lib/config/default.py) of the TEST settings, lower-case keys.
CAL_TEST_DEFAULTS: dict[str, Any] = {
    "flip_test": False, "post_process": False, "blur_kernel": 11, "use_gt_bbox": False,
    "image_thre": 0.1, "nms_thre": 0.6, "soft_nms": False, "oks_thre": 0.5,
    "in_vis_thre": 0.0, "coco_bbox_file": "", "bbox_thre": 1.0,
}
_TEST_UNUSED = {"batch_size_per_gpu", "model_file"}
_DATASET_SPECS = {"coco": "coco17", "mpii": "mpii16", "crowd_pose": "crowdpose14",
                  "crowdpose": "crowdpose14"}
LOCREF_STDEV_DEFAULT = 1.0  # DATASET.LOCREF_STDEV of default.py (the W48 yamls omit it)


@dataclass(frozen=True)
class CalConfig:
    """What bupose takes from an official CAL YAML.

    Attributes:
        arch: ``bupose.models.cal_hrnet.cal_arch`` arguments (canonical form).
        input_size: crop (h, w) from MODEL.IMAGE_SIZE ([w, h] in the file).
        spec_name: built-in spec of DATASET.DATASET (coco -> coco17, mpii -> mpii16).
        test: TEST settings (lower-case keys, defaults filled) plus ``locref_stdev``
            (DATASET.LOCREF_STDEV).
        train: target / loss settings (sigma, mask_sigma, kpd, offset_weight, gt_mask,
            locref_stdev, heatmap_size (h, w)) for reference.
        rules: the port rules applied to read the file as released.
        raw: the parsed YAML.
    """

    arch: dict[str, Any]
    input_size: tuple[int, int]
    spec_name: str | None
    test: dict[str, Any]
    train: dict[str, Any]
    rules: list[str]
    raw: dict[str, Any] = field(repr=False)


def _load(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise ConfigError(f"{path}: official config file not found")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a readable YAML file: {e}") from None
    if not isinstance(cfg, dict) or "MODEL" not in cfg:
        raise ConfigError(f"{path}: not an official config (no MODEL section)")
    return _literal(cfg)


def is_cal_config(path: str | os.PathLike) -> bool:
    """True when the YAML is an official top-down ``pose_hrnet`` config (CAL's)."""
    try:
        cfg = _load(Path(path))
    except ConfigError:
        return False
    return _get(cfg, "MODEL.NAME", Path(path), "pose_hrnet") == "pose_hrnet"


def _size_hw(value: Any, key: str, path: Path) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{path}: {key} must be [width, height], got {value!r}")
    return int(value[1]), int(value[0])


def _number(cfg: dict[str, Any], key: str, path: Path, default: float) -> float:
    value = _get(cfg, key, path, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{path}: {key} must be a number, got {value!r}")
    return float(value)  # an int SIGMA (released 256x192 / MPII yamls) is accepted


def _arch(cfg: dict[str, Any], path: Path, rules: list[str]) -> dict[str, Any]:
    from bupose.models.cal_hrnet import cal_arch

    extra = _get(cfg, "MODEL.EXTRA", path)
    stages = [_stage(extra, s, path) for s in (2, 3, 4)]
    if "STAGE4OM" in extra:
        stage4_om = _stage(extra, "4OM", path)  # type: ignore[arg-type]
    else:
        stage4_om = None
        rules.append("STAGE4OM := STAGE4")
    blocks = {}
    for part in ("FINAL_HM", "FINAL_OM"):
        if part not in extra:
            rules.append(f"{part} := {{BLOCK: BASIC}}")
        blocks[part] = str(_get(extra, f"{part}.BLOCK", path, "BASIC")).upper()
    if blocks["FINAL_HM"] != blocks["FINAL_OM"]:
        raise ConfigError(f"{path}: FINAL_HM.BLOCK {blocks['FINAL_HM']} differs from "
                          f"FINAL_OM.BLOCK {blocks['FINAL_OM']} (not supported)")
    try:
        return cal_arch(num_keypoints=int(_get(cfg, "MODEL.NUM_JOINTS", path, 17)),
                        stages=stages, stage4_om=stage4_om, final_block=blocks["FINAL_HM"],
                        final_conv_kernel=int(extra.get("FINAL_CONV_KERNEL", 1)))
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"{path}: invalid MODEL.EXTRA: {e}") from None


def read_cal_config(path: str | os.PathLike) -> CalConfig:
    """Parse an official CAL experiment YAML; errors name the file and the key."""
    path = Path(path)
    cfg = _load(path)
    name = _get(cfg, "MODEL.NAME", path, "pose_hrnet")
    if name != "pose_hrnet":
        raise ConfigError(f"{path}: MODEL.NAME {name!r} is not pose_hrnet (the CAL model)")
    rules: list[str] = []
    arch = _arch(cfg, path, rules)
    locref = _number(cfg, "DATASET.LOCREF_STDEV", path, LOCREF_STDEV_DEFAULT)
    test = dict(CAL_TEST_DEFAULTS)
    for key, value in dict(_get(cfg, "TEST", path, {})).items():
        if key.lower() not in _TEST_UNUSED:
            test[key.lower()] = value
    test["locref_stdev"] = locref
    train = {
        "sigma": _number(cfg, "MODEL.SIGMA", path, 2.0),
        "mask_sigma": _number(cfg, "MODEL.MASK_SIGMA", path, 1.0),
        "locref_stdev": locref,
        "kpd": _number(cfg, "LOSS.KPD", path, 4.0),
        "offset_weight": _number(cfg, "LOSS.OFFSET_WEIGHT", path, 1.0),
        "gt_mask": bool(_get(cfg, "LOSS.GT_MASK", path, False)),
        "heatmap_size": _size_hw(_get(cfg, "MODEL.HEATMAP_SIZE", path, [64, 64]),
                                 "MODEL.HEATMAP_SIZE", path),
    }
    dataset = str(_get(cfg, "DATASET.DATASET", path, "mpii")).lower()
    return CalConfig(
        arch=arch,
        input_size=_size_hw(_get(cfg, "MODEL.IMAGE_SIZE", path, [256, 256]),
                            "MODEL.IMAGE_SIZE", path),
        spec_name=_DATASET_SPECS.get(dataset), test=test, train=train, rules=rules, raw=cfg)


# TEST settings (+ DATASET.LOCREF_STDEV) of the released yamls, for official weights loaded
# without their yaml (matched to a registered model by architecture). COCO yamls: GT boxes,
# flip, thresholds 0.0 / 0.2 / 0.9, blur kernel 3 at 64x48 and W32-128x96 (else 11); the W48
# and MPII yamls omit LOCREF_STDEV (default 1.0); the MPII yamls set only flip / post-process.
_COCO_TEST = {**CAL_TEST_DEFAULTS, "flip_test": True, "post_process": True, "use_gt_bbox": True,
              "image_thre": 0.0, "nms_thre": 1.0, "oks_thre": 0.9, "in_vis_thre": 0.2}
_MPII_TEST = {**CAL_TEST_DEFAULTS, "flip_test": True, "post_process": True}
RELEASED_TEST: dict[str, dict[str, Any]] = {
    "cal_hrnet_w32_64x48": {**_COCO_TEST, "blur_kernel": 3, "locref_stdev": 1.5},
    "cal_hrnet_w48_64x48": {**_COCO_TEST, "locref_stdev": 1.0},
    "cal_hrnet_w32_128x96": {**_COCO_TEST, "blur_kernel": 3, "locref_stdev": 1.5},
    "cal_hrnet_w48_128x96": {**_COCO_TEST, "locref_stdev": 1.0},
    "cal_hrnet_w32_256x256_mpii": {**_MPII_TEST, "locref_stdev": 1.0},
    "cal_hrnet_w48_256x256_mpii": {**_MPII_TEST, "locref_stdev": 1.0},
}
