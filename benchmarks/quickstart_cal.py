"""Top-down quick-start benchmark: train ``configs/quickstart_cal_synth.yaml`` (a small CAL HRNet
on 64x48 crops of the synthetic crowds' ground-truth boxes) on this machine and record the
validation AP against wall-clock time.

    python benchmarks/quickstart_cal.py [--out runs/quickstart_cal_bench] [--set key=value ...]

The run validates on the held-out synthetic set every ``train.val_every`` epochs with the official
top-down test path on the GT boxes (flip, argmax + offset read-out, rescoring, OKS-NMS); the table
(one row per validation: minutes since the start, training-only estimate, epoch, optimiser step,
AP, AP50, AP75) is printed and written to ``OUT/quickstart_cal.md``. Minutes include generating
the synthetic sets when they are not cached yet, and every validation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quickstart import main as run_quickstart  # noqa: E402  (same loop and table)


def main(argv: list[str] | None = None) -> int:
    return run_quickstart(argv, recipe="quickstart_cal_synth.yaml", name="quickstart_cal",
                          description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
