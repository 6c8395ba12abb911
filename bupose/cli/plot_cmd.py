"""``bupose plot RUN_DIR [--out PNG]``: loss and AP curves of a training run."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot",
        help="draw a training run's loss and AP curves to PNG",
        description="Read RUN_DIR/log.jsonl and draw the loss terms and validation AP.",
    )
    p.add_argument("run_dir", help="a run directory written by `bupose train`")
    p.add_argument("--out", help="PNG path (default RUN_DIR/curves.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bupose.engine.plot import plot_run

    print(plot_run(args.run_dir, args.out))
    return 0
