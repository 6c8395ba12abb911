"""``bupose download NAME...``: fetch zoo checkpoints (or URLs) into the cache.

Each NAME is a zoo entry (``bupose models --zoo``; ``zoo:`` prefix optional) or an http(s) URL.
The file is downloaded into ``$BUPOSE_CACHE/checkpoints/NAME/`` (default ``~/.cache/bupose``)
through a ``.part`` file (an interrupted download continues where it stopped, with HTTP Range),
its SHA-256 is checked where known (mmpose file names carry the first 8 hex digits), and only a
verified file gets its final name. HigherHRNet-family entries get their official-format config
beside it. Weights that need a browser (Google Drive) are named with the path to place them at.
Prints the weights' path (and the config's), one per line. Exit status 2 on any failure
(offline, HTTP error, bad hash: the partial file is removed).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "download", help="download zoo checkpoints into the cache (resumable, verified)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="zoo entry (`bupose models --zoo`) or http(s) URL")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bupose.hub import resolve_checkpoint

    for name in args.names:
        remote = name if name.startswith(("zoo:", "http://", "https://")) else f"zoo:{name}"
        found = resolve_checkpoint(remote, progress=not args.quiet)
        print(found.path)
        if found.config is not None:
            print(found.config)
    return 0
