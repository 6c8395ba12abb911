"""``bupose infer --backend onnxruntime``: the network runs in onnxruntime from an ONNX export.

The export of the checkpoint the model flags name (the shipped default model when none) is made
once, checked against PyTorch (``bupose.export.check_parity``) and kept in
``$BUPOSE_CACHE/onnx/``, keyed by the checkpoint file (path, size, modification time), its
config, the --spec / --num-keypoints flags and the bupose version. ``--onnx FILE`` names an
export directly. For images and an AE model (HigherHRNet, HAE, fusion) the whole run then
imports no torch (``bupose.inference.onnx_predictor``): a one-image run starts ~2 s sooner
(README, Performance).
Videos, --batch, torchrun, top-down and SimplePose runs take the exported network through the
PyTorch test pipeline (``bupose.inference.onnx_backend``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from bupose.errors import CheckpointError, ConfigError


def uses_onnxruntime(args: argparse.Namespace) -> bool:
    """True when the network runs in onnxruntime (``--backend onnxruntime``)."""
    return getattr(args, "backend", "torch") == "onnxruntime"


def check_backend_args(args: argparse.Namespace) -> None:
    """Flags that ``--backend onnxruntime`` cannot honour are refused by name."""
    if getattr(args, "precision", "fp32") != "fp32":
        raise ConfigError(f"--backend onnxruntime runs fp32 only (got --precision "
                          f"{args.precision}); use --backend torch for bf16 / fp16")
    if str(getattr(args, "device", "cpu")) != "cpu":
        raise ConfigError(f"--backend onnxruntime runs on the CPU (got --device {args.device})")
    if args.onnx is None and args.checkpoint is None and args.model is not None:
        raise ConfigError(f"--backend onnxruntime needs weights: --model {args.model} without "
                          "--checkpoint is randomly initialised")


def onnx_file(args: argparse.Namespace, use_default: bool = True) -> Path:
    """The ONNX file of this run: ``--onnx FILE``, else the cached export of the model flags'
    checkpoint (with ``use_default``, the shipped default model when none is given; exported
    and parity-checked on first use, which imports torch)."""
    if uses_onnxruntime(args):
        check_backend_args(args)
    if args.onnx is not None:
        if args.checkpoint is not None or args.model is not None:
            raise ConfigError("--onnx FILE replaces --checkpoint / --model: give only one")
        return Path(args.onnx)
    from bupose import hub

    checkpoint = args.checkpoint
    if checkpoint is None and args.config is None and use_default:
        print(hub.default_model_note(), file=sys.stderr)
        checkpoint = hub.DEFAULT_MODEL
    if checkpoint is None:
        raise ConfigError("--backend onnxruntime needs a model with weights: --checkpoint "
                          "PATH|zoo:NAME|URL or --onnx FILE")
    found = hub.resolve_checkpoint(checkpoint)
    config = args.config or found.config
    key = _key(found.path, config, args)
    path = hub.cache_root() / "onnx" / f"{Path(found.path).stem}-{key}.onnx"
    if not path.is_file():
        _export(args, found.path, config, path)
    return path


def _key(weights: Path, config: Path | None, args: argparse.Namespace) -> str:
    """What identifies an export: the weights and config files as they are now, the flags that
    change the model's metadata, and the bupose version."""
    from bupose import __version__

    def stamp(p: Path | None) -> list[Any] | None:
        if p is None:
            return None
        st = Path(p).stat()
        return [str(Path(p).resolve()), st.st_size, st.st_mtime_ns]

    try:
        parts = [__version__, stamp(weights), stamp(config), args.model,
                 getattr(args, "spec", None), getattr(args, "num_keypoints", None)]
    except OSError as e:
        raise CheckpointError(f"{e.filename}: {e.strerror}") from None
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def _export(args: argparse.Namespace, weights: Path, config: Path | None, path: Path) -> None:
    """Export the checkpoint (dynamic H/W), check parity, keep it only when it passes."""
    from bupose.cli.common import model_from_args
    from bupose.export import check_parity, export_model, input_hw, parity_sizes

    given = argparse.Namespace(**vars(args))
    given.checkpoint, given.config = weights, config
    model = model_from_args(given).eval()
    print(f"exporting {weights} to ONNX (once; cached as {path})", file=sys.stderr)
    hw = input_hw(model)
    tmp = path.with_name(path.name + f".{os.getpid()}.part")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        export_model(model, tmp, "onnx", hw, dynamic=True)
        result = check_parity(model, tmp, parity_sizes(hw, True))
        if not result.ok():
            raise CheckpointError(f"{weights}: the ONNX export differs from PyTorch "
                                  f"({result.describe()}); use --backend torch")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def torch_free_predictor(args: argparse.Namespace, path: Path) -> Any | None:
    """An ``OnnxPredictor`` with the run's test settings, or None when the file is not an AE
    ONNX network (then the PyTorch pipeline runs it)."""
    if zipfile.is_zipfile(path):  # TorchScript
        return None
    from bupose.cli.infer_cmd import settings_flags
    from bupose.inference.onnx_predictor import OnnxNetwork, OnnxPredictor
    from bupose.inference.settings import TestSettings
    from bupose.structures.spec import load_spec

    network = OnnxNetwork(path)
    if not network.is_ae:
        return None
    spec = load_spec(args.spec) if getattr(args, "spec", None) else None
    base = TestSettings.from_meta(network.header.get("test"), network.header.get("input_size"))
    return OnnxPredictor(network, base.replace(**settings_flags(args)), spec)


def fast_predictor(args: argparse.Namespace) -> Any | None:
    """The torch-free predictor of an image run with ``--backend onnxruntime`` or ``--onnx FILE``
    (fp32 on the CPU, an AE network in an ONNX file), else None (the PyTorch pipeline runs)."""
    from bupose.utils.threads import quiet_numba_threads

    if not uses_onnxruntime(args):
        plain = getattr(args, "precision", "fp32") == "fp32" and str(args.device) == "cpu"
        if args.onnx is None or not plain:
            return None
    quiet_numba_threads()
    return torch_free_predictor(args, onnx_file(args))
