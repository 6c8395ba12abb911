"""Inference throughput of one AE-family model: PyTorch vs its ONNX export (onnxruntime), one
image at a time vs ``--batch``, and the maximum pose difference between the backends.

    python benchmarks/bench_backends.py --model higherhrnet_tiny            # random weights
    python benchmarks/bench_backends.py --checkpoint ckpt.pth [--official-config yaml]
    python benchmarks/bench_backends.py ... --images DIR --threads 1 --repeat 8 --batch 4

The images (default: the COCO sample images of ../shared/data/samples/coco) are run through the
full test pipeline (the model's test settings, flip test included), timed over ``--repeat``
passes after one warm-up pass; batches group images of equal network input size
(``bupose.inference.batching``). Prints a markdown table (images/s).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "coco"


def _throughput(predictor, images: list[np.ndarray], batch: int, repeat: int) -> float:
    from bupose.inference.batching import batch_key, batch_maps, group_batches

    def one_pass() -> None:
        items = list(enumerate(images))
        for group in group_batches(items, lambda it: batch_key(predictor, it[1]), batch):
            for maps in batch_maps(predictor, [im for _, im in group]):
                predictor.decode(maps)

    one_pass()
    start = time.perf_counter()
    for _ in range(repeat):
        one_pass()
    return repeat * len(images) / (time.perf_counter() - start)


def _max_pose_diff(a, b, images: list[np.ndarray]) -> float:
    worst = 0.0
    for image in images:
        pa, pb = a(image), b(image)
        if len(pa) != len(pb):
            return float("inf")
        if len(pa):
            worst = max(worst, float(np.abs(pa.keypoints - pb.keypoints).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    from bupose.cli.common import add_model_args, model_from_args
    from bupose.export import export_model
    from bupose.inference.onnx_backend import load_exported
    from bupose.inference.predictor import Predictor
    from bupose.utils.io import read_image
    from bupose.utils.threads import quiet_numba_threads

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(parser)
    parser.add_argument("--images", type=Path, default=SAMPLES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet_numba_threads()
    model = model_from_args(args).eval()
    paths = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    images = [read_image(p) for p in paths]
    with tempfile.TemporaryDirectory() as tmp:
        exported = load_exported(export_model(model, Path(tmp) / "m.onnx", "onnx",
                                              dynamic=True), threads=args.threads)
        spec = model.meta.spec
        backends = {"PyTorch": Predictor(model, spec), "ONNX Runtime": Predictor(exported, spec)}
        print(f"{model.meta.name}, {len(images)} images, {args.threads} thread(s), flip "
              f"{backends['PyTorch'].flip}, input {backends['PyTorch'].input_size}\n")
        print(f"| backend | 1 at a time (img/s) | batch {args.batch} (img/s) |")
        print("|---|---|---|")
        for name, predictor in backends.items():
            single = _throughput(predictor, images, 1, args.repeat)
            batched = _throughput(predictor, images, args.batch, args.repeat)
            print(f"| {name} | {single:.2f} | {batched:.2f} |")
        diff = _max_pose_diff(backends["PyTorch"], backends["ONNX Runtime"], images)
    print(f"\nmax |keypoint difference| PyTorch vs ONNX Runtime: {diff:.2g} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
