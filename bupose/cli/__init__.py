"""The ``bupose`` command: argparse subcommands, one module each under ``bupose.cli``.

Each subcommand module provides ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a ``run(args) -> int`` function. Expected mistakes (BuposeError) are printed without a
traceback and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bupose.errors import BuposeError

# Subcommand modules, in the order `bupose --help` lists them.
COMMANDS: tuple[str, ...] = ("data", "eval", "infer", "decode", "train", "plot", "demo", "models",
                             "download", "export")


def build_parser() -> argparse.ArgumentParser:
    from bupose import __version__

    parser = argparse.ArgumentParser(
        prog="bupose",
        description="Bottom-up multi-person human pose estimation.",
    )
    parser.add_argument("--version", action="version", version=f"bupose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"bupose.cli.{name}_cmd").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BuposeError as e:
        print(f"bupose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
