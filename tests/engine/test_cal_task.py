"""Method "cal": the recipes (released settings from the official yaml facts, building every
piece), config checks, the loss-mask choice, validation through ``predict_sample`` and a short
``bupose train`` run."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bupose.cli import main
from bupose.config import apply_overrides, load_config
from bupose.engine.build import build_model
from bupose.engine.cal_task import CALTask, check_model_input, check_topdown
from bupose.engine.evaluate import predict_reader
from bupose.engine.synthetic import ensure_synthetic, resolve_synthetic
from bupose.engine.tasks import get_task
from bupose.errors import ConfigError
from bupose.structures.spec import load_spec
from tests.conftest import SHARED, require
from tests.engine.test_recipes import _official_layout

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RELEASED = ["w32_64x48", "w48_64x48", "w32_128x96", "w48_128x96"]
CAL_RECIPES = [f"cal_hrnet_{n}_coco" for n in RELEASED] + ["quickstart_cal_synth"]


@pytest.mark.parametrize("name", RELEASED)
def test_released_recipes_use_the_yaml_settings(name: str) -> None:
    facts = json.loads(require(SHARED / "fixtures" / "official_cal" / "model" /
                               "model_facts.json").read_text())
    fact = facts[f"experiments/coco/hrnet/{name}_adam_lr1e-3.yaml"]
    cfg = load_config(CONFIGS / f"cal_hrnet_{name}_coco.yaml")
    t = cfg.data.topdown
    assert cfg.method == "cal" and cfg.model.name == f"cal_hrnet_{name}"
    assert list(t.input_size) == fact["image_size_wh"][::-1]
    assert (cfg.data.sigma, t.mask_sigma, t.locref_stdev, t.kpd) == (
        fact["sigma"], fact["mask_sigma"], fact["locref_stdev"], fact["kpd"])
    assert cfg.loss.cal.offset_weight == fact["offset_weight"]
    assert cfg.loss.cal.gt_mask == fact["gt_mask"] and cfg.loss.cal.gmm
    o = cfg.optim
    assert (o.name, o.lr, o.lr_steps, o.lr_factor, cfg.train.epochs) == (
        "adam", 1e-3, (170, 200), 0.1, 210)
    assert cfg.train.batch_size == (128 if name == "w48_64x48" else 64)
    assert (t.half_body_prob, t.half_body_joints, t.scale_factor, t.rotation_factor) == (
        0.3, 8, 0.35, 45.0)


@pytest.mark.parametrize("name", CAL_RECIPES)
def test_cal_recipe_builds(name: str, tmp_path: Path, shared_data: Path,
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
    assert isinstance(task, CALTask)
    model = build_model(cfg.model, spec, device="meta")
    h, w = cfg.data.topdown.input_size
    assert tuple(model.meta.input_size) == (h, w)
    item = task.build_train_dataset(cfg, spec, model)[0]
    k = spec.num_keypoints
    assert item["image"].shape == (3, h, w) and item["offsets"].shape == (2 * k, h // 4, w // 4)
    batch = {key: v[None] for key, v in item.items()}
    outputs = (torch.zeros(1, k, h // 4, w // 4), torch.zeros(1, 2 * k, h // 4, w // 4))
    terms = task.build_loss(cfg, spec, model)(outputs, batch)
    assert set(terms) == {"heatmap", "offset"} and all(torch.isfinite(v) for v in terms.values())
    assert len(task.build_val_reader(cfg, spec)) > 0
    size, test = task.checkpoint_meta(cfg)
    assert size == (h, w) and test["locref_stdev"] == cfg.data.topdown.locref_stdev


def test_config_checks_name_the_key() -> None:
    cfg = load_config(CONFIGS / "quickstart_cal_synth.yaml")
    check_topdown(cfg)
    for override, key in [("data.topdown.input_size=[62, 48]", "data.topdown.input_size"),
                          ("data.topdown.locref_stdev=0", "data.topdown.locref_stdev"),
                          ("data.topdown.half_body_prob=1.5", "data.topdown.half_body_prob"),
                          ("loss.cal.offset_weight=-1", "loss.cal.offset_weight")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            check_topdown(apply_overrides(cfg, [override]))
    with pytest.raises(ConfigError, match="input_size"):
        apply_overrides(cfg, ["data.topdown.input_size=64"])
    model = build_model(cfg.model, load_spec("coco17"))
    check_model_input(model, (64, 48))
    with pytest.raises(ConfigError, match="does not fit the model"):
        check_model_input(model, (32, 24))  # the stride-16 branch would be 1.5 px wide


def test_loss_mask_follows_gt_mask_and_gmm() -> None:
    cfg = load_config(CONFIGS / "quickstart_cal_synth.yaml")
    spec = load_spec("coco17")
    masks = []
    for gt, gmm in [(True, True), (True, False), (False, True)]:
        c = apply_overrides(cfg, [f"loss.cal.gt_mask={str(gt).lower()}",
                                  f"loss.cal.gmm={str(gmm).lower()}"])
        masks.append(CALTask().build_loss(c, spec, torch.nn.Identity()).offset_mask)
    assert masks == ["gmm", "gaussian", "01"]


def test_predict_reader_uses_predict_sample() -> None:
    class Poses:
        def __init__(self, tag: str) -> None:
            self.tag = tag

        def to_coco(self, image_id: int) -> list[dict]:
            return [{"image_id": image_id, "tag": self.tag}]

    class TopDown:
        def predict_sample(self, sample):
            return Poses("boxes")

        def __call__(self, image):
            return Poses("image")

    reader = [SimpleNamespace(image=np.zeros((4, 4, 3), np.uint8), image_id=7)]
    assert predict_reader(TopDown(), reader, [0]) == [{"image_id": 7, "tag": "boxes"}]
    bottom_up = TopDown.__call__
    assert predict_reader(type("B", (), {"__call__": bottom_up})(), reader, [0])[0]["tag"] == \
        "image"


RECIPE = """
method: cal
model: {{name: cal_hrnet_small_64x48, kwargs: {{width: 8}}}}
data:
  sigma: 0.5
  workers: 0
  synth: {{enabled: true, dir: {synth}, train_images: 4, val_images: 2, size: [64, 64]}}
  topdown: {{input_size: [64, 48], mask_sigma: 0.5, locref_stdev: 1.0}}
train: {{epochs: 1, batch_size: 2, val_every: 1, log_every: 1, threads: 1,
         tensorboard: false, progress: false}}
"""


def test_bupose_train_cal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "cal.yaml"
    recipe.write_text(RECIPE.format(synth=tmp_path / "synth"))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--out", str(run), "--set",
                 "train.max_steps_per_epoch=2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["step"] == 2 and "AP" in summary["metrics"]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train and {"heatmap", "offset"} <= set(train[0])
    from bupose.models import load_checkpoint

    model = load_checkpoint(run / "best.pt")
    assert tuple(model.meta.input_size) == (64, 48) and model.meta.test["locref_stdev"] == 1.0
