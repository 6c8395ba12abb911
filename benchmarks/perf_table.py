"""The README's performance table, from one run of the benchmark scripts on this machine.

Runs, one after the other (each in its own process, JSON kept in ``--out``):
  ``bupose bench`` on W32-512 (random weights) over the COCO sample images: fp32, bf16 and
  onnxruntime (forward time, share of the measured convolution peak, folder throughput,
  start-up); ``bench_e2e.py`` (the official ``valid.py`` loop beside bupose) with a few people per
  image and with a crowd; ``bench_train.py`` (training step); ``bench_memory.py`` (peak RSS); and
  a one-image ``bupose infer`` with the default model on each backend (torch, and onnxruntime
  from the cached export, which imports no torch), whose wall time minus the in-process
  network + decoding time is the command's own overhead.

    python benchmarks/perf_table.py --official /tmp/hhr [--out runs/perf] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent.parent / "shared" / "data" / "samples" / "coco"
BENCH = [sys.executable, "-m", "bupose", "bench", "--model", "higherhrnet_w32_512",
         "--images", str(SAMPLES)]


def _run(argv: list[str], out: Path) -> dict[str, Any]:
    """Run one benchmark writing ``--json out``; returns its JSON (reused when present)."""
    if not out.exists():
        print("$ " + " ".join(argv[1:]), file=sys.stderr)
        subprocess.run([*argv, "--json", str(out)], check=True)
    return json.loads(out.read_text())


def _infer_overhead(out: Path) -> dict[str, Any]:
    """Per backend (torch, onnxruntime): the wall time of ``bupose infer`` on one image with the
    default model (median of 3, after a first run that fills the ONNX export cache), and that
    image's in-process network + decoding time (median of 3 after a warm-up)."""
    image = sorted(SAMPLES.glob("*.jpg"))[0]
    env = {**os.environ, "BUPOSE_CACHE": str(out / "cache")}
    result: dict[str, Any] = {}
    for backend in ("torch", "onnxruntime"):
        argv = [sys.executable, "-m", "bupose", "infer", str(image), "--backend", backend,
                "--json", str(out / f"one_{backend}.json")]
        subprocess.run(argv, check=True, capture_output=True, env=env)  # fills the cache
        walls = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True, env=env)
            walls.append(time.perf_counter() - start)
        make = ("from bupose.inference.onnx_predictor import OnnxPredictor\n"
                "p = OnnxPredictor.from_file(next(Path(sys.argv[2]).glob('onnx/*.onnx')))"
                if backend == "onnxruntime" else
                "from bupose import Predictor\np = Predictor.from_pretrained()")
        done = subprocess.run([sys.executable, "-c", _INSIDE.format(make=make), str(image),
                               str(out / "cache")], check=True, capture_output=True, text=True)
        inside = float(done.stdout.split()[-1])
        wall = statistics.median(walls)
        result[backend] = {"wall_s": wall, "network_decode_s": inside,
                           "overhead_s": wall - inside}
    result["import_s"] = {m: _import_seconds(m) for m in
                          ("torch", "onnxruntime", "scipy.optimize", "numba")}
    return result


_INSIDE = """import statistics, sys, time
from pathlib import Path
from bupose.utils.allocator import tune_malloc
tune_malloc()
from bupose.utils.io import read_image
{make}
im = read_image(sys.argv[1])
p(im)
ts = []
for _ in range(3):
    t = time.perf_counter()
    p(im)
    ts.append(time.perf_counter() - t)
print(statistics.median(ts))
"""


