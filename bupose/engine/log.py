"""Training logs: a JSONL file of every record plus TensorBoard scalars, written by rank 0 only.

Record kinds (the ``kind`` field): "train" (loss terms, lr, images/s, at ``step``), "val" (AP and
friends after an epoch) and "epoch" (epoch averages). TensorBoard is imported lazily; without it
only the JSONL is written.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from bupose.utils.io import atomic_write_bytes

LOG_NAME = "log.jsonl"


class RunLogger:
    """Appends records to ``RUN_DIR/log.jsonl`` and mirrors numbers to TensorBoard.

    ``enabled=False`` (ranks other than 0) makes every method a no-op.
    """

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True, tensorboard: bool = True):
        self.path = Path(run_dir) / LOG_NAME
        self.enabled = enabled
        self._tb: Any = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                self._tb = _open_tensorboard(Path(run_dir) / "tb")

    def truncate_after(self, step: int) -> None:
        """Drop records later than optimiser step ``step`` (on resume; rewritten atomically)."""
        if not self.enabled or not self.path.is_file():
            return
        kept = [r for r in read_log(self.path) if r.get("step", 0) <= step]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        atomic_write_bytes(self.path, text.encode("utf-8"))

    def log(self, kind: str, step: int, values: dict[str, Any]) -> None:
        """Append one record ``{"kind", "step", **values}``; floats are written as given."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": int(step), **values}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _open_tensorboard(path: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn("tensorboard is not installed; writing the JSONL log only", stacklevel=3)
        return None
    return SummaryWriter(log_dir=str(path))


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All records of a JSONL log (a torn last line from a crash is skipped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


class MeanMeter:
    """Running means of named scalars over a window (reset after each log line)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def update(self, values: dict[str, float], n: int = 1) -> None:
        for key, value in values.items():
            if math.isfinite(value):
                self.sums[key] += value * n
                self.counts[key] += n

    def means(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k]}

    def reset(self) -> None:
        self.sums.clear()
        self.counts.clear()
