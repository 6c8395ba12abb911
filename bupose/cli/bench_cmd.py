"""``bupose bench``: time the AE test pipeline stage by stage, the folder throughput with loading
and decoding overlapping the network, the command's start-up and the peak memory (issue 12).

Medians over --repeat runs after --warmup. The forward's achieved GFLOP/s is set against the
machine's 3x3-convolution peak, measured by the command itself (the fastest of 10 runs, before
and after the timings). With no model flag the shipped
default model runs (seconds); ``--model higherhrnet_w32_512`` gives the real-size figures with
random weights (the cost does not depend on the weights). Images: --images DIR, else a few
built-in synthetic scenes generated on the fly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from bupose.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from bupose.cli.common import add_model_args
    from bupose.cli.infer_cmd import add_decoder_args, parse_scales

    p = subparsers.add_parser(
        "bench",
        help="time the forward pass, decoding and whole pipeline; start-up and peak memory",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(p)
    add_decoder_args(p)
    p.add_argument("--input-size", type=int, default=None, metavar="N",
                   help="input size of the short side (default: the model's)")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="flip test (default: the model's settings, else on)")
    p.add_argument("--scales", type=parse_scales, default=None, metavar="S1,S2,...",
                   help="test scale factors (default: the model's, else 1)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch",
                   help="run the network in PyTorch or as its ONNX export in onnxruntime")
    p.add_argument("--images", type=Path, default=None, metavar="DIR",
                   help="folder of images (default: 4 synthetic scenes)")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="folder throughput also with N images per network call (equal sizes)")
    p.add_argument("--repeat", type=int, default=3, metavar="N", help="timed runs (median)")
    p.add_argument("--warmup", type=int, default=1, metavar="N", help="untimed runs first")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads (default: torch's)")
    p.add_argument("--no-startup", dest="startup", action="store_false",
                   help="skip the start-up timing (two fresh interpreters per run)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT.json",
                   help="write every figure as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from bupose.utils.threads import quiet_numba_threads

    if args.repeat < 1 or args.warmup < 0 or args.batch < 1:
        raise ConfigError(f"--repeat and --batch must be >= 1 and --warmup >= 0, got "
                          f"{args.repeat}, {args.batch}, {args.warmup}")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    quiet_numba_threads()
    images, source = _images(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        predictor, name = _predictor(args, Path(tmp))
        report = _measure(args, predictor, name, images)
    from bupose.utils.allocator import malloc_state

    report.update(images=source, threads=torch.get_num_threads(), malloc=malloc_state())
    _print(report)
    if args.json:
        from bupose.utils.io import atomic_write_json

        atomic_write_json(args.json, report, indent=1)
    return 0


def _images(folder: Path | None) -> tuple[list[Any], str]:
    """(H, W, 3) uint8 RGB images of --images, else 4 synthetic scenes, and their source."""
    import numpy as np

    if folder is None:
        from bupose.data.synth import SceneConfig, generate_scene

        rng = np.random.default_rng(0)
        return [generate_scene(rng, SceneConfig()).image for _ in range(4)], "synthetic x4"
    from bupose.cli.infer_cmd import collect_images
    from bupose.utils.io import read_image

    paths = collect_images([folder])
    if not paths:
        raise ConfigError(f"{folder}: no images")
    return [read_image(p) for p in paths], f"{folder} x{len(paths)}"


def _predictor(args: argparse.Namespace, tmp: Path) -> tuple[Any, str | None]:
    from bupose.cli.common import model_from_args
    from bupose.cli.infer_cmd import build_predictor
    from bupose.models import model_family

    model = model_from_args(args, use_default=True).eval()
    if model_family(model) != "ae":
        raise ConfigError(f"bupose bench times the AE-family pipeline; {model.meta.name} is a "
                          f"{model_family(model)} model (see benchmarks/bench_offsets.py, "
                          "bench_topdown.py)")
    name = getattr(model.meta, "name", None)
    if args.backend == "onnxruntime":
        if args.precision != "fp32":
            raise ConfigError("--backend onnxruntime runs the fp32 export: use --precision fp32")
        from bupose.export import export_model
        from bupose.inference.onnx_backend import load_exported

        model = load_exported(export_model(model, tmp / "model.onnx", "onnx", dynamic=True),
                              threads=args.threads)
    args.device = "cpu"
    return build_predictor(args, model), name


def _measure(args: argparse.Namespace, predictor: Any, name: str | None,
             images: list[Any]) -> dict[str, Any]:
    from bupose.bench.measure import (
        conv_peak_gflops,
        cuda_peak_mb,
        higher_peak,
        peak_rss_mb,
        startup_seconds,
    )
    from bupose.bench.pipeline import forward_gflops, summarise, time_image

    report: dict[str, Any] = {
        "model": name, "backend": args.backend, "precision": args.precision,
        "decoder": predictor.decoder, "flip": predictor.flip, "scales": list(predictor.scales),
        "input_size": predictor.input_size,
    }
    peak_before = conv_peak_gflops()
    per_image = [time_image(predictor, im, args.repeat, args.warmup) for im in images]
    stages = summarise(per_image)
    passes = len(predictor.scales) * (2 if predictor.flip else 1)
    hw = per_image[0]["input_hw"]
    first = [t for t in per_image if t["input_hw"] == hw]
    gflops = forward_gflops(name, hw, passes, summarise(first)["forward"])
    conv = higher_peak(peak_before, conv_peak_gflops())  # before and after the timings
    report.update(stages=stages, per_image=per_image, conv_peak_gflops=conv,
                  forward_gflops=gflops, forward_input_hw=hw,
                  forward_fraction_of_peak=None if gflops is None else gflops / conv["peak"])
    report["folder"] = _folder(args, predictor, images, stages["forward"])
    report["startup_s"] = ({"help": startup_seconds(["--help"]),
                            "models": startup_seconds(["models"])} if args.startup else None)
    report["peak_rss_mb"], report["cuda_peak_mb"] = peak_rss_mb(), cuda_peak_mb()
    return report


def _folder(args: argparse.Namespace, predictor: Any, images: list[Any],
            forward_s: float) -> dict[str, float]:
    """Images/s over the folder: serial loop, overlapped (reading and decoding beside the
    network), batched (--batch > 1), and the bound 1 / (network time per image)."""
    from bupose.bench.measure import median_seconds
    from bupose.inference.batching import batch_key, batch_maps, group_batches
    from bupose.inference.pipeline import overlapped

    def serial() -> None:
        for im in images:
            predictor.decode(predictor.maps(im))

    def piped() -> None:
        for _ in overlapped(range(len(images)), images.__getitem__, predictor.maps,
                            lambda i, im, maps: predictor.decode(maps)):
            pass

    def batched() -> None:
        keyed = group_batches(list(images), lambda im: batch_key(predictor, im), args.batch)
        for group in keyed:
            for maps in batch_maps(predictor, group):
                predictor.decode(maps)

    n = len(images)
    out = {"serial_img_s": n / median_seconds(serial, args.repeat, args.warmup),
           "overlapped_img_s": n / median_seconds(piped, args.repeat, args.warmup),
           "network_bound_img_s": 1.0 / forward_s}
    if args.batch > 1:
        out["batched_img_s"] = n / median_seconds(batched, args.repeat, args.warmup)
    return out


def _print(r: dict[str, Any]) -> None:
    s = r["stages"]
    ms = {k: f"{1000 * v:.1f} ms" for k, v in s.items()}
    print(f"bupose bench: {r['model'] or 'exported model'} ({r['backend']}, {r['precision']}), "
          f"{r['images']}, flip {r['flip']}, scales {r['scales']}, {r['threads']} thread(s)")
    rows = [("preprocess", ms["preprocess"]), ("forward", ms["forward"])]
    if "forward_unfused" in s:
        rows.append(("  without conv fusion", f"{ms['forward_unfused']} "
                     f"({s['forward_unfused'] / s['forward']:.2f}x the fused time)"))
    rows += [("flip/aggregate", ms["aggregate"]), ("decode", ms["decode"])]
    rows += [(f"  {k[7:]}", ms[k]) for k in ("decode_peaks", "decode_match", "decode_finish")
             if k in ms]
    rows.append(("end to end / image", ms["end_to_end"]))
    peak = r["conv_peak_gflops"]["peak"]
    if r["forward_gflops"] is not None:
        rows.append(("forward GFLOP/s", f"{r['forward_gflops']:.1f} = "
                     f"{100 * r['forward_fraction_of_peak']:.0f}% of the conv peak "
                     f"{peak:.1f} at {r['forward_input_hw'][0]}x{r['forward_input_hw'][1]}"))
    else:
        rows.append(("conv peak GFLOP/s", f"{peak:.1f}"))
    rows += [(f"folder {k[:-6]}", f"{v:.2f} img/s") for k, v in r["folder"].items()]
    if r["startup_s"]:
        rows += [(f"start-up `bupose {a}`", f"{r['startup_s'][k]:.2f} s")
                 for k, a in (("help", "--help"), ("models", "models"))]
    rows.append(("peak RSS", f"{r['peak_rss_mb']:.0f} MiB"))
    if r["cuda_peak_mb"] is not None:
        rows.append(("peak CUDA", f"{r['cuda_peak_mb']:.0f} MiB"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    sys.stdout.flush()
