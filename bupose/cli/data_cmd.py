"""``bupose data``: built-in synthetic crowds (``synth``) and annotation counts (``stats``)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from bupose.data.synth import SceneConfig, format_stats, keypoint_stats, write_synth
from bupose.utils.io import read_json


def _pair(convert: Callable[[str], Any], what: str) -> Callable[[str], tuple[Any, Any]]:
    def parse(text: str) -> tuple[Any, Any]:
        parts = text.split(",")
        try:
            values = tuple(convert(p) for p in parts)
        except ValueError:
            values = ()
        if len(values) == 1:
            values = values * 2
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"{what} must be MIN,MAX (got {text!r})")
        return values

    return parse


def _size(text: str) -> tuple[int, int] | None:
    if text == "random":
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH or 'random' (got {text!r})") from None
    return w, h


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1] (got {text!r})")
    return value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "data", help="built-in synthetic crowds and annotation counts",
        description="Generate the built-in synthetic crowd set, or count a COCO keypoint file.")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    synth = sub.add_parser(
        "synth", help="write a synthetic COCO-17 crowd set (images + annotations.json)",
        description="Procedurally drawn articulated people on the COCO-17 skeleton, with "
                    "occlusion marked v=1 and a CrowdPose crowdIndex per image. One seed gives "
                    "byte-identical files.")
    synth.add_argument("--out", required=True, metavar="DIR", help="output folder")
    synth.add_argument("--images", type=int, default=100, metavar="N", help="number of images")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    synth.add_argument("--people", type=_pair(int, "--people"), default=(1, 8),
                       metavar="MIN,MAX", help="persons per image (default 1,8)")
    synth.add_argument("--size", type=_size, default=(512, 512), metavar="WxH",
                       help="image size, or 'random' for a random aspect (default 512x512)")
    synth.add_argument("--scale", type=_pair(float, "--scale"), default=(0.08, 0.9),
                       metavar="MIN,MAX",
                       help="person height as a fraction of the image height (default 0.08,0.9)")
    synth.add_argument("--crowding", type=_fraction, default=0.3, metavar="F",
                       help="0..1: how much people cluster and overlap (default 0.3)")
    synth.add_argument("--occluders", type=_fraction, default=0.3, metavar="F",
                       help="0..1: amount of occluding objects (default 0.3)")
    synth.add_argument("--split-name", default=None, metavar="NAME",
                       help="write into DIR/NAME/ (images/ and annotations.json) instead of DIR")
    synth.add_argument("--format", choices=("jpg", "png"), default="jpg", help="image format")
    synth.add_argument("--quiet", action="store_true", help="no progress bar or stats")
    synth.set_defaults(func=run_synth)
    stats = sub.add_parser(
        "stats", help="count images, persons, keypoints and crowdIndex buckets of a COCO file",
        description="Counts of a COCO-format keypoint file: images, persons, labelled keypoints "
                    "and, when present, the CrowdPose crowdIndex buckets (easy < 0.2 <= medium "
                    "< 0.8 <= hard).")
    stats.add_argument("file", metavar="FILE.json", help="COCO keypoint annotation file")
    stats.add_argument("--json", action="store_true", help="print the counts as JSON")
    stats.set_defaults(func=run_stats)
    parser.set_defaults(func=lambda args: _no_action(parser))


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_synth(args: argparse.Namespace) -> int:
    cfg = SceneConfig(size=args.size, people=args.people, scale=args.scale,
                      crowding=args.crowding, occluders=args.occluders)
    ann_file = write_synth(args.out, args.images, args.seed, cfg, split=args.split_name,
                           image_format=args.format, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {ann_file}")
        print(format_stats(keypoint_stats(read_json(ann_file, "annotation file"), str(ann_file))))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    stats = keypoint_stats(read_json(args.file, "annotation file"), args.file)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0
