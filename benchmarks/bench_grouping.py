"""Grouping speed: the official HigherHRNet HeatmapParser vs ``bupose.decoders.ae.decode_ae``.

Runs both on the grouping fixtures (synthetic aggregated maps at the 512-input flip-test size,
../shared/fixtures/official_higherhrnet/grouping) in one process and prints a markdown table.

The official side needs a local checkout of HRNet/HigherHRNet-Human-Pose-Estimation (only
``lib/core/group.py`` is imported; it needs ``munkres``: ``pip install -e .[bench]``):

    python benchmarks/bench_grouping.py --official /tmp/hhr
    python benchmarks/bench_grouping.py            # bupose only

bupose is timed with both assignment solvers (median of ``--repeat`` runs each); the official
parser once. "identical" compares ``grouped`` and ``scores`` with the official ones bit for bit,
for scipy / munkres: fixtures that are not solver-independent (``*_ambiguous``, ``crowd40``) have
tied optimal assignments that scipy breaks differently from munkres 1.1.4 ("no" is expected
there), while ``solver="munkres"`` reproduces munkres' tie-breaking (see
``bupose.decoders.grouping``). "speed-up" is official / bupose with munkres, the configuration
whose output is identical on every fixture (with scipy when only scipy is timed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from bupose.decoders.ae import decode_ae
from bupose.decoders.params import GroupingParams
from bupose.structures.spec import get_spec

DEFAULT_FIXTURES = (
    Path(__file__).resolve().parents[1].parent
    / "shared" / "fixtures" / "official_higherhrnet" / "grouping"
)


def official_parser(checkout: Path, num_joints: int) -> object | None:
    """The official HeatmapParser with the w32_512 test settings, or None when unavailable."""
    group_py = checkout / "lib" / "core" / "group.py"
    if not group_py.is_file():
        print(f"official side skipped: {group_py} not found", file=sys.stderr)
        return None
    sys.path.insert(0, str(checkout / "lib"))
    try:
        from core.group import HeatmapParser  # type: ignore[import-not-found]
    except ImportError as exc:  # munkres missing
        print(f"official side skipped: cannot import {group_py}: {exc}", file=sys.stderr)
        return None
    cfg = SimpleNamespace(
        DATASET=SimpleNamespace(NUM_JOINTS=num_joints, MAX_NUM_PEOPLE=30, WITH_CENTER=False),
        TEST=SimpleNamespace(
            DETECTION_THRESHOLD=0.1, TAG_THRESHOLD=1.0, USE_DETECTION_VAL=True,
            IGNORE_TOO_MUCH=False, NMS_KERNEL=5, NMS_PADDING=2, IGNORE_CENTER=True,
        ),
        MODEL=SimpleNamespace(TAG_PER_JOINT=True),
    )
    return HeatmapParser(cfg)


def time_official(parser: object, det: np.ndarray, tag: np.ndarray) -> tuple[float, tuple]:
    det_t, tag_t = torch.from_numpy(det), torch.from_numpy(tag)
    start = time.perf_counter()
    grouped, scores = parser.parse(det_t, tag_t, True, True)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - start
    people = np.array(grouped[0], np.float32).reshape(-1, det.shape[1], tag.shape[-1] + 3)
    return seconds, (people, np.array(scores, np.float32))


def time_bupose(det: np.ndarray, tag: np.ndarray, repeat: int, solver: str
                ) -> tuple[float, tuple]:
    order = get_spec("coco17").joint_order
    params = GroupingParams(solver=solver)
    result = decode_ae(det[0], tag[0], params, order)  # warm-up (imports, allocator)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = decode_ae(det[0], tag[0], params, order)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _same(a: tuple, b: tuple) -> str:
    return "yes" if np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) else "no"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", type=Path, help="checkout of the official HigherHRNet repo")
    ap.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    ap.add_argument("--repeat", type=int, default=5, help="bupose runs per fixture (median)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--only", nargs="*", help="fixture name substrings to run")
    ap.add_argument("--solver", default="both", choices=("both", "scipy", "munkres"),
                    help="bupose assignment solver(s) to time")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    files = sorted(args.fixtures.glob("structured_*.npz"))
    if args.only:
        files = [f for f in files if any(s in f.stem for s in args.only)]
    if not files:
        print(f"no fixtures in {args.fixtures}", file=sys.stderr)
        return 2
    parser = official_parser(args.official, 17) if args.official else None
    print("| fixture | people | official s | bupose s (scipy) | bupose s (munkres) | speed-up "
          "| identical (scipy / munkres) |")
    print("|---|---:|---:|---:|---:|---:|---|")
    growth: list[tuple[int, dict[str, float]]] = []
    for path in files:
        data = np.load(path)
        det, tag = data["det"], data["tag"]
        runs = {s: time_bupose(det, tag, args.repeat, s) for s in ("scipy", "munkres")
                if args.solver in ("both", s)}
        cells = {s: f"{runs[s][0]:.3f}" if s in runs else "-" for s in ("scipy", "munkres")}
        off_s, same, ratio = "-", "-", "-"
        if parser is not None:
            seconds, off_out = time_official(parser, det, tag)
            off_s = f"{seconds:.2f}"
            ratio = f"{seconds / runs.get('munkres', runs.get('scipy'))[0]:.0f}x"
            same = " / ".join(_same(runs[s][1], off_out) if s in runs else "-"
                              for s in ("scipy", "munkres"))
        name = path.stem.removeprefix("structured_")
        people = len(runs.get("munkres", runs.get("scipy"))[1][0])  # munkres: official count
        print(f"| {name} | {people} | {off_s} | {cells['scipy']} | {cells['munkres']} "
              f"| {ratio} | {same} |", flush=True)
        growth.append((people, {s: runs[s][0] for s in runs}))
    print(growth_line(growth))
    return 0


def growth_line(growth: list[tuple[int, dict[str, float]]]) -> str:
    """How bupose's time grows from the fixture with the fewest people to the one with the
    most (and slowest / fastest fixture), per solver."""
    growth = sorted(growth, key=lambda g: g[0])
    (few, t_few), (many, t_many) = growth[0], growth[-1]
    parts = [f"{s}: {t_many[s] / t_few[s]:.2f}x from {few} to {many} people, slowest / fastest "
             f"{max(t[s] for _, t in growth) / min(t[s] for _, t in growth):.2f}x"
             for s in t_few]
    return "\ntime growth (bupose): " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
