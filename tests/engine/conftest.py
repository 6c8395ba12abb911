"""Tiny training setups for the engine tests: a small synthetic COCO-format set (8 images,
64 x 64) written once per session, and configs for a tiny HigherHRNet at 64 px."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bupose.config import ExperimentCfg, config_from_dict


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def tiny_config(synth_dir: Path, **sections: dict[str, Any]) -> ExperimentCfg:
    """A tiny run: higherhrnet_tiny at 64 px on 8 synthetic images, 2 epochs of 4 steps of 2."""
    base = {
        "model": {"name": "higherhrnet_tiny", "kwargs": {"width": 8}},
        "data": {
            "input_size": 64, "workers": 0,
            "synth": {"enabled": True, "dir": str(synth_dir), "train_images": 8,
                      "val_images": 2, "size": [64, 64], "people": [1, 2]},
        },
        "train": {"epochs": 2, "batch_size": 2, "val_every": 0, "log_every": 1, "threads": 1,
                  "tensorboard": False, "progress": False},
    }
    return config_from_dict(_merge(base, sections), source="test config")


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic train/val sets shared by the engine tests (generated once)."""
    from bupose.engine.synthetic import ensure_synthetic, resolve_synthetic

    root = tmp_path_factory.mktemp("synth")
    cfg = resolve_synthetic(tiny_config(root))
    ensure_synthetic(cfg.data)
    return root


@pytest.fixture
def make_config(synth_dir: Path) -> Any:
    """``make_config(train={...}, ...)`` -> a tiny ExperimentCfg on the shared synthetic set."""
    return lambda **sections: tiny_config(synth_dir, **sections)
