"""``bupose train CONFIG.yaml [--set key=value ...] [--out DIR] [--resume]``.

Under ``torchrun --nproc_per_node N -m bupose train ...`` every process runs this command; they
join one process group (gloo on CPU, NCCL on GPUs) and rank 0 writes the run directory.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bupose.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model from a recipe (configs/*.yaml)",
        description="Train a model from a recipe YAML. Runs under torchrun for several "
        "processes (gloo on CPU, NCCL on GPUs).",
    )
    p.add_argument("config", nargs="?", help="recipe YAML (default with --resume: OUT/config.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=10 (repeatable)")
    p.add_argument("--out", help="run directory (default runs/<config name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out exactly from its last.pt")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bupose.config import apply_overrides, dump_config, load_config

    config = args.config
    if config is None:
        if not (args.resume and args.out):
            raise ConfigError("give a CONFIG.yaml (or --resume --out RUN_DIR)")
        config = Path(args.out) / "config.yaml"
    cfg = apply_overrides(load_config(config), args.overrides)
    if args.print_config:
        print(dump_config(cfg), end="")
        return 0
    out = Path(args.out) if args.out else Path("runs") / Path(config).stem

    from bupose.engine import dist
    from bupose.engine.train import fit

    try:
        summary = fit(cfg, out, resume=args.resume)
    finally:
        dist.cleanup()
    if os.environ.get("RANK", "0") == "0":
        print(json.dumps({"run_dir": str(out), **summary}, default=str))
    return 0
