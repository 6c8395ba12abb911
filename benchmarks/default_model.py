"""Make the default model shipped in the package from a finished quick-start run, and measure it.

    bupose train configs/quickstart_synth.yaml --out runs/default_model     # ~17 min, 2 cores
    python benchmarks/default_model.py --run runs/default_model             # this script

Writes ``bupose/resources/default_model.safetensors`` (fp32 weights + the recipe's test settings:
input 128, flip, AE decoding; ``save_checkpoint``) and ``bupose/resources/default_model.json``
(provenance: recipe, seed, command, the run's validation APs, and the AP on a held-out synthetic
set drawn like the training data from another seed: ``bupose.hub.HELDOUT_SEED``).
``tests/test_default_model.py`` re-measures that held-out AP.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
HELDOUT_IMAGES = 100


def heldout_ap(model: Any, folder: Path, images: int = HELDOUT_IMAGES) -> dict[str, float]:
    """COCO AP of ``model`` (its recorded test settings) on ``images`` held-out synthetic
    figures generated into ``folder``."""
    from bupose.data.synth import SceneConfig, write_synth
    from bupose.evaluation import evaluate_keypoints
    from bupose.hub import DEFAULT_SCENE, HELDOUT_SEED
    from bupose.inference.predictor import Predictor
    from bupose.utils.io import read_image, read_json

    ann = write_synth(folder, images, HELDOUT_SEED, SceneConfig(**DEFAULT_SCENE))
    data = read_json(ann)
    predictor = Predictor(model)
    entries: list[dict[str, Any]] = []
    with torch.inference_mode():
        for info in data["images"]:
            poses = predictor(read_image(ann.parent / "images" / info["file_name"]))
            entries += poses.to_coco(info["id"])
    return dict(evaluate_keypoints(entries, data, kind="coco"))


def _validation_aps(run: Path) -> list[dict[str, float]]:
    """epoch (1-based), step and AP / AP50 / AP75 of every validation of the run."""
    rows = []
    for line in (run / "log.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("kind") == "val":
            rows.append({"epoch": row["epoch"] + 1, "step": row["step"],
                         **{k: round(row[k], 4) for k in ("AP", "AP50", "AP75")}})
    return rows


def main(argv: list[str] | None = None) -> int:
    from bupose.config import load_config
    from bupose.engine.tasks import eval_settings
    from bupose.hub import DEFAULT_SCENE, HELDOUT_SEED
    from bupose.models.checkpoint import load_checkpoint, save_checkpoint
    from bupose.utils.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="the quick-start run folder")
    p.add_argument("--checkpoint", default="best.pt", help="file in the run (default best.pt)")
    p.add_argument("--out", type=Path, default=ROOT / "bupose" / "resources")
    p.add_argument("--heldout-dir", type=Path, default=Path("/tmp/bupose_heldout"))
    p.add_argument("--images", type=int, default=HELDOUT_IMAGES, help="held-out images")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    cfg = load_config(args.run / "config.yaml")
    model = load_checkpoint(args.run / args.checkpoint)
    settings = eval_settings(cfg)
    from dataclasses import replace

    model.meta = replace(model.meta, input_size=settings.input_size, test=settings.to_meta())
    weights = save_checkpoint(args.out / "default_model.safetensors", model)
    shipped = load_checkpoint(weights)
    stats = heldout_ap(shipped, args.heldout_dir, args.images)
    snapshot = torch.load(args.run / args.checkpoint, map_location="cpu", weights_only=False)
    run_ap = (snapshot.get("metrics") or {}).get("AP")
    validations = _validation_aps(args.run)
    chosen = [v for v in validations if run_ap is not None and abs(v["AP"] - run_ap) < 1e-4]
    note = {
        "what": "bupose's default model: tiny HigherHRNet (higherhrnet_tiny, 1.7 M parameters) "
                "trained on bupose's built-in synthetic figures only (not on real photos)",
        "recipe": "configs/quickstart_synth.yaml",
        "seed": cfg.train.seed,
        "command": "bupose train configs/quickstart_synth.yaml --out runs/default_model && "
                   "python benchmarks/default_model.py --run runs/default_model",
        "checkpoint": {"file": args.checkpoint, "validation_AP": run_ap,
                       "epoch": chosen[-1]["epoch"] if chosen else None},
        "validation": validations,
        "run_finished": bool(validations) and validations[-1]["epoch"] >= cfg.train.epochs,
        "heldout": {"images": args.images, "scene": DEFAULT_SCENE, "seed": HELDOUT_SEED,
                    "settings": settings.to_meta(),
                    "input_size": settings.input_size, "coco": stats},
        "file": {"name": weights.name, "bytes": weights.stat().st_size,
                 "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()},
    }
    atomic_write_json(args.out / "default_model.json", note, indent=1)
    print(json.dumps({"heldout_AP": stats["AP"], "bytes": weights.stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
