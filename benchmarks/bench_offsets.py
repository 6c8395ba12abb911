"""Decoding speed: the official OffsetGuided ``PostProcess.generate_poses`` vs
``bupose.decoders.offsets.decode_offsets`` (what ``bupose decode --decoder offsets`` runs).

Both decode the fixtures' structured maps (../shared/fixtures/official_offsetguided/decoding:
17 heatmaps + 38 offset maps at stride 4 of a 640x640 input, 2 to 29 people from real
annotations) in one process, with the README evaluation flags (thre-hmp 0.04, topk 32,
dist-max 40, person-thre 0.04, no flip: the maps are already fused). The official side needs a
local checkout of hellojialee/OffsetGuided (imported at run time, never copied):

    git clone https://github.com/hellojialee/OffsetGuided /tmp/og
    python benchmarks/bench_offsets.py --official /tmp/og
    python benchmarks/bench_offsets.py            # bupose only

The official ``topK_channel`` is wrapped so that the row is the integer division of the index,
as on the torch 1.3.1 the reference pins (fixtures README, quirk 1); it builds its own
``multiprocessing.Pool`` for the grouping, as in ``evaluate.py`` (batch size 1). Times are the
minimum wall time of ``--repeat`` interleaved runs (bupose also as process CPU time, which a
busy machine disturbs less; the official grouping runs in a worker process). "identical": same
people, joint ids and coordinates, heatmap values and limb scores within 1e-6. The last lines
fit time = a + b * people for both sides (growth with the number of people).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from bupose.decoders.offsets import OffsetParams, decode_offsets

DEFAULT_FIXTURES = (
    Path(__file__).resolve().parents[1].parent
    / "shared" / "fixtures" / "official_offsetguided" / "decoding"
)
CASES = ("coco_40083", "coco_196141", "coco_197388", "mini_217285_13p", "crowd_composite")


def official_decoder(checkout: Path) -> Any | None:
    """The official PostProcess with the README evaluation flags, or None when unavailable."""
    if not (checkout / "decoder" / "factory.py").is_file():
        print(f"official side skipped: {checkout}/decoder/factory.py not found", file=sys.stderr)
        return None
    sys.path.insert(0, str(checkout))
    try:
        import decoder  # type: ignore[import-not-found]
        from decoder import heatmap  # type: ignore[import-not-found]
    except ImportError as exc:
        print(f"official side skipped: cannot import {checkout}/decoder: {exc}", file=sys.stderr)
        return None
    true_division = heatmap.topK_channel

    def integer_rows(scores: torch.Tensor, K: int = 40) -> tuple:  # noqa: N803 (official name)
        values, inds, _, xs = true_division(scores, K)
        return values, inds, torch.div(inds, scores.shape[-1], rounding_mode="trunc"), xs

    heatmap.topK_channel = integer_rows
    flags = SimpleNamespace(
        headnets=["hmp", "omp"], strides=[4, 4], topk=32, thre_hmp=0.04, min_len=0.5,
        include_jitter_offset=False, include_scale=False, use_jitter_offset=True,
        person_thre=0.04, sort_dim=2, dist_max=40.0, use_scale=True, batch_size=1,
        resize_mode="bicubic", feat_stage=-1,
    )
    return decoder.decoder_factory(flags)


def identical(ours: np.ndarray, ref: np.ndarray) -> bool:
    if ours.shape != ref.shape:
        return False
    exact = [0, 1, 3, 5]
    return bool(np.array_equal(ours[..., exact], ref[..., exact])
                and np.allclose(ours[..., [2, 4]], ref[..., [2, 4]], atol=1e-6, rtol=0))


def time_case(path: Path, official: Any, repeat: int) -> dict[str, Any]:
    with np.load(path) as z:
        heatmaps, offsets = z["heatmaps"], z["offsets"]
        people = len(z["gt_keypoints"])
    params = OffsetParams()
    ours_t, ours_cpu, ref_t, ours, ref = [], [], [], None, None
    features = ((([torch.from_numpy(heatmaps)], None, [None])),
                (([torch.from_numpy(offsets)], None, [None])))
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        ours = decode_offsets(heatmaps[0], offsets[0], params).poses
        ours_t.append(time.perf_counter() - t0)
        ours_cpu.append(time.process_time() - c0)
        if official is not None:
            t0 = time.perf_counter()
            ref = official.generate_poses(features, flip_test=False)[0]
            ref_t.append(time.perf_counter() - t0)
    row = {"case": path.stem, "people": people, "found": len(ours), "ours": min(ours_t),
           "cpu": min(ours_cpu)}
    if official is not None:
        row.update(official=min(ref_t), same=identical(ours, ref))
    return row


def growth(rows: list[dict[str, Any]], key: str) -> str:
    slope, intercept = np.polyfit([r["people"] for r in rows], [r[key] for r in rows], 1)
    return f"{intercept * 1e3:.1f} ms + {slope * 1e3:.2f} ms/person"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--official", type=Path, default=None, help="OffsetGuided checkout")
    p.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2 cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    official = official_decoder(args.official) if args.official else None
    rows = [time_case(args.fixtures / f"{c}.npz", official, args.repeat) for c in CASES]
    print("| case | GT people | people found | official (ms) | bupose (ms) | bupose CPU (ms) "
          "| speed-up | identical |\n|---|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        ref = f"{r['official'] * 1e3:.1f}" if official is not None else "-"
        ratio = f"{r['official'] / r['ours']:.1f}x" if official is not None else "-"
        same = ("yes" if r["same"] else "NO") if official is not None else "-"
        print(f"| {r['case']} | {r['people']} | {r['found']} | {ref} | {r['ours'] * 1e3:.1f} "
              f"| {r['cpu'] * 1e3:.1f} | {ratio} | {same} |")
    print(f"\nbupose: {growth(rows, 'ours')}")
    if official is not None:
        print(f"official: {growth(rows, 'official')}")
        if hasattr(official, "worker_pool"):
            official.worker_pool.close()
    return 0 if official is None or all(r["same"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
