"""Grouping study on synthetic crowds: associative embedding (AE) against hierarchical AE (HAE),
for the training loss, the decoder, and both, with the same backbone and training budget.

    python benchmarks/grouping_study.py [--out runs/grouping_study] [--epochs 6] [--set k=v ...]

Two models are trained from the quick-start recipe (tiny HigherHRNet) on one synthetic crowd set:
one with the AE loss (HigherHRNet, ALGORITHMS.md §2.3) and one with the HAE loss (§3.4). Each is
decoded with the fixed-order AE grouping (§2.5) and with HAE's progressive decoding (§3.7), on
three held-out sets of increasing crowding:

    easy: 1-3 people, little overlap;  medium: 3-6 people;  hard: 5-9 people, heavy overlap.

The table (COCO AP per set, and the sets' mean CrowdPose crowd index) is printed and written to
``OUT/grouping_study.md``. Later grouping methods (SimplePose offsets) add rows here.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# (people range, crowding, occluders) per difficulty; train covers the whole range.
SETS: dict[str, tuple[tuple[int, int], float, float]] = {
    "easy": ((1, 3), 0.1, 0.1),
    "medium": ((3, 6), 0.5, 0.3),
    "hard": ((5, 9), 0.9, 0.4),
}
TRAIN_SET = ((1, 8), 0.6, 0.3)
PERSON_SCALE = (0.5, 0.95)  # person height / image height
VARIANTS = (("ae", "ae"), ("ae", "hae"), ("hae", "ae"), ("hae", "hae"))


def make_sets(root: Path, size: int, n_train: int, n_val: int, seed: int) -> None:
    """Write (once) the training set and the three validation sets under ``root``."""
    from bupose.data.synth import SceneConfig, dataset_paths, write_synth

    specs = {"train": TRAIN_SET, **SETS}
    for i, (split, (people, crowding, occluders)) in enumerate(specs.items()):
        scene = SceneConfig(size=(size, size), people=people, scale=PERSON_SCALE,
                            crowding=crowding, occluders=occluders)
        ann, _ = dataset_paths(root, split)
        if not ann.is_file():
            n = n_train if split == "train" else n_val
            write_synth(root, n, seed + 1000 * i, scene, split=split, progress=True)


def mean_crowd_index(ann_file: Path) -> float:
    from bupose.utils.io import read_json

    images = read_json(ann_file)["images"]
    return sum(im.get("crowdIndex", 0.0) for im in images) / max(1, len(images))


def train(cfg: Any, out: Path) -> Any:
    """Train (or reuse a finished run in ``out``) and return the model of its last.pt."""
    from bupose.engine.checkpoint import LAST_NAME
    from bupose.engine.train import fit
    from bupose.models.checkpoint import load_checkpoint

    if not (out / LAST_NAME).is_file():
        fit(cfg, out)
    return load_checkpoint(out / LAST_NAME)


def evaluate(model: Any, cfg: Any, root: Path, split: str, decoder: str) -> float:
    from dataclasses import replace

    from bupose.data.synth import dataset_paths
    from bupose.engine.evaluate import validate
    from bupose.engine.tasks import get_task
    from bupose.structures.spec import load_spec

    ann, images = dataset_paths(root, split)
    data = replace(cfg.data, val_ann=str(ann), val_images=str(images))
    cfg = replace(cfg, data=data, eval=replace(cfg.eval, decoder=decoder))
    task, spec = get_task(cfg.method), load_spec(cfg.data.spec)
    metrics = validate(model, task, cfg, spec, task.build_val_reader(cfg, spec))
    return float(metrics["AP"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/grouping_study")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per model")
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="override of the quick-start recipe")
    args = parser.parse_args(argv)

    from bupose.config import apply_overrides, load_config
    from bupose.data.synth import dataset_paths
    from bupose.utils.io import atomic_write_bytes

    out = Path(args.out)
    base = load_config(ROOT / "configs" / "quickstart_synth.yaml")
    base = apply_overrides(base, ["data.synth.enabled=false", f"train.epochs={args.epochs}",
                                  "train.val_every=0", *args.overrides])
    root = out / "data"
    make_sets(root, base.data.synth.size[0], args.train_images, args.val_images, seed=7)
    train_ann, train_images = dataset_paths(root, "train")
    start = time.monotonic()
    rows = []
    for loss in ("ae", "hae"):
        cfg = apply_overrides(base, [f"data.train_ann={train_ann}",
                                     f"data.train_images={train_images}",
                                     f"loss.tag_loss={loss}"])
        model = train(cfg, out / f"loss_{loss}")
        for loss_name, decoder in VARIANTS:
            if loss_name == loss:
                aps = [evaluate(model, cfg, root, split, decoder) for split in SETS]
                rows.append((loss, decoder, aps))
    ci = [mean_crowd_index(dataset_paths(root, split)[0]) for split in SETS]
    lines = ["| training loss | decoder | " + " | ".join(f"AP {s}" for s in SETS) + " |",
             "|---|---|" + "---:|" * len(SETS)]
    lines += [f"| {loss} | {dec} | " + " | ".join(f"{ap:.3f}" for ap in aps) + " |"
              for loss, dec, aps in rows]
    lines += ["", "mean crowd index: " + ", ".join(f"{s} {c:.2f}" for s, c in zip(SETS, ci)),
              f"{args.epochs} epochs of {args.train_images} images per model; "
              f"{(time.monotonic() - start) / 60:.1f} min in all."]
    text = "\n".join(lines)
    print(text)
    atomic_write_bytes(out / "grouping_study.md", (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
