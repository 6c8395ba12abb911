"""Top-down (CAL) throughput: person crops per second through ``TopDownPredictor``.

Random-weight CAL HRNets (``--models``, default W32-64x48 and W32-128x96) on the real COCO sample
images with the real detection boxes (../shared/data/samples/coco, the first ``--boxes`` of
``test_coco_det_AP_H_56.json``). One timed run = every image as ``bupose infer`` runs it: UDP
crops, normalisation, forward (``--batch`` crops per pass, consecutive images sharing passes, or
one crop per forward pass), flip fusion, argmax + offset read-out,
back-projection, rescoring and OKS-NMS. All configurations are measured side by side in one
process, interleaved, ``--repeat`` times; the table gives the median.

    OMP_NUM_THREADS=1 python benchmarks/bench_topdown.py
    python benchmarks/bench_topdown.py --threads 2 --boxes 64 --repeat 5

"crops/s" counts person boxes (with flip each box costs two crops' forward passes).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bupose.cli.infer_topdown import detection_boxes
from bupose.inference.topdown import TopDownPredictor
from bupose.models import create_model
from bupose.utils.io import read_image

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "samples" / "coco"


def load_work(samples: Path, max_boxes: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """[(image, boxes (n, 4), scores (n,))] with the first ``max_boxes`` detections."""
    dets = detection_boxes(samples / "test_coco_det_AP_H_56.json", 0.0)
    work, left = [], max_boxes
    for image_id, (boxes, scores) in dets.items():
        if left <= 0:
            break
        image = read_image(samples / f"{image_id:012d}.jpg")
        work.append((image, boxes[:left], scores[:left]))
        left -= len(boxes[:left])
    return work


def timed_run(predictor: TopDownPredictor, work: list) -> float:
    """Seconds for all images, as ``bupose infer`` runs them (``maps_stream``: crops of
    consecutive images share forward passes; decoding per image)."""
    start = time.perf_counter()
    items = ((i, image, *predictor.boxes_to_center_scale(boxes), scores, i)
             for i, (image, boxes, scores) in enumerate(work))
    for _, maps in predictor.maps_stream(items):
        predictor.decode(maps)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="cal_hrnet_w32_64x48,cal_hrnet_w32_128x96")
    parser.add_argument("--boxes", type=int, default=32, help="detection boxes per run")
    parser.add_argument("--batch", type=int, default=32, help="crops per forward (batched)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = load_work(args.samples, args.boxes)
    n = sum(len(b) for _, b, _ in work)
    configs = [(name, flip, batch) for name in args.models.split(",")
               for flip in (True, False) for batch in (args.batch, 1)]
    predictors = {}
    for name in args.models.split(","):
        torch.manual_seed(0)
        predictors[name] = create_model(name).eval()
    times: dict[tuple, list[float]] = {c: [] for c in configs}
    with torch.inference_mode():
        for name, flip, batch in configs:  # warm-up
            timed_run(TopDownPredictor(predictors[name], predictors[name].meta.spec, flip=flip,
                                       batch_size=batch), work[:1])
        for _ in range(args.repeat):
            for name, flip, batch in configs:
                predictor = TopDownPredictor(predictors[name], predictors[name].meta.spec,
                                             flip=flip, batch_size=batch)
                times[(name, flip, batch)].append(timed_run(predictor, work))
    print(f"{n} boxes on {len(work)} images, torch threads {args.threads}, "
          f"median of {args.repeat}, random weights\n")
    print("| model | input | flip | crops/s batched (batch " f"{args.batch}) "
          "| crops/s one at a time | speed-up |")
    print("|---|---|---|---:|---:|---:|")
    for name in args.models.split(","):
        size = "x".join(map(str, predictors[name].meta.input_size))
        for flip in (True, False):
            fast = n / statistics.median(times[(name, flip, args.batch)])
            slow = n / statistics.median(times[(name, flip, 1)])
            print(f"| {name} | {size} | {'yes' if flip else 'no'} | {fast:.1f} | {slow:.1f} "
                  f"| {fast / slow:.2f}x |")


if __name__ == "__main__":
    main()
