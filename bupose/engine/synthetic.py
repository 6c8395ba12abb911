"""Built-in synthetic crowds as a training/validation set: where they live, and making them.

``resolve_synthetic(cfg)`` points the data paths at the generated sets (pure; every rank calls
it); ``ensure_synthetic(data)`` writes them when absent (rank 0 only). A set is complete once its
``annotations.json`` exists (the writer saves it last, atomically).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

from bupose.config import DataCfg, ExperimentCfg, SynthCfg
from bupose.errors import ConfigError

VAL_SEED_OFFSET = 1_000_003  # the validation split is drawn from a different seed stream


def cache_root() -> Path:
    """``$BUPOSE_CACHE`` or ``~/.cache/bupose``."""
    return Path(os.environ.get("BUPOSE_CACHE") or Path.home() / ".cache" / "bupose")


def synth_dir(synth: SynthCfg) -> Path:
    """``synth.dir``, or a cache folder named by a hash of the generator settings."""
    if synth.dir:
        return Path(synth.dir)
    settings = {k: v for k, v in dataclasses.asdict(synth).items() if k not in ("enabled", "dir")}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return cache_root() / f"synth-{key}"


def resolve_synthetic(cfg: ExperimentCfg) -> ExperimentCfg:
    """``cfg`` with the data paths pointing at the synthetic sets (unchanged when disabled)."""
    if not cfg.data.synth.enabled:
        return cfg
    from bupose.data.synth import dataset_paths

    root = synth_dir(cfg.data.synth)
    train_ann, train_images = dataset_paths(root, "train")
    val_ann, val_images = dataset_paths(root, "val")
    data = replace(cfg.data, train_ann=str(train_ann), train_images=str(train_images),
                   val_ann=str(val_ann), val_images=str(val_images))
    return replace(cfg, data=data)


def ensure_synthetic(data: DataCfg, progress: bool = False) -> None:
    """Generate the train and val synthetic sets of ``data.synth`` unless they exist."""
    from bupose.data.synth import SceneConfig, write_synth

    s = data.synth
    if data.spec not in ("coco17", "coco"):
        raise ConfigError(f"synthetic crowds have COCO-17 keypoints; data.spec is {data.spec!r}")
    scene = SceneConfig(size=s.size, people=s.people, scale=s.scale, crowding=s.crowding,
                        occluders=s.occluders)
    root = synth_dir(s)
    for split, n, seed in (("train", s.train_images, s.seed),
                           ("val", s.val_images, s.seed + VAL_SEED_OFFSET)):
        ann = Path(data.train_ann if split == "train" else data.val_ann)
        if not ann.is_file():
            write_synth(root, n, seed, scene, split=split, progress=progress)
