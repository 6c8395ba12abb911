"""SimplePose V2 quick-start benchmark: train ``configs/quickstart_simplepose_synth.yaml`` (the
small hourglass ``simplepose_hg_small`` on built-in synthetic crowds) on this machine and record
the validation AP against wall-clock time.

    python benchmarks/quickstart_simplepose.py [--out runs/quickstart_simplepose_bench]
        [--set key=value ...]

The run validates on the held-out synthetic set every ``train.val_every`` epochs with the
official test path (``OffsetPredictor``: flip fusion, greedy offset-guided grouping); the table
(one row per validation: minutes since the start, training-only estimate, epoch, optimiser step,
AP, AP50, AP75) is printed and written to ``OUT/quickstart_simplepose.md``. Minutes include
generating the synthetic sets when they are not cached yet, and every validation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from quickstart import table  # noqa: E402  (same table as the AE quick start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config",
                        default=str(ROOT / "configs" / "quickstart_simplepose_synth.yaml"))
    parser.add_argument("--out", default="runs/quickstart_simplepose_bench", help="run directory")
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
        if cfg.method != "offsets":
            parser.error(f"{args.config} is a {cfg.method!r} recipe, not 'offsets'")
        fit(cfg, args.out)
    records = read_log(Path(args.out) / "log.jsonl")
    total_min = (time.monotonic() - start) / 60
    if args.report_only:
        total_min = max((r.get("elapsed_s", 0.0) for r in records), default=0.0) / 60
    text = table(records, total_min)
    print(text)
    best = max((r.get("AP", -1.0) for r in records if r["kind"] == "val"), default=-1.0)
    print(json.dumps({"best_ap": best, "minutes": round(total_min, 2)}))
    atomic_write_bytes(Path(args.out) / "quickstart_simplepose.md", (text + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
