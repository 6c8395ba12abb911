"""Training step, HigherHRNet-W32-512: the official trainer vs bupose, same weights, same process.

A step is what one process does per batch: targets (heatmaps at 1/4 and 1/2 of the input, tag
indices; the official ``HeatmapGenerator`` / ``JointsGenerator`` vs ``encode_ae_targets``) for
``--batch`` images of random people (``--people`` each), then forward, the loss (official
``MultiLossFactory`` with the W32-512 YAML's factors vs ``PoseLoss``), backward and an Adam update
(the YAML's optimiser). Medians over ``--repeat`` steps after one warm-up, the sides in turn
(official, bupose, official, bupose, ...: a drift of the machine's speed slows both alike).
bupose is timed in fp32 and, with ``--bf16``, under bf16 autocast (the engine's ``train.amp``).

The loader line: the time ``AETrainDataset`` (read, augment, encode; one process) takes to
produce one batch of the COCO sample images, against the step time: with ``data.workers`` >= 1
the loader runs beside the step, so it is not the bottleneck while its batch time is below the
step's.

    python benchmarks/bench_train.py --official /tmp/hhr [--batch 12] [--repeat 2] [--bf16]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_e2e import SAMPLES, add_common_args, load_official, run_and_report  # noqa: E402

MAP_SIZES = (128, 256)


def random_people(rng: np.random.Generator, n: int, size: int = 512) -> np.ndarray:
    """(n, 17, 3) [x, y, v] input pixels: people of random size with ~80% labelled joints."""
    centres = rng.uniform(0.15 * size, 0.85 * size, (n, 1, 2))
    spread = rng.uniform(0.03 * size, 0.15 * size, (n, 1, 1))
    xy = centres + rng.normal(0, 1, (n, 17, 2)) * spread
    v = (rng.random((n, 17, 1)) < 0.8).astype(np.float64) * 2
    return np.concatenate([np.clip(xy, 0, size - 1), v], axis=2).astype(np.float32)


def bupose_targets(people: list[np.ndarray]) -> dict[str, Any]:
    from bupose.data.targets import encode_ae_targets

    items = []
    for kps in people:
        per_res = [np.concatenate([kps[..., :2] * (s / 512), kps[..., 2:]], -1) for s in MAP_SIZES]
        masks = [np.ones((s, s), np.float32) for s in MAP_SIZES]
        items.append(encode_ae_targets(per_res, masks))
    return {"heatmaps": [torch.from_numpy(np.stack([t.heatmaps[r] for t in items]))
                         for r in range(len(MAP_SIZES))],
            "masks": [torch.from_numpy(np.stack([t.masks[r] for t in items]))
                      for r in range(len(MAP_SIZES))],
            "tag_indices": torch.from_numpy(np.stack([t.tag_indices for t in items]))}


def official_targets(official: Any, people: list[np.ndarray]) -> tuple[list[Any], ...]:
    from dataset.target_generators import (  # type: ignore[import-not-found]
        HeatmapGenerator,
        JointsGenerator,
    )

    heat, masks, joints = [], [], []
    for s in MAP_SIZES:
        heatmap_gen = HeatmapGenerator(s, 17, 2)
        joints_gen = JointsGenerator(30, 17, s, True)
        rows = [np.concatenate([k[..., :2] * (s / 512), k[..., 2:]], -1) for k in people]
        heat.append(torch.from_numpy(np.stack([heatmap_gen(r) for r in rows])))
        masks.append(torch.ones(len(people), s, s))
        joints.append(torch.from_numpy(np.stack([joints_gen(r).astype(np.int32) for r in rows])))
    return heat, masks, joints


def official_step(official: Any, net: torch.nn.Module, loss: Any, optimizer: Any,
                  images: torch.Tensor, people: list[np.ndarray]) -> None:
    """``core/trainer.py:do_train``'s step body (targets made here instead of in the loader)."""
    heatmaps, masks, joints = official_targets(official, people)
    outputs = net(images)
    heat_losses, push_losses, pull_losses = loss(outputs, heatmaps, masks, joints)
    total = 0
    for terms in (heat_losses, push_losses, pull_losses):
        total = total + sum(t.mean(dim=0) for t in terms if t is not None)
    optimizer.zero_grad()
    total.backward()
    optimizer.step()


