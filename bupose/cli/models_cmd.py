"""``bupose models``: the registered models with input size, parameters and GFLOPs."""

from __future__ import annotations

import argparse
import json


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


def rows() -> list[dict[str, object]]:
    """One dict per registered model: name, input_size (S, or [h, w] for top-down models),
    family ("ae", "offsets", "topdown"), params, gmacs, gflops_paper, description."""
    from bupose.models import MODELS
    from bupose.models.flops import registered_cost

    out = []
    for name in MODELS.names():
        entry = MODELS.get(name)
        cost = registered_cost(name)
        size = entry.input_size
        out.append({"name": name, "input_size": list(size) if isinstance(size, tuple) else size,
                    "family": entry.family, "params": cost.params,
                    "gmacs": round(cost.gmacs, 3), "gflops_paper": round(cost.gflops_paper, 3),
                    "description": entry.description})
    return out


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
