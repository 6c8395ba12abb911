"""``bupose models``: the registered models with input size, parameters and GFLOPs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the registered models (input size, parameters, GFLOPs)",
        description="List every registered model with its input size, parameter count and cost "
                    "for one image in two conventions: true multiply-adds (GMACs) and the "
                    "official get_model_summary figure the papers print (GFLOPs paper).")
    p.add_argument("--json", action="store_true",
                   help="print a JSON list of {name, input_size ((h, w) for top-down), family, "
                        "params, gmacs, gflops_paper, description}")
    p.add_argument("--zoo", action="store_true",
                   help="list the released checkpoints instead (name, model, dataset, published "
                        "AP, source, config; use as --checkpoint zoo:NAME)")
    p.set_defaults(func=run)


# bupose/models/flops.py COST_CACHE, read here without importing torch (2 s of a 3 s listing).
COST_CACHE = Path(__file__).resolve().parents[1] / "resources" / "model_costs.json"
ROW_KEYS = ("input_size", "family", "params", "gmacs", "gflops_paper", "description")


def rows(live: bool = False) -> list[dict[str, object]]:
    """One dict per registered model: name, input_size (S, or [h, w] for top-down models),
    family ("ae", "offsets", "topdown"), params, gmacs, gflops_paper, description.

    Read from the shipped cost cache, which lists every registered model (a test keeps it
    current), unless ``live`` or the cache is missing or incomplete: then from the registry
    (imports torch; models missing from the cache are counted on the meta device)."""
    if not live:
        cached = _cached_rows()
        if cached is not None:
            return cached
    from bupose.models import MODELS
    from bupose.models.flops import registered_cost, table_fields

    out: list[dict[str, object]] = []
    for name in MODELS.names():
        cost = registered_cost(name)
        out.append({"name": name, **table_fields(name), "params": cost.params,
                    "gmacs": round(cost.gmacs, 3), "gflops_paper": round(cost.gflops_paper, 3)})
    return [{k: r[k] for k in ("name", *ROW_KEYS)} for r in out]


def _cached_rows() -> list[dict[str, object]] | None:
    try:
        table = json.loads(COST_CACHE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not table or not all(set(ROW_KEYS) <= set(hit) for hit in table.values()):
        return None
    return [{"name": name, **{k: hit[k] for k in ROW_KEYS},
             "gmacs": round(hit["gmacs"], 3), "gflops_paper": round(hit["gflops_paper"], 3)}
            for name, hit in sorted(table.items())]


def run(args: argparse.Namespace) -> int:
    if getattr(args, "zoo", False):
        from bupose.hub import format_zoo, zoo_rows

        print(json.dumps(zoo_rows(), indent=1) if args.json else format_zoo())
        return 0
    table = rows()
    if args.json:
        print(json.dumps(table, indent=1))
        return 0
    head = f"{'name':<28}{'input':>8}{'params':>14}{'GMACs':>10}{'GFLOPs paper':>14}  description"
    print(head)
    print("-" * len(head))
    for r in table:
        size = r["input_size"]
        size = f"{size[0]}x{size[1]}" if isinstance(size, (list, tuple)) else str(size)
        print(f"{r['name']:<28}{size:>8}{r['params']:>14,}{r['gmacs']:>10.2f}"
              f"{r['gflops_paper']:>14.2f}  {r['description']}")
    return 0
