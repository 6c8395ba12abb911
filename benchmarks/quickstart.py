"""Quick-start benchmark: train ``configs/quickstart_synth.yaml`` on this machine and record the
validation AP against wall-clock time.

    python benchmarks/quickstart.py [--out runs/quickstart_bench] [--set key=value ...]

The run validates on the held-out synthetic set every ``train.val_every`` epochs; the table (one
row per validation: minutes since the start, epoch, optimiser step, AP, AP50, AP75) is printed
and written to ``OUT/quickstart.md``. Minutes include generating the synthetic sets when they
are not cached yet, and every validation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_AP = 0.5


def machine() -> str:
    import torch

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def table(records: list[dict], total_min: float) -> str:
    """Markdown table of the validation records, with the throughput they were reached at.

    ``est. min`` is the training time at the run's median throughput (no validation, no data
    generation): on a shared machine the wall-clock minutes include other people's load.
    """
    import statistics

    train = [r for r in records if r["kind"] == "train"]
    rate = statistics.median(r["images_per_s"] for r in train) if train else float("nan")
    batch = next((r["global_batch"] for r in records if r["kind"] == "run"), 1)
    lines = ["| minutes | est. min | epoch | step | AP | AP50 | AP75 |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    val = [r for r in records if r["kind"] == "val"]
    for r in val:
        est = r["step"] * batch / rate / 60
        lines.append(f"| {r['elapsed_s'] / 60:.1f} | {est:.1f} | {r['epoch'] + 1} | {r['step']} | "
                     f"{r.get('AP', float('nan')):.3f} | {r.get('AP50', float('nan')):.3f} | "
                     f"{r.get('AP75', float('nan')):.3f} |")
    reached = [r for r in val if r.get("AP", 0.0) >= TARGET_AP]
    verdict = (f"AP >= {TARGET_AP} first reached after {reached[0]['elapsed_s'] / 60:.1f} min"
               if reached else f"AP {TARGET_AP} not reached")
    return "\n".join([*lines, "", f"{verdict}; whole run {total_min:.1f} min; median training "
                      f"throughput {rate:.1f} images/s ({machine()})."])


def main(argv: list[str] | None = None, recipe: str = "quickstart_synth.yaml",
         name: str = "quickstart", description: str | None = None) -> int:
    """Train ``configs/<recipe>`` and write ``OUT/<name>.md`` (the other quick starts reuse it)."""
    parser = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / recipe))
    parser.add_argument("--out", default=f"runs/{name}_bench", help="run directory")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--report-only", action="store_true",
                        help="only rebuild the table from an existing run in --out")
    args = parser.parse_args(argv)

    from bupose.config import apply_overrides, load_config
    from bupose.engine.log import read_log
    from bupose.engine.train import fit
    from bupose.utils.io import atomic_write_bytes

    start = time.monotonic()
    if not args.report_only:
        cfg = apply_overrides(load_config(args.config), args.overrides)
        fit(cfg, args.out)
    records = read_log(Path(args.out) / "log.jsonl")
    total_min = (time.monotonic() - start) / 60
    if args.report_only:  # the last record's time is the best estimate of the run's length
        total_min = max((r.get("elapsed_s", 0.0) for r in records), default=0.0) / 60
    text = table(records, total_min)
    print(text)
    best = max((r.get("AP", -1.0) for r in records if r["kind"] == "val"), default=-1.0)
    print(json.dumps({"best_ap": best, "minutes": round(total_min, 2)}))
    atomic_write_bytes(Path(args.out) / f"{name}.md", (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
