"""SimplePose V2 quick-start benchmark: train ``configs/quickstart_simplepose_synth.yaml`` (the
small hourglass ``simplepose_hg_small`` on built-in synthetic crowds) on this machine and record
the validation AP against wall-clock time.

    python benchmarks/quickstart_simplepose.py [--out runs/quickstart_simplepose_bench]
        [--set key=value ...]

The run validates on the held-out synthetic set every ``train.val_every`` epochs with the
official test path (``OffsetPredictor``: flip fusion, greedy offset-guided grouping); the table
(one row per validation: minutes since the start, training-only estimate, epoch, optimiser step,
AP, AP50, AP75) is printed and written to ``OUT/quickstart_simplepose.md``. Minutes include
generating the synthetic sets when they are not cached yet, and every validation.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quickstart import main as run_quickstart  # noqa: E402  (same loop and table)


def main(argv: list[str] | None = None) -> int:
    return run_quickstart(argv, recipe="quickstart_simplepose_synth.yaml",
                          name="quickstart_simplepose", description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
