"""Read an official HigherHRNet experiment YAML (yacs dump or the repo's experiments/*.yaml) into
bupose model arguments and test settings. Nothing is executed: the file is parsed with
``yaml.safe_load`` and yacs-style literal strings such as "(True, False)" with
``ast.literal_eval`` (literals only).

Read: MODEL.NAME (must be pose_higher_hrnet), MODEL.NUM_JOINTS, MODEL.TAG_PER_JOINT,
MODEL.EXTRA (STAGE2-4, DECONV, FINAL_CONV_KERNEL), LOSS.WITH_AE_LOSS (which outputs carry tags:
an architecture fact in the official code), DATASET.DATASET / DATASET_TEST (the keypoint spec),
DATASET.INPUT_SIZE, OUTPUT_SIZE, MAX_NUM_PEOPLE, WITH_CENTER, FP16.ENABLED and TEST.*.
Keys the file omits take the official defaults (lib/config/default.py).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError

# Official defaults (lib/config/default.py) of the settings read here.
TEST_DEFAULTS: dict[str, Any] = {
    "flip_test": False, "adjust": True, "refine": True, "scale_factor": [1],
    "detection_threshold": 0.2, "tag_threshold": 1.0, "use_detection_val": True,
    "ignore_too_much": False, "ignore_center": True, "nms_kernel": 3, "nms_padding": 1,
    "project2image": False, "with_heatmaps": [True], "with_ae": [True],
}
_TEST_UNUSED = {"images_per_gpu", "model_file", "log_progress"}
_DATASET_SPECS = {"coco": "coco17", "coco_kpt": "coco17", "crowd_pose": "crowdpose14",
                  "crowd_pose_kpt": "crowdpose14"}


@dataclass(frozen=True)
class OfficialConfig:
    """What bupose takes from an official experiment YAML.

    Attributes:
        arch: ``bupose.models.zoo.resolve_arch`` arguments (canonical form).
        input_size: DATASET.INPUT_SIZE. output_size: DATASET.OUTPUT_SIZE (map sides).
        spec_name: built-in spec of DATASET.DATASET_TEST / DATASET (None if unknown).
        test: TEST settings, lower-case keys, defaults filled, plus ``max_num_people``.
        fp16: FP16.ENABLED (its checkpoints carry a ``1.`` prefix and fp16 weights).
        raw: the parsed YAML.
    """

    arch: dict[str, Any]
    input_size: int
    output_size: list[int]
    spec_name: str | None
    test: dict[str, Any]
    fp16: bool
    raw: dict[str, Any] = field(repr=False)


def _literal(value: Any) -> Any:
    """yacs semantics: strings that are Python literals become values; recurse into containers."""
    if isinstance(value, dict):
        return {k: _literal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal(v) for v in value]
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return value
        return list(parsed) if isinstance(parsed, tuple) else parsed
    return value


def _get(d: dict[str, Any], dotted: str, path: Path, default: Any = ...) -> Any:
    node: Any = d
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(f"{path}: official config has no {dotted}")
            return default
        node = node[part]
    return node


def _stage(extra: dict[str, Any], n: int, path: Path) -> dict[str, Any]:
    key = f"MODEL.EXTRA.STAGE{n}"
    s = _get(extra, f"STAGE{n}", path)
    if str(s.get("FUSE_METHOD", "SUM")).upper() != "SUM":
        raise ConfigError(f"{path}: {key}.FUSE_METHOD {s['FUSE_METHOD']!r} is not supported")
    blocks, channels = list(_get(s, "NUM_BLOCKS", path)), list(_get(s, "NUM_CHANNELS", path))
    branches = int(s.get("NUM_BRANCHES", len(channels)))
    if not len(blocks) == len(channels) == branches:
        raise ConfigError(f"{path}: {key} has NUM_BRANCHES {branches}, {len(blocks)} NUM_BLOCKS "
                          f"and {len(channels)} NUM_CHANNELS")
    return {"num_modules": int(_get(s, "NUM_MODULES", path)), "num_blocks": blocks,
            "num_channels": channels, "block": str(s.get("BLOCK", "BASIC")).upper()}


def _arch(cfg: dict[str, Any], num_keypoints: int, path: Path) -> dict[str, Any]:
    from bupose.models.zoo import resolve_arch

    extra = _get(cfg, "MODEL.EXTRA", path)
    deconv = extra.get("DECONV", {"NUM_DECONVS": 0})
    n = int(_get(deconv, "NUM_DECONVS", path))
    listed = {k: list(deconv.get(k, []))[:n] for k in ("NUM_CHANNELS", "KERNEL_SIZE",
                                                       "CAT_OUTPUT")}
    for k, v in listed.items():
        if len(v) < n:
            raise ConfigError(f"{path}: MODEL.EXTRA.DECONV.{k} has {len(v)} entries for "
                              f"NUM_DECONVS {n}")
    with_ae = list(_get(cfg, "LOSS.WITH_AE_LOSS", path, [True]))
    if len(with_ae) < n + 1:
        raise ConfigError(f"{path}: LOSS.WITH_AE_LOSS needs {n + 1} entries (one per output)")
    try:
        return resolve_arch(
            num_keypoints=num_keypoints,
            tag_per_joint=bool(_get(cfg, "MODEL.TAG_PER_JOINT", path, True)),
            stages=[_stage(extra, s, path) for s in (2, 3, 4)],
            deconv_channels=listed["NUM_CHANNELS"], deconv_kernels=listed["KERNEL_SIZE"],
            cat_output=listed["CAT_OUTPUT"],
            num_basic_blocks=int(deconv.get("NUM_BASIC_BLOCKS", 4)),
            final_conv_kernel=int(extra.get("FINAL_CONV_KERNEL", 1)),
            tag_stages=[bool(a) for a in with_ae[: n + 1]])
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{path}: invalid MODEL.EXTRA: {e}") from None


def read_official_config(path: str | os.PathLike) -> OfficialConfig:
    """Parse an official HigherHRNet experiment YAML; errors name the file and the key."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: official config file not found")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not a readable YAML file: {e}") from None
    if not isinstance(cfg, dict) or "MODEL" not in cfg:
        raise ConfigError(f"{path}: not an official HigherHRNet config (no MODEL section)")
    cfg = _literal(cfg)
    name = _get(cfg, "MODEL.NAME", path, "pose_higher_hrnet")
    if name != "pose_higher_hrnet":
        raise ConfigError(f"{path}: MODEL.NAME {name!r} is not pose_higher_hrnet")
    k = int(_get(cfg, "MODEL.NUM_JOINTS", path, _get(cfg, "DATASET.NUM_JOINTS", path, 17)))
    if _get(cfg, "DATASET.WITH_CENTER", path, False):
        k = int(_get(cfg, "DATASET.NUM_JOINTS", path, 17)) + 1
    test = dict(TEST_DEFAULTS)
    for key, value in dict(_get(cfg, "TEST", path, {})).items():
        if key.lower() not in _TEST_UNUSED:
            test[key.lower()] = value
    test["max_num_people"] = int(_get(cfg, "DATASET.MAX_NUM_PEOPLE", path, 30))
    dataset = _get(cfg, "DATASET.DATASET_TEST", path, _get(cfg, "DATASET.DATASET", path, ""))
    output_size = _get(cfg, "DATASET.OUTPUT_SIZE", path, [128, 256, 512])
    return OfficialConfig(
        arch=_arch(cfg, k, path),
        input_size=int(_get(cfg, "DATASET.INPUT_SIZE", path, 512)),
        output_size=[int(s) for s in (output_size if isinstance(output_size, list)
                                      else [output_size])],
        spec_name=_DATASET_SPECS.get(str(dataset)),
        test=test,
        fp16=bool(_get(cfg, "FP16.ENABLED", path, False)),
        raw=cfg,
    )
