"""Typed configs: reading, overriding with coercion, errors that name the file and key, YAML
round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from bupose.config import (
    ExperimentCfg,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    save_config,
)
from bupose.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_round_trip_through_yaml(tmp_path: Path) -> None:
    cfg = ExperimentCfg()
    path = save_config(cfg, tmp_path / "c.yaml")
    assert load_config(path) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_partial_file_takes_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 7\noptim:\n  lr: 1e-4\n  lr_steps: [3, 5]\n")
    cfg = load_config(path)
    assert cfg.train.epochs == 7
    assert cfg.optim.lr == pytest.approx(1e-4)  # YAML 1.1 reads "1e-4" as text; coerced
    assert cfg.optim.lr_steps == (3, 5)
    assert cfg.train.batch_size == ExperimentCfg().train.batch_size


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epocs: 3\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(path) in str(e.value) and "train.epocs" in str(e.value)
    assert "epochs" in str(e.value)  # close-match hint


def test_unknown_section_and_wrong_types(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("trian: {}\n")
    with pytest.raises(ConfigError, match="'trian'"):
        load_config(path)
    path.write_text("train:\n  epochs: 2.5\n")
    with pytest.raises(ConfigError, match="train.epochs must be int"):
        load_config(path)
    path.write_text("train:\n  amp: fp8\n")
    with pytest.raises(ConfigError, match="train.amp"):
        load_config(path)


def test_overrides_coerce_to_field_types() -> None:
    cfg = apply_overrides(ExperimentCfg(), [
        "train.epochs=3", "optim.lr=2e-3", "eval.scales=[1, 0.5]", "train.progress=false",
        "data.train_ann=x/1e3.json", "model.kwargs.width=8", "data.synth.size=[64, 64]",
    ])
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.optim.lr == pytest.approx(2e-3)
    assert cfg.eval.scales == (1.0, 0.5)
    assert cfg.train.progress is False
    assert cfg.data.train_ann == "x/1e3.json"  # strings are taken verbatim
    assert cfg.model.kwargs == {"width": 8}
    assert cfg.data.synth.size == (64, 64)


@pytest.mark.parametrize("item, match", [
    ("train.epoch=3", "train.epoch"),
    ("train.epochs", "KEY=VALUE"),
    ("train.epochs.x=1", "no sub-keys"),
    ("loss.hae_weights=[1, 2]", "3 values"),
    ("eval.flip=3", "eval.flip must be bool"),
])
def test_bad_overrides(item: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        apply_overrides(ExperimentCfg(), [item])


def test_dump_is_complete_yaml() -> None:
    text = dump_config(ExperimentCfg())
    for section in ("method:", "model:", "data:", "loss:", "optim:", "train:", "eval:"):
        assert section in text


def test_every_recipe_parses() -> None:
    recipes = sorted(CONFIGS.glob("*.yaml"))
    assert len(recipes) >= 12
    for path in recipes:
        cfg = load_config(path)
        assert cfg.method in ("ae", "cal", "offsets"), path
