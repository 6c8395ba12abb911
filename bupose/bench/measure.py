"""Machine-level measurements: median timings, the convolution peak, peak memory, start-up."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def median_seconds(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls after ``warmup`` untimed calls."""
    if repeat < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0, got {repeat}, {warmup}")
    for _ in range(warmup):
        fn()
    return statistics.median(_seconds(fn) for _ in range(repeat))


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int = 3,
                        warmup: int = 1) -> dict[str, float]:
    """Median wall time of each ``fns[name]()`` over ``repeat`` rounds after ``warmup`` untimed
    rounds; a round calls every function once, in turn (A B A B ...), so that a machine whose
    speed drifts during a long comparison slows every side alike instead of the later block."""
    if repeat < 1 or warmup < 0:
        raise ValueError(f"need repeat >= 1 and warmup >= 0, got {repeat}, {warmup}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(warmup + repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def conv_peak_gflops(repeat: int = 10, warmup: int = 2, device: str = "cpu") -> dict[str, float]:
    """The machine's measured 3x3 convolution throughput (GFLOP/s, 2 FLOP per multiply-add):
    a 128 -> 128 channel 3x3 convolution on a 128x128 map (the HRNet stride-4 branch's shape
    at 512 px, W32 x 4 channels), float32, in both memory formats, from the fastest of
    ``repeat`` runs (a peak: on a shared machine the median of a few runs read 157-187 GFLOP/s
    here); ``peak`` is the faster format."""
    import torch

    conv = torch.nn.Conv2d(128, 128, 3, padding=1, bias=False).to(device).eval()
    x = torch.randn(1, 128, 128, 128, device=device)
    flops = 2.0 * 128 * 128 * 9 * 128 * 128
    out: dict[str, float] = {}
    with torch.inference_mode():
        for name, fmt in (("nchw", torch.contiguous_format), ("nhwc", torch.channels_last)):
            conv = conv.to(memory_format=fmt)  # type: ignore[call-overload]
            xi = x.contiguous(memory_format=fmt)
            for _ in range(warmup):
                conv(xi)
            best = min(_seconds(lambda: conv(xi)) for _ in range(repeat))  # noqa: B023
            out[name] = flops / best / 1e9
    out["peak"] = max(out["nchw"], out["nhwc"])
    return out


def higher_peak(*peaks: dict[str, float]) -> dict[str, float]:
    """Key-wise maximum of several ``conv_peak_gflops`` results (measured at different times)."""
    return {k: max(p[k] for p in peaks) for k in peaks[0]}


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB; Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cuda_peak_mb() -> float | None:
    """Peak CUDA memory allocated by this process (MiB), or None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def startup_seconds(argv: Sequence[str], repeat: int = 3) -> float:
    """Median wall time of ``python -m bupose ARGV`` in a fresh interpreter (output dropped)."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}

    def once() -> None:
        subprocess.run([sys.executable, "-m", "bupose", *argv], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)

    return median_seconds(once, repeat, warmup=1)
