"""Training curves from a run's ``log.jsonl``, drawn with OpenCV (no plotting dependency).

``plot_run(RUN_DIR)`` writes ``RUN_DIR/curves.png``: the loss terms (log scale) against the
optimiser step on the left, validation AP on the right.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bupose.engine.log import LOG_NAME, read_log
from bupose.errors import DataError

Series = dict[str, tuple[list[float], list[float]]]

_COLOURS = [  # BGR, distinguishable on white
    (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
    (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
]


def collect_series(records: Sequence[dict]) -> tuple[Series, Series]:
    """(loss series, validation series): name -> (steps, values) from log records."""
    losses: Series = {}
    val: Series = {}
    for r in records:
        if r.get("kind") == "train":
            keys = [k for k in r if k == "loss" or "/" in k]
            target = losses
        elif r.get("kind") == "val":
            keys = [k for k in r if k in ("AP", "AP50", "AP75")]
            target = val
        else:
            continue
        for k in keys:
            v = r[k]
            if isinstance(v, (int, float)) and math.isfinite(v):
                xs, ys = target.setdefault(k, ([], []))
                xs.append(float(r["step"]))
                ys.append(float(v))
    return losses, val


def _axes(img: np.ndarray, margins: tuple[int, int, int, int],
          extent: tuple[float, float, float, float], log_y: bool) -> None:
    """Frame, five ticks with labels on each axis, and the "step" caption."""
    import cv2

    h, w = img.shape[:2]
    left, right, top, bottom = margins
    x0, x1, y0, y1 = extent
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for i in range(5):
        fy = y0 + (y1 - y0) * i / 4
        py = int(round(h - bottom - i / 4 * (h - top - bottom)))
        label = f"{10 ** fy:.3g}" if log_y else f"{fy:.3g}"
        cv2.line(img, (left - 4, py), (left, py), (0, 0, 0), 1)
        cv2.putText(img, label, (4, py + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
        fx = x0 + (x1 - x0) * i / 4
        px = int(round(left + i / 4 * (w - left - right)))
        cv2.line(img, (px, h - bottom), (px, h - bottom + 4), (0, 0, 0), 1)
        cv2.putText(img, f"{fx:.0f}", (px - 12, h - bottom + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "step", (w // 2 - 14, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)


def line_chart(
    series: Series, title: str, size: tuple[int, int] = (640, 420), log_y: bool = False,
    y_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """(H, W, 3) uint8 BGR chart of the series with axes, ticks and a legend (``y_range`` fixes
    the vertical axis, in data units)."""
    import cv2

    w, h = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 36, 46
    cv2.putText(img, title, (left, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    pts = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if not log_y or y > 0]
    if not pts:
        cv2.putText(img, "no data", (w // 2 - 40, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (120, 120, 120), 1, cv2.LINE_AA)
        return img
    tf = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
    y0, y1 = min(tf(p[1]) for p in pts), max(tf(p[1]) for p in pts)
    if y_range is not None:
        y0, y1 = tf(y_range[0]), tf(y_range[1])
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-3)

    def to_px(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (tf(y) - y0) / (y1 - y0) * (h - top - bottom)
        return int(round(px)), int(round(py))

    _axes(img, (left, right, top, bottom), (x0, x1, y0, y1), log_y)
    legend_top, legend_left = top + 4, w - right - 156
    for i, (xs, ys) in enumerate(series.values()):
        colour = _COLOURS[i % len(_COLOURS)]
        poly = [to_px(x, y) for x, y in zip(xs, ys) if not log_y or y > 0]
        if len(poly) > 1:
            cv2.polylines(img, [np.array(poly, np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in poly if len(poly) < 30 else []:
            cv2.circle(img, p, 3, colour, -1, cv2.LINE_AA)
    cv2.rectangle(img, (legend_left, legend_top), (w - right - 2, legend_top + 16 * len(series)
                                                   + 6), (255, 255, 255), -1)
    for i, name in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        ly = top + 16 + 16 * i
        cv2.line(img, (w - right - 150, ly - 4), (w - right - 130, ly - 4), colour, 2)
        cv2.putText(img, name, (w - right - 125, ly), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1,
                    cv2.LINE_AA)
    return img


def plot_run(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Draw ``run_dir/log.jsonl`` to ``out`` (default ``run_dir/curves.png``); returns the path.

    Raises:
        DataError: the run directory has no log.
    """
    import cv2

    from bupose.utils.io import atomic_write_bytes

    log_path = Path(run_dir) / LOG_NAME
    if not log_path.is_file():
        raise DataError(f"{log_path}: no training log in this run directory")
    losses, val = collect_series(read_log(log_path))
    panel = np.concatenate(
        [line_chart(losses, "training loss (log scale)", log_y=True),
         line_chart(val, "validation AP", y_range=(0.0, 1.0))], axis=1)
    ok, data = cv2.imencode(".png", panel)
    if not ok:
        raise DataError("OpenCV could not encode the plot as PNG")
    return atomic_write_bytes(out or Path(run_dir) / "curves.png", data.tobytes())
