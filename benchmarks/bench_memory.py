"""Peak memory of ``bupose infer`` per model and photo size (a fresh process each).

Each cell runs ``bupose infer PHOTO --model NAME --json OUT`` (the model's default test settings:
input size, flip, one scale; random weights for zoo names; ``default`` = no ``--model``: the
shipped default model) in its own
Python process and reports that process's peak resident set size (``ru_maxrss``). The photos are
generated noise JPEGs of the given sizes.

    python benchmarks/bench_memory.py [--models default,higherhrnet_w32_512]
                                      [--sizes 640x480,4000x3000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys
from bupose.cli import main
rc = main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rc": rc, "peak_kb": peak}))
"""


def photo(path: Path, width: int, height: int) -> Path:
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    small = rng.integers(0, 255, (max(height // 16, 1), max(width // 16, 1), 3), np.uint8)
    cv2.imwrite(str(path), cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC))
    return path


def peak_mb(image: Path, model: str, out: Path) -> float:
    """Peak RSS (MB) of one ``bupose infer`` process on ``image``."""
    argv = ["infer", str(image), "--json", str(out)]
    argv += [] if model == "default" else ["--model", model]
    done = subprocess.run([sys.executable, "-c", CHILD, *argv], capture_output=True, text=True,
                          check=False)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines or json.loads(lines[-1])["rc"] != 0:
        raise SystemExit(f"bupose {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])["peak_kb"] / 1024  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="default,higherhrnet_w32_512,higherhrnet_w48_640")
    ap.add_argument("--sizes", default="640x480,4000x3000", help="WxH list")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    models = args.models.split(",")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in sizes:
            image = photo(Path(tmp) / f"photo_{w}x{h}.jpg", w, h)
            for model in models:
                mb = peak_mb(image, model, Path(tmp) / "out.json")
                result.setdefault(model, {})[f"{w}x{h}"] = round(mb, 1)
                print(f"{model} {w}x{h}: {mb:.0f} MB", file=sys.stderr)
    head = " | ".join(f"{w}x{h}" for w, h in sizes)
    lines = [f"| model (default settings) | {head} |", "|---" * (len(sizes) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(f"{v:.0f} MB" for v in row.values()) + " |"
              for m, row in result.items()]
    print("Peak RSS of `bupose infer` (one process per cell)\n\n" + "\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