def bupose_step(model: torch.nn.Module, loss: Any, optimizer: Any, images: torch.Tensor,
                people: list[np.ndarray], dtype: torch.dtype | None) -> None:
    from bupose.engine.step import train_step

    batch = {"image": images, **bupose_targets(people)}
    train_step(model, loss, [batch], optimizer, None, dtype, step=0)


def median_of(fn: Callable[[], object], repeat: int) -> float:
    """Median of ``repeat`` timed calls after one warm-up."""
    from bupose.bench.measure import median_seconds

    return median_seconds(fn, repeat, 1)


def loader_batch_seconds(batch: int, repeat: int) -> float:
    """One process producing a batch of augmented 512-px COCO sample images with targets."""
    from bupose.data.ae_dataset import AETrainDataset
    from bupose.data.coco import CocoKeypoints
    from bupose.structures.spec import get_spec

    spec = get_spec("coco17")
    reader = CocoKeypoints(SAMPLES / "test_coco.json", SAMPLES, spec, train_filter=True)
    dataset = AETrainDataset(reader, spec, 512, MAP_SIZES, seed=0)
    return median_of(lambda: [dataset[i % len(dataset)] for i in range(batch)], repeat)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench_e2e import official_model

    from bupose.bench.measure import interleaved_medians
    from bupose.losses import PoseLoss

    official = load_official(args.official)
    torch.manual_seed(0)
    from bupose.models import create_model

    model = create_model("higherhrnet_w32_512").train()
    net = official_model(official, model).train()
    rng = np.random.default_rng(0)
    people = [random_people(rng, args.people) for _ in range(args.batch)]
    images = torch.randn(args.batch, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    official_loss = _official_loss(args.official)(official.cfg)
    ours_loss = PoseLoss(model.output_layout)
    lr = float(official.cfg.TRAIN.LR)
    opt_official = torch.optim.Adam(net.parameters(), lr=lr)
    opt_ours = torch.optim.Adam(model.parameters(), lr=lr)
    steps = {"official": lambda: official_step(official, net, official_loss, opt_official,
                                               images, people),
             "bupose fp32": lambda: bupose_step(model, ours_loss, opt_ours, images, people, None)}
    if args.bf16:
        steps["bupose bf16 autocast"] = lambda: bupose_step(model, ours_loss, opt_ours, images,
                                                            people, torch.bfloat16)
    seconds = interleaved_medians(steps, args.repeat)
    targets = {"official": median_of(lambda: official_targets(official, people), args.repeat),
               "bupose": median_of(lambda: bupose_targets(people), args.repeat)}
    return {"batch": args.batch, "people": args.people, "threads": torch.get_num_threads(),
            "step_seconds": seconds, "target_seconds": targets,
            "loader_batch_seconds": loader_batch_seconds(args.batch, args.repeat)}


def _official_loss(checkout: Path) -> Any:
    from core.loss import MultiLossFactory  # type: ignore[import-not-found]

    return MultiLossFactory


def table(r: dict[str, Any]) -> str:
    official = r["step_seconds"]["official"]
    lines = [f"Training step, W32-512, batch {r['batch']} ({r['people']} people per image), "
             f"{r['threads']} threads, malloc {r.get('malloc', 'default')}, median", "",
             "| side | s / step | speed-up |", "|---|---|---|"]
    lines += [f"| {name} | {s:.2f} | {official / s:.2f}x |"
              for name, s in r["step_seconds"].items()]
    t = r["target_seconds"]
    lines += ["", f"targets per batch: official {t['official'] * 1e3:.0f} ms, bupose "
              f"{t['bupose'] * 1e3:.0f} ms ({t['official'] / t['bupose']:.1f}x); loader (one "
              f"process) {r['loader_batch_seconds']:.2f} s per batch = "
              f"{r['loader_batch_seconds'] / r['step_seconds']['bupose fp32']:.2f} of a step"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="HigherHRNet checkout")
    ap.add_argument("--batch", type=int, default=12, help="images per step (official: 12)")
    ap.add_argument("--people", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="also bupose under bf16 autocast")
    add_common_args(ap)
    run_and_report(ap.parse_args(), run, table)


if __name__ == "__main__":
    main()
