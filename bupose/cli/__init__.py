"""The ``bupose`` command: argparse subcommands, one module each under ``bupose.cli``.

Each subcommand module provides ``add_parser(subparsers)``, which registers its parser and sets
``func`` to a ``run(args) -> int`` function. Expected mistakes (BuposeError) are printed without a
traceback and exit with status 2. Before a command runs, glibc malloc is told to keep freed memory
(``bupose.utils.allocator.tune_malloc``; ``BUPOSE_MALLOC=system`` keeps the defaults).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bupose.errors import BuposeError

# Subcommand modules, in the order `bupose --help` lists them, with the one-line help each
# module's parser registers (a test keeps them equal). Only the chosen command's module is
# imported: `bupose --help` and `bupose models` start without torch, OpenCV or numba.
COMMANDS: tuple[str, ...] = ("data", "eval", "infer", "decode", "train", "plot", "demo", "models",
                             "download", "export", "bench")
SUMMARIES: dict[str, str] = {
    "data": "built-in synthetic crowds and annotation counts",
    "eval": "score a results file: COCO / CrowdPose keypoint AP or MPII PCKh",
    "infer": "detect poses in images (HigherHRNet/HAE test pipeline)",
    "decode": "group saved heatmaps/tags into poses (no network)",
    "train": "train a model from a recipe (configs/*.yaml)",
    "plot": "draw a training run's loss and AP curves to PNG",
    "demo": "run the demonstration on built-in synthetic data",
    "models": "list the registered models (input size, parameters, GFLOPs)",
    "download": "download zoo checkpoints into the cache (resumable, verified)",
    "export": "export the network to ONNX or TorchScript (with a parity check)",
    "bench": "time the forward pass, decoding and whole pipeline; start-up and peak memory",
}


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``bupose`` parser. With ``argv``, only the command it names (its first word) gets its
    full parser and module import; the others are listed by their one-line help. Without,
    every command's parser is built."""
    from bupose import __version__

    parser = argparse.ArgumentParser(
        prog="bupose",
        description="Bottom-up multi-person human pose estimation.",
    )
    parser.add_argument("--version", action="version", version=f"bupose {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for name in COMMANDS:
        if chosen is None or name == chosen:
            importlib.import_module(f"bupose.cli.{name}_cmd").add_parser(sub)
        else:
            sub.add_parser(name, help=SUMMARIES.get(name))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from bupose.utils.allocator import tune_malloc

    tune_malloc()  # large tensors reuse freed heap memory (see bupose.utils.allocator)
    try:
        return int(args.func(args) or 0)
    except BuposeError as e:
        print(f"bupose {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
