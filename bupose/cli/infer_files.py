"""Per-file helpers of ``bupose infer``: skipping unreadable images, the closing list of skipped
files, and the ``--show-maps`` pictures.

A folder with a bad file: the file is skipped with a one-line warning, listed at the end, and the
rest is processed; the run fails (exit 2) only when every input failed. ``--strict`` stops at the
first bad file instead (DataError naming it, nothing written at the end).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import DataError


def read_or_skip(path: Path, skipped: list[str], strict: bool) -> np.ndarray | None:
    """The (H, W, 3) uint8 RGB image at ``path``, or None after a one-line warning (the reason is
    appended to ``skipped``) when it cannot be read; with ``strict`` the DataError propagates."""
    from bupose.utils.io import read_image

    try:
        return read_image(path)
    except DataError as e:
        if strict:
            raise
        from tqdm import tqdm

        skipped.append(str(e))
        tqdm.write(f"warning: skipped {e}", file=sys.stderr)
        return None


def check_skipped(skipped: list[str], total: int) -> None:
    """List the skipped files on stderr; raise DataError when every one of ``total`` failed."""
    if not skipped:
        return
    if len(skipped) == total:
        raise DataError(f"every input failed ({total} file{'s' if total > 1 else ''}); "
                        f"first: {skipped[0]}")
    print(f"{len(skipped)} of {total} files skipped:", file=sys.stderr)
    for reason in skipped:
        print(f"  {reason}", file=sys.stderr)


def show_maps(folder: Path, stem: str, image: np.ndarray, maps: Any, poses: Any,
              spec: Any) -> list[Path]:
    """``--show-maps``: ``<stem>_heatmaps.jpg``, ``_joints.jpg``, ``_tags.jpg`` and
    ``_grouping.jpg`` in ``folder`` (``bupose.viz.maps``), written atomically."""
    from bupose.viz.maps import write_map_pictures

    return write_map_pictures(folder, stem, image, maps, poses.keypoints, poses.scores, spec)
