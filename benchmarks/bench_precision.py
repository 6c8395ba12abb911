"""How far bf16 / fp16 autocast and onnxruntime move a trained model's maps and poses from fp32.

    python benchmarks/bench_precision.py                        # the shipped default model
    python benchmarks/bench_precision.py --checkpoint ckpt.pth --images DIR
    python benchmarks/bench_precision.py --variants fp32,bf16 --count 64 --json out.json

Without ``--images`` the model runs on ``--count`` held-out synthetic images drawn like the
shipped default model's training data (``bupose.hub.DEFAULT_SCENE``, the demo's held-out seed),
so each variant's COCO AP against the ground truth is printed as well. Every variant runs the
model's test settings (flip, scale 1). For each variant the table gives the largest difference of
its aggregated heatmaps and tags from fp32's, as a fraction of the largest fp32 value (the map's
scale), and how many of the people fp32 finds it finds with OKS >= 0.99 (matched one to one,
greedily by OKS, with the spec's sigmas): all of them, and those scoring >= ``--min-score``. A
random network (``bench_e2e.py``) amplifies rounding into moved joints; a trained one shows what
a user sees. Speed is ``bupose bench``'s business.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("fp32", "fp32-plain", "bf16", "fp16", "onnxruntime")


def synthetic_set(folder: Path, count: int) -> tuple[list[Path], dict[str, Any]]:
    """``count`` held-out synthetic images (the default model's scene) and their COCO dict."""
    from bupose.data.synth import SceneConfig, write_synth
    from bupose.hub import DEFAULT_SCENE, HELDOUT_SEED

    ann_file = write_synth(folder, count, HELDOUT_SEED, SceneConfig(**DEFAULT_SCENE))
    data = json.loads(ann_file.read_text())
    return [ann_file.parent / "images" / im["file_name"] for im in data["images"]], data


def predictors(model: Any, variants: list[str], tmp: Path) -> dict[str, Any]:
    """One ``Predictor`` per variant (bench_e2e's construction, fp16 added)."""
    from bench_e2e import bupose_variant

    from bupose.inference.predictor import Predictor

    return {name: Predictor(model, precision="fp16") if name == "fp16"
            else bupose_variant(name, model, tmp) for name in variants}


def _array(x: Any) -> np.ndarray:
    return x.detach().float().numpy() if hasattr(x, "detach") else np.asarray(x, np.float32)


def map_deviation(maps: Any, reference: Any) -> tuple[float, float]:
    """max |heatmaps - fp32| / max |fp32 heatmaps|, and the same for the tags."""
    out = []
    for name in ("heatmaps", "tags"):
        ours, ref = _array(getattr(maps, name)), _array(getattr(reference, name))
        out.append(float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-12)))
    return out[0], out[1]


def image_set(args: argparse.Namespace, tmp: Path) -> tuple[list[Path], dict[str, Any] | None]:
    """The images to run (``--images`` or synthetic ones) and their COCO dict (synthetic only)."""
    if args.images is None:
        return synthetic_set(tmp / "data", args.count)
    if not args.images.is_dir():
        raise SystemExit(f"--images {args.images}: not a folder")
    paths = sorted(p for p in args.images.iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[: args.count]
    if not paths:
        raise SystemExit(f"--images {args.images}: no .jpg or .png images")
    return paths, None


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench_e2e import oks_to_reference

    from bupose.cli.common import model_from_args
    from bupose.evaluation import score_keypoints
    from bupose.utils.io import read_image

    with tempfile.TemporaryDirectory(prefix="bench_precision_") as folder:
        paths, data = image_set(args, Path(folder))
        model = model_from_args(args, use_default=True).eval()
        runs = predictors(model, args.variants, Path(folder))
        spec = runs["fp32"].spec
        ids = [im["id"] for im in data["images"]] if data else range(1, len(paths) + 1)
        rows = {v: {"heatmaps": 0.0, "tags": 0.0, "oks": [], "results": []} for v in runs}
        for image_id, path in zip(ids, paths):
            image = read_image(path)
            maps = {name: p.maps(image) for name, p in runs.items()}
            poses = {name: runs[name].decode(m) for name, m in maps.items()}
            for name, row in rows.items():
                heat, tags = map_deviation(maps[name], maps["fp32"])
                row["heatmaps"], row["tags"] = max(row["heatmaps"], heat), max(row["tags"], tags)
                oks = oks_to_reference(poses[name].keypoints, poses["fp32"].keypoints,
                                       spec.sigmas)
                row["oks"] += [[float(score), o] for score, o in zip(poses["fp32"].scores, oks)]
                row["results"] += poses[name].to_coco(image_id)
    for row in rows.values():
        results = row.pop("results")
        row["ap"] = None if data is None else score_keypoints(results, data, "coco",
                                                              spec).stats["AP"]
    return {"images": len(paths), "synthetic": data is not None, "min_score": args.min_score,
            "variants": rows}


def table(result: dict[str, Any]) -> str:
    source = "held-out synthetic images" if result["synthetic"] else "images"
    lines = [f"Agreement with fp32 on {result['images']} {source} (flip, scale 1)", "",
             "| variant | heatmaps max diff / scale | tags max diff / scale | "
             "fp32 people found with OKS >= 0.99 | of those scoring >= "
             f"{result['min_score']:g} | their lowest OKS | AP |",
             "|---|---|---|---|---|---|---|"]
    for name, row in result["variants"].items():
        every = [o for _, o in row["oks"]]
        scoring = [o for score, o in row["oks"] if score >= result["min_score"]]
        lowest = f"{min(scoring):.3f}" if scoring else "-"
        ap = "-" if row["ap"] is None else f"{row['ap']:.3f}"
        lines.append(f"| {name} | {row['heatmaps']:.1e} | {row['tags']:.1e} | {_close(every)} "
                     f"| {_close(scoring)} | {lowest} | {ap} |")
    return "\n".join(lines)


def _close(oks: list[float]) -> str:
    return f"{sum(o >= 0.99 for o in oks)}/{len(oks)}"


def main(argv: list[str] | None = None) -> None:
    from bupose.cli.common import add_model_args

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_args(ap)
    ap.add_argument("--images", type=Path, default=None,
                    help="a folder of images (default: held-out synthetic images)")
    ap.add_argument("--count", type=int, default=32, help="images (at most, with --images)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help=f"comma-separated, from {','.join(VARIANTS)} (fp32 is always run)")
    ap.add_argument("--min-score", type=float, default=0.1,
                    help="also count the fp32 people scoring at least this (default 0.1; the "
                         "decoder keeps people down to ~0.01)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    args.variants = ["fp32"] + [v for v in args.variants.split(",") if v and v != "fp32"]
    if any(v not in VARIANTS for v in args.variants):
        ap.error(f"--variants: choose from {', '.join(VARIANTS)}")
    result = run(args)
    print(table(result))
    if args.json:
        from bupose.utils.io import atomic_write_json

        atomic_write_json(args.json, result, indent=1)


if __name__ == "__main__":
    main()
