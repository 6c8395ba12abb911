"""Method "offsets" (SimplePose V2): the recipes (README training command), building every piece,
config checks, validation through OffsetPredictor and a short ``bupose train`` run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bupose.cli import main
from bupose.config import apply_overrides, load_config
from bupose.engine.build import build_model
from bupose.engine.offset_task import OffsetTask, check_offsets
from bupose.engine.synthetic import ensure_synthetic, resolve_synthetic
from bupose.engine.tasks import get_task
from bupose.errors import ConfigError
from bupose.inference.offset_predictor import OffsetPredictor
from bupose.structures.spec import load_spec
from tests.engine.test_recipes import _official_layout

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPES = sorted(p.stem for p in CONFIGS.glob("*.yaml")
                 if load_config(p).method == "offsets")
TINY = {"dims": [8, 8, 8, 8, 8, 8], "modules": [1, 1, 1, 1, 1, 1], "cnv_dim": 8,
        "stem_channels": 8, "with_scale": True}


def test_readme_recipe() -> None:
    cfg = load_config(CONFIGS / "simplepose_hg104_coco.yaml")
    assert cfg.method == "offsets" and cfg.model.name == "simplepose_hg104"
    assert cfg.model.kwargs["with_scale"] is True
    o, lo, d = cfg.optim, cfg.loss.offsets, cfg.data
    assert (o.name, o.lr, o.weight_decay, o.schedule) == ("adam", 1.25e-4, 0.0, "offsetguided")
    assert o.scale_lr_with_batch and o.reference_batch == cfg.train.batch_size == 8
    assert (lo.heatmap_weight, lo.offset_weight, lo.scale_weight) == (1.0, 10000.0, 10.0)
    assert lo.gamma == 1.0 and lo.sqrt_re and lo.instance_norm and lo.focal
    assert (d.input_size, d.sigma, d.flip_prob, d.max_rotation) == (512, 7.0, 0.5, 45.0)
    assert (d.min_scale, d.max_scale, d.max_translate, d.offsets.stretch) == (
        0.5, 2.0, 150.0, (0.95, 1.05))
    e = cfg.eval.offsets
    assert (e.input_size, e.thre_hmp, e.topk, e.dist_max, e.person_thre) == (
        640, 0.04, 32, 40.0, 0.04) and cfg.eval.flip


@pytest.mark.parametrize("name", RECIPES)
def test_offset_recipe_builds(name: str, tmp_path: Path, shared_data: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = load_config(CONFIGS / f"{name}.yaml")
    if cfg.data.synth.enabled:
        cfg = apply_overrides(cfg, [f"data.synth.dir={tmp_path / 'synth'}",
                                    "data.synth.train_images=2", "data.synth.val_images=1"])
        cfg = resolve_synthetic(cfg)
        ensure_synthetic(cfg.data)
    else:
        _official_layout(tmp_path, shared_data)
    monkeypatch.chdir(tmp_path)
    spec, task = load_spec(cfg.data.spec), get_task(cfg.method)
    assert isinstance(task, OffsetTask)
    model = build_model(cfg.model, spec, device="meta")
    assert model.with_scale and model.num_stacks == 2
    size = cfg.data.input_size
    item = task.build_train_dataset(cfg, spec, model)[0]
    m = size // 4
    assert item["image"].shape == (3, size, size) and item["offsets"].shape == (38, m, m)
    batch = {k: v[None] for k, v in item.items()}
    outputs = (torch.zeros(1, 2, 17, m, m), torch.zeros(1, 2, 38, m, m),
               torch.zeros(1, 2, 17, m, m))
    terms = task.build_loss(cfg, spec, model)(outputs, batch)
    assert set(terms) == {"heatmap", "offset", "scale"}
    assert all(torch.isfinite(v) for v in terms.values())
    assert len(task.build_val_reader(cfg, spec)) > 0
    size_test, test = task.checkpoint_meta(cfg)
    assert size_test == cfg.eval.offsets.input_size and test["decoder"] == "offsets"


def test_config_checks_name_the_key() -> None:
    cfg = load_config(CONFIGS / "quickstart_simplepose_synth.yaml")
    check_offsets(cfg)
    for override, key in [("data.input_size=130", "data.input_size"),
                          ("data.sigma=0", "data.sigma"),
                          ("eval.offsets.topk=0", "eval.offsets.topk"),
                          ("data.flip_prob=2", "data.flip_prob")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_offsets(apply_overrides(cfg, [override]))
    with pytest.raises(ConfigError, match="resize_mode"):
        apply_overrides(cfg, ["eval.offsets.resize_mode=short-edge"])
    with pytest.raises(ConfigError, match="gamma"):
        apply_overrides(cfg, ["loss.offsets.gamma=two"])


def test_predictor_settings_and_empty_result() -> None:
    cfg = apply_overrides(load_config(CONFIGS / "quickstart_simplepose_synth.yaml"),
                          ["eval.offsets.thre_hmp=0.2", "eval.flip=false"])
    spec = load_spec("coco17")
    model = build_model(cfg.model.__class__(name="simplepose_hg_small", kwargs=TINY), spec)
    predictor = OffsetTask().build_predictor(cfg, spec, model.eval())
    assert isinstance(predictor, OffsetPredictor)
    assert predictor.params.thre_hmp == 0.2 and not predictor.flip
    assert predictor.input_size == 128
    poses = predictor(np.zeros((96, 128, 3), np.uint8))  # untrained: nobody found
    assert len(poses.scores) == 0 and poses.keypoints.shape == (0, 17, 3)


RECIPE = """
method: offsets
model: {{name: simplepose_hg_small, kwargs: {tiny}}}
data:
  input_size: 128
  sigma: 4.0
  workers: 0
  max_rotation: 0.0
  min_scale: 1.0
  max_scale: 1.0
  max_translate: 0.0
  synth: {{enabled: true, dir: {synth}, train_images: 4, val_images: 2, size: [128, 128]}}
optim: {{name: adam, lr: 1.0e-3, schedule: constant}}
train: {{epochs: 1, batch_size: 2, val_every: 1, log_every: 1, threads: 1,
         tensorboard: false, progress: false}}
eval: {{flip: true, offsets: {{input_size: 128}}}}
"""


def test_bupose_train_offsets(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "offsets.yaml"
    recipe.write_text(RECIPE.format(synth=tmp_path / "synth", tiny=json.dumps(TINY)))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--set",
                 "train.max_steps_per_epoch=2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and "AP" in summary["metrics"]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train and {"heatmap", "offset", "scale"} <= set(train[0])
    from bupose.models import load_checkpoint

    model = load_checkpoint(run / "best.pt")
    assert model.meta.input_size == 128 and model.meta.test["decoder"] == "offsets"
