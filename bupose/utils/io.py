"""File helpers: atomic writes (temporary file, then rename), JSON and image reading with errors
that name the file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from bupose.errors import DataError


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync, then rename over ``path``.

    A crash or an exception leaves any previous ``path`` untouched. Missing parent folders are
    created; a folder that cannot be created or written raises DataError naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # a read-only folder, a file where a folder should be ...
        raise DataError(f"{path}: cannot create or write its folder ({e.strerror or e})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> Path:
    """Write ``obj`` as JSON atomically; numpy scalars and arrays are converted."""
    text = json.dumps(obj, indent=indent, default=_json_default)
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Load JSON; a missing or malformed file raises DataError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        where = f"line {e.lineno} column {e.colno}"
        raise DataError(f"{path}: malformed {what}: {e.msg} at {where}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: {what} is not UTF-8 text ({e.reason})") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB, ignoring EXIF orientation (as the official code does).

    Raises DataError naming the file when it is missing or cannot be decoded.
    """
    import cv2

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not an image file")
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    if data.size == 0:  # cv2.imdecode asserts (!buf.empty()) on an empty buffer
        raise DataError(f"{path}: empty file (0 bytes), not an image")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as e:  # e.g. a header claiming more pixels than OpenCV allows
        reason = str(e).strip().splitlines()[-1]
        raise DataError(f"{path}: cannot decode image ({reason})") from None
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
