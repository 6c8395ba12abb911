"""Long runs keep memory flat (slow: ``make test-slow``).

``bupose infer`` runs in a child process over 1,000 generated images, and over a generated
10-minute video; its resident set size is sampled from ``/proc/<pid>/status`` while it runs.
The RSS once the run is under way (after 20% of the work, when imports, model and allocator pools
are settled) and at the end must differ by less than 5% + 20 MB: a leak of a few KB per image
or frame (a list of maps, a growing cache) would exceed it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")]
TINY = ["--model", "higherhrnet_tiny", "--input-size", "64", "--no-flip"]


def _rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    line = next((ln for ln in text.splitlines() if ln.startswith("VmRSS:")), None)
    return None if line is None else int(line.split()[1]) / 1024


def _sampled_run(argv: list[str], log: Path) -> list[tuple[float, float]]:
    """Run ``bupose`` in a child; returns (seconds since start, RSS MB) samples."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    samples = []
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "bupose", *argv], stderr=err, env=env)
        start = time.time()
        while proc.poll() is None:
            rss = _rss_mb(proc.pid)
            if rss is not None:
                samples.append((time.time() - start, rss))
            time.sleep(0.2)
    assert proc.returncode == 0, log.read_text()[-2000:]
    return samples


def _assert_flat(samples: list[tuple[float, float]], what: str) -> None:
    end_time = samples[-1][0]
    settled = [rss for t, rss in samples if t >= 0.2 * end_time]
    assert len(settled) >= 10, f"{what}: too few samples ({len(samples)})"
    early, late = settled[0], max(settled[-5:])
    print(f"{what}: RSS {early:.0f} MB after 20% -> {late:.0f} MB at the end "
          f"({len(samples)} samples over {end_time:.0f} s)")
    assert late - early < 0.05 * early + 20, f"{what}: RSS grew {early:.0f} -> {late:.0f} MB"


def test_thousand_images_keep_memory_flat(tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1000):  # distinct images of a few sizes
        h, w = (48, 64) if i % 3 else (64, 48)
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), rng.integers(0, 255, (h, w, 3), np.uint8))
    out = tmp_path / "results.json"
    samples = _sampled_run(["infer", str(folder), *TINY, "--json", str(out)],
                           tmp_path / "log.txt")
    assert out.stat().st_size > 0
    _assert_flat(samples, "1000 images")


def test_ten_minute_video_keeps_memory_flat(tmp_path: Path) -> None:
    video = tmp_path / "ten_minutes.avi"
    fps, frames = 5, 5 * 600
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (48, 64, 3), np.uint8)
    for i in range(frames):
        writer.write(np.roll(base, i % 64, axis=1))
    writer.release()
    out = tmp_path / "video.json"
    samples = _sampled_run(["infer", str(video), *TINY, "--json", str(out)],
                           tmp_path / "log.txt")
    assert out.stat().st_size > 0
    _assert_flat(samples, "10-minute video")
