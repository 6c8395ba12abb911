"""Reading checkpoint files without running pickled code: ``torch.load(..., weights_only=True)``
(plain numpy scalars, arrays and dtypes, as in training snapshots' metadata, are allowed by
name) or ``.safetensors``. Errors name the file.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bupose.errors import CheckpointError

_NUMPY_SAFE = {"numpy.dtype", "numpy.ndarray", "numpy.core.multiarray.scalar",
               "numpy._core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
               "numpy._core.multiarray._reconstruct"}


def _numpy_global(name: str) -> Any:
    import importlib

    module, _, attr = name.rpartition(".")
    if name in _NUMPY_SAFE or (module == "numpy.dtypes" and attr.endswith("DType")):
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None
    return None


def _reason(e: Exception) -> str:
    """The informative line of a (long) torch.load error message."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    useful = [line for line in lines if "got" in line or "Unsupported" in line]
    return (useful or lines or [type(e).__name__])[-1][:200]


def _torch_load(path: Path) -> Any:
    def load() -> Any:
        return torch.load(path, map_location="cpu", weights_only=True)

    try:
        return load()
    except pickle.UnpicklingError as e:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        except Exception:  # legacy (non-zip) files cannot be inspected
            raise CheckpointError(f"{path}: holds pickled objects bupose will not "
                                  f"unpickle ({_reason(e)})") from None
        found = {n: _numpy_global(n) for n in names}
        refused = sorted(n for n, obj in found.items() if obj is None)
        if refused:
            raise CheckpointError(
                f"{path}: holds pickled objects of types {refused}, which bupose does not "
                "unpickle (it never runs code from a checkpoint); re-save only the state_dict"
            ) from None
        allowed = list(found.values())
        if found:  # numpy dtypes unpickle through their DType classes, found only while loading
            import numpy.dtypes

            allowed += [getattr(numpy.dtypes, n) for n in dir(numpy.dtypes)
                        if n.endswith("DType") and isinstance(getattr(numpy.dtypes, n), type)]
        try:
            with torch.serialization.safe_globals(allowed):
                return load()
        except pickle.UnpicklingError as again:
            raise CheckpointError(f"{path}: holds pickled objects bupose will not unpickle "
                                  f"({_reason(again)})") from None


def read_file(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """The deserialised object of a ``.pth``/``.pt``/``.pth.tar``/``.safetensors`` file and the
    safetensors metadata ({} otherwise). Errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if path.suffix == ".safetensors":
            return _read_safetensors(path)
        return _torch_load(path), {}
    except CheckpointError:
        raise
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile,
            pickle.UnpicklingError, AttributeError, ImportError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({_reason(e)})") from None


def _read_safetensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            names = list(f.keys())  # noqa: SIM118 (safe_open is not a dict)
            return {k: f.get_tensor(k) for k in names}, dict(f.metadata() or {})
    except SafetensorError as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
