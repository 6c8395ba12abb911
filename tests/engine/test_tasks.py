"""AETask: the HAE recipes train with the mmpose (HAE) augmentation, and validation / checkpoint
test settings come from one place (``eval_settings``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bupose.config import load_config
from bupose.engine.tasks import AETask, eval_settings
from bupose.models import create_model
from bupose.structures.spec import COCO17

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_hae_recipes_use_the_hae_augmentation(path):
    cfg = load_config(path)
    if cfg.method != "ae":
        return
    hae = cfg.loss.tag_loss == "hae"
    assert cfg.data.augment == ("mmpose" if hae else "higherhrnet"), path


def test_train_dataset_gets_the_augmentation_style(make_config):
    from bupose.engine.synthetic import resolve_synthetic

    cfg = resolve_synthetic(make_config(data={"augment": "mmpose"}))
    dataset = AETask().build_train_dataset(cfg, COCO17, create_model("higherhrnet_tiny"))
    assert dataset.augment.style == "mmpose"


def test_eval_settings_match_the_recipe_by_name(make_config):
    cfg = make_config(eval={"decoder": "hae", "max_people": 7, "nms_kernel": 3, "flip": False,
                            "scales": [1.0, 2.0], "tag_threshold": 0.5})
    s = eval_settings(cfg)
    assert (s.decoder, s.input_size, s.flip, s.scales) == ("hae", 64, False, (1.0, 2.0))
    g = s.grouping
    assert (g.max_people, g.top_k, g.nms_kernel, g.tag_threshold) == (7, 7, 3, 0.5)
    assert (g.detection_threshold, g.adjust, g.refine) == (0.1, True, True)