def _import_seconds(module: str) -> float:
    """Median wall time of ``python -c 'import MODULE'`` (3 runs)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    out, official = args.out, str(args.official)
    out.mkdir(parents=True, exist_ok=True)
    repeat = ["--repeat", "1" if args.quick else "2"]
    r: dict[str, Any] = {"machine": _machine()}
    r["bench_fp32"] = _run([*BENCH, *repeat, "--batch", "2"], out / "bench_fp32.json")
    r["bench_bf16"] = _run([*BENCH, "--precision", "bf16", "--repeat", "1", "--no-startup"],
                           out / "bench_bf16.json")
    r["bench_ort"] = _run([*BENCH, "--backend", "onnxruntime", *repeat, "--no-startup"],
                          out / "bench_ort.json")
    e2e = [sys.executable, str(HERE / "bench_e2e.py"), "--official", official, *repeat]
    train = [sys.executable, str(HERE / "bench_train.py"), "--official", official,
             "--batch", "4" if args.quick else "12", *repeat]
    for malloc in ("default", "tuned"):  # the official code as it runs; bupose as it runs
        tail = "" if malloc == "default" else "_tuned"
        flag = ["--malloc", malloc]
        r[f"e2e_few{tail}"] = _run([*e2e, *flag, "--heat-scale", "0.02"],
                                   out / f"e2e_few{tail}.json")
        r[f"e2e_crowd{tail}"] = _run([*e2e, *flag, "--heat-scale", "0.025"],
                                     out / f"e2e_crowd{tail}.json")
        r[f"train{tail}"] = _run([*train, *flag], out / f"train{tail}.json")
    r["memory"] = _run([sys.executable, str(HERE / "bench_memory.py")], out / "memory.json")
    r["infer_one"] = _infer_overhead(out)
    (out / "all.json").write_text(json.dumps(r, indent=1))
    return r


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        flags = next(ln for ln in lines if ln.startswith("flags")).split()
        isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        bf16 = "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "no bf16 instructions"
        cpu = f"{names[0]}, {len(names)} cores, {isa}, {bf16}"
    except (OSError, StopIteration, IndexError):
        pass
    return cpu


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def _e2e_rows(name: str, default: dict[str, Any], tuned: dict[str, Any]) -> list[str]:
    """One row per bupose variant: the official loop as it runs (glibc malloc defaults) against
    bupose as its commands run (malloc tuned), with the like-for-like ratios in the notes."""
    official = statistics.mean(default["seconds"]["official"])
    official_tuned = statistics.mean(tuned["seconds"]["official"])
    people = tuned["official_people"] / len(tuned["images"])
    rows = []
    for variant, seconds in tuned["seconds"].items():
        if variant == "official":
            continue
        ours = statistics.mean(seconds)
        q = tuned["quality"][variant]
        agree = (f"{q['identical']} identical, {sum(o >= 0.99 for o in q['oks_official'])} "
                 f"OKS >= 0.99 of {tuned['official_people']} official people")
        if q["oks_fp32"]:
            agree += (f"; OKS >= 0.99 with fp32 for {sum(o >= 0.99 for o in q['oks_fp32'])}/"
                      f"{len(q['oks_fp32'])}")
        same = (f"like for like: both malloc-tuned {_ratio(official_tuned, ours)}, both default "
                f"{_ratio(official, statistics.mean(default['seconds'][variant]))}")
        rows.append(f"| end to end, {name} ({people:.0f} people/image), bupose {variant} | "
                    f"official {official:.2f} s, bupose {ours:.2f} s | "
                    f"{_ratio(official, ours)} | {agree}; {same} |")
    return rows


def table(r: dict[str, Any]) -> str:
    fp32, bf16, ort = r["bench_fp32"], r["bench_bf16"], r["bench_ort"]
    fwd = fp32["stages"]["forward"]
    rows = ["| target | measured | ratio | notes |", "|---|---|---|---|"]
    rows += _e2e_rows("few people", r["e2e_few"], r["e2e_few_tuned"])
    rows += _e2e_rows("crowd", r["e2e_crowd"], r["e2e_crowd_tuned"])
    rows.append(f"| forward fp32 vs conv peak | {fp32['forward_gflops']:.0f} GFLOP/s of "
                f"{fp32['conv_peak_gflops']['peak']:.0f} | "
                f"{100 * fp32['forward_fraction_of_peak']:.0f}% | W32-512 at "
                f"{fp32['forward_input_hw'][0]}x{fp32['forward_input_hw'][1]}, flip: "
                f"{1000 * fwd:.0f} ms |")
    if "forward_unfused" in fp32["stages"]:
        plain = fp32["stages"]["forward_unfused"]
        rows.append(f"| forward fp32, conv + add + ReLU fused vs not | {1000 * fwd:.0f} ms vs "
                    f"{1000 * plain:.0f} ms | {_ratio(plain, fwd)} | speed-up of the fusion "
                    "(the two alternating; bit-identical maps) |")
    for name, other in (("bf16 autocast", bf16), ("onnxruntime", ort)):
        rows.append(f"| forward {name} vs fp32 | {1000 * other['stages']['forward']:.0f} ms vs "
                    f"{1000 * fwd:.0f} ms | {_ratio(fwd, other['stages']['forward'])} | "
                    "speed-up (< 1: slower) |")
    folder = fp32["folder"]
    rows.append(f"| folder throughput | serial {folder['serial_img_s']:.2f}, overlapped "
                f"{folder['overlapped_img_s']:.2f}, network bound "
                f"{folder['network_bound_img_s']:.2f} img/s | "
                f"{100 * folder['overlapped_img_s'] / folder['network_bound_img_s']:.0f}% of "
                "the bound | reading and decoding beside the network |")
    up, one = fp32["startup_s"], r["infer_one"]
    rows.append(f"| start-up | `--help` {up['help']:.2f} s, `models` {up['models']:.2f} s | - | "
                f"targets 0.5 s, 1 s |")
    imports = ", ".join(f"`import {m}` {v:.2f} s" for m, v in one["import_s"].items())
    for backend, b in ((k, one[k]) for k in ("torch", "onnxruntime")):
        rows.append(f"| one-image `bupose infer --backend {backend}` (default model) | "
                    f"{b['wall_s']:.2f} s wall, {b['network_decode_s']:.2f} s network + "
                    f"decoding (warm) | {b['overhead_s']:.2f} s outside | target < 1.5 s; "
                    f"alone: {imports} |")
    t, tt = r["train"], r["train_tuned"]
    official, ours = t["step_seconds"]["official"], tt["step_seconds"]["bupose fp32"]
    rows.append(f"| training step W32-512, batch {t['batch']} | official {official:.1f} s, "
                f"bupose {ours:.1f} s | {_ratio(official, ours)} | like for like: both "
                f"malloc-tuned {_ratio(tt['step_seconds']['official'], ours)}, both default "
                f"{_ratio(official, t['step_seconds']['bupose fp32'])}; loader "
                f"{tt['loader_batch_seconds']:.2f} s per batch (one process) |")
    mem = r["memory"]
    cells = ", ".join(f"{m} {row.get('4000x3000', 0):.0f} MB" for m, row in mem.items())
    rows.append(f"| peak RSS, 4000x3000 photo | {cells} | - | limit 4 GB |")
    return (f"Measured on {r['machine']}, torch threads {fp32['threads']}. Official code: glibc "
            "malloc defaults (as its scripts run); bupose: malloc tuned (as its commands run, "
            "`bupose.utils.allocator`).\n\n" + "\n".join(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--official", type=Path, required=True, help="HigherHRNet checkout")
    ap.add_argument("--out", type=Path, default=Path("runs/perf"))
    ap.add_argument("--quick", action="store_true", help="one repeat, training batch 4")
    args = ap.parse_args()
    print(table(collect(args)))


if __name__ == "__main__":
    main()
