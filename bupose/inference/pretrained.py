"""What ``Predictor.from_pretrained`` loads: a model from a name, a path or a URL.

Accepted: None or "default" (the model shipped in the package, ``bupose.hub.DEFAULT_MODEL``), a
zoo entry name with or without ``zoo:`` (downloaded into the cache with its config), an http(s)
URL (cached) or a checkpoint file (any format ``load_checkpoint`` reads).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import ConfigError


def load_pretrained(name_or_path: str | os.PathLike | None = None, spec: Any = None,
                    config: str | os.PathLike | None = None, progress: bool = True) -> Any:
    """The model (eval mode, ``.meta`` with spec and test settings) ``name_or_path`` names.

    Args:
        name_or_path: see the module docstring.
        spec: a ``KeypointSpec`` overriding the checkpoint's.
        config: an official experiment YAML (official HigherHRNet weights given as a file).
        progress: show download progress bars.
    """
    from bupose import hub
    from bupose.models.checkpoint import load_checkpoint

    text = "default" if name_or_path is None else os.fspath(name_or_path)
    if text == "default":
        found = hub.Resolved(hub.DEFAULT_MODEL)
    elif text in hub.ZOO:
        found = hub.resolve_checkpoint(f"zoo:{text}", progress)
    elif hub.is_remote(text) or Path(text).exists():
        found = hub.resolve_checkpoint(text, progress)
    else:
        raise ConfigError(f"{text!r} is neither a zoo model (`bupose models --zoo`), a URL nor "
                          "an existing checkpoint file")
    return load_checkpoint(found.path, config or found.config, spec=spec)


def as_image(image_or_path: Any) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from an array or an image file path (``read_image``)."""
    if isinstance(image_or_path, (str, os.PathLike)):
        from bupose.utils.io import read_image

        return read_image(image_or_path)
    return image_or_path
