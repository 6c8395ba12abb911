"""Every shipped recipe parses and builds its model, training data pipeline, loss and test-time
settings, with the recipe's default (official) dataset paths pointing at a tiny real dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from bupose.config import apply_overrides, load_config
from bupose.engine.build import build_model, build_optimizer
from bupose.engine.synthetic import ensure_synthetic, resolve_synthetic
from bupose.engine.tasks import get_task
from bupose.structures.spec import load_spec

# Top-down (cal) and SimplePose (offsets) recipes are built in tests/engine/test_cal_task.py and
# test_offset_task.py; this file builds the associative-embedding ones.
CONFIGS = [p for p in sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
           if load_config(p).method == "ae"]


def _official_layout(root: Path, shared_data: Path) -> None:
    """data/coco and data/crowd_pose under ``root`` in the official layouts, holding the tiny
    COCO and CrowdPose samples of ../shared (symlinks; nothing is copied)."""
    coco, crowd = shared_data / "samples" / "coco", shared_data / "samples" / "crowdpose"
    links = {
        "data/coco/annotations/person_keypoints_train2017.json": coco / "test_coco.json",
        "data/coco/annotations/person_keypoints_val2017.json": coco / "test_coco.json",
        "data/coco/images/train2017": coco,
        "data/coco/images/val2017": coco,
        "data/crowd_pose/json/crowdpose_trainval.json": crowd / "test_crowdpose.json",
        "data/crowd_pose/json/crowdpose_test.json": crowd / "test_crowdpose.json",
        "data/crowd_pose/images": crowd,
    }
    for name, target in links.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            pytest.skip(f"needs {target} (the shared/ folder beside the checkout)")
        os.symlink(target, path)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_recipe_builds(path: Path, tmp_path: Path, shared_data: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(path)
    if cfg.data.synth.enabled:  # a two-image synthetic set instead of the recipe's 2000
        cfg = apply_overrides(cfg, [f"data.synth.dir={tmp_path / 'synth'}",
                                    "data.synth.train_images=2", "data.synth.val_images=1"])
        cfg = resolve_synthetic(cfg)
        ensure_synthetic(cfg.data)
    else:
        _official_layout(tmp_path, shared_data)
    monkeypatch.chdir(tmp_path)
    spec = load_spec(cfg.data.spec)
    task = get_task(cfg.method)

    model = build_model(cfg.model, spec, device="meta")  # structure only, no weights
    layout = model.output_layout
    assert layout[0].num_heatmaps == spec.num_keypoints
    assert build_optimizer(cfg.optim, model).param_groups[0]["lr"] == cfg.optim.lr

    dataset = task.build_train_dataset(cfg, spec, model)
    item = dataset[0]
    size = cfg.data.input_size
    assert item["image"].shape == (3, size, size)
    assert [h.shape[-1] for h in item["heatmaps"]] == [size // s.stride for s in layout]

    loss_fn = task.build_loss(cfg, spec, model)
    outputs = tuple(torch.zeros(1, s.channels, size // s.stride, size // s.stride)
                    for s in layout)
    batch = {k: ([t[None] for t in v] if isinstance(v, list) else v[None])
             for k, v in item.items()}
    terms = loss_fn(outputs, batch)
    assert terms and all(torch.isfinite(v) for v in terms.values())
    prefix = "hae/" if cfg.loss.tag_loss == "hae" else "ae/"
    assert any(k.startswith(prefix) for k in terms)
    assert len(task.build_val_reader(cfg, spec)) > 0
    predictor = task.build_predictor(cfg, spec, model)
    assert predictor.input_size == size and predictor.flip == cfg.eval.flip
