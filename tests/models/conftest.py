"""Official-format configs derived from the recorded tiny config (tiny/tiny_config.yaml)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tests.conftest import FIXTURES, require

TINY = FIXTURES / "tiny"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Single-threaded torch: small models gain nothing from threads, and on a shared machine
    spinning worker threads make runs many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def derive_official_yaml(out: Path, width: int, input_size: int, fp16: bool,
                         num_joints: int = 17) -> Path:
    """The tiny yacs dump turned into the HigherHRNet-W``width`` experiment (ALGORITHMS.md §1.3,
    §2.1: modules 1/4/3, 4 blocks per branch, deconv to ``width`` channels)."""
    cfg: dict[str, Any] = yaml.safe_load(require(TINY / "tiny_config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    extra = cfg["MODEL"]["EXTRA"]
    for s, modules in zip((2, 3, 4), (1, 4, 3)):
        stage = extra[f"STAGE{s}"]
        stage["NUM_MODULES"] = modules
        stage["NUM_BLOCKS"] = [4] * s
        stage["NUM_CHANNELS"] = [width * 2**b for b in range(s)]
    extra["DECONV"]["NUM_CHANNELS"] = [width]
    cfg["DATASET"]["INPUT_SIZE"] = input_size
    cfg["DATASET"]["OUTPUT_SIZE"] = [input_size // 4, input_size // 2]
    cfg["DATASET"]["NUM_JOINTS"] = cfg["MODEL"]["NUM_JOINTS"] = num_joints
    cfg["FP16"]["ENABLED"] = fp16
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.fixture
def official_yaml(tmp_path: Path) -> Callable[..., Path]:
    def make(width: int, input_size: int, fp16: bool = False, num_joints: int = 17) -> Path:
        return derive_official_yaml(tmp_path / f"w{width}_{input_size}.yaml", width,
                                    input_size, fp16, num_joints)

    return make
