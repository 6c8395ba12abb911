"""Run an exported network (``bupose export``) in place of the PyTorch model.

``load_exported(path)`` returns an ``ExportedModel``: an ``nn.Module`` without parameters whose
``forward(images (B, 3, H, W))`` runs the ONNX file with onnxruntime (or the TorchScript file)
and returns the outputs as CPU float tensors, in the order the exported model returned them.
It carries what the predictors read from a model: ``meta`` (``ModelMeta``, rebuilt from the
metadata stored at export), ``output_layout`` and integer attributes such as ``num_keypoints``,
so ``Predictor(load_exported("m.onnx"))`` runs the same test-time augmentation and decoders as
the PyTorch path.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bupose.errors import CheckpointError

Runner = Callable[[np.ndarray], list[np.ndarray]]


class ExportedModel(nn.Module):
    """An exported pose network behind the ``nn.Module`` interface of the bupose models.

    Args:
        runner: float32 (B, 3, H, W) array -> list of output arrays.
        header: the metadata written by ``bupose.export.export_header``.
        path: the file (for error messages).
        fmt: "onnx" or "torchscript".

    Attributes:
        meta: ``ModelMeta`` of the exported model (``source`` = fmt), or None when the exported
            model had none.
        output_layout: tuple of ``StageOutput`` (empty when the model had none).
        input_hw: the export (H, W); ``dynamic``: whether other sizes are accepted.
    """

    def __init__(self, runner: Runner, header: dict[str, Any], path: Path, fmt: str) -> None:
        super().__init__()
        from bupose.models.outputs import StageOutput

        self._runner, self.path, self.format = runner, path, fmt
        self.input_hw = tuple(int(v) for v in header.get("input_hw", (0, 0)))
        self.dynamic = bool(header.get("dynamic", True))
        self.output_layout = tuple(StageOutput(*s) for s in header.get("output_layout", ()))
        for name, value in dict(header.get("attributes") or {}).items():
            setattr(self, name, value)
        self.meta = _meta_from(header, fmt)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        """images (B, 3, H, W) float -> the exported model's outputs as float32 CPU tensors."""
        from bupose.inference.onnx_predictor import check_input_size

        check_input_size(self.path, self.input_hw, self.dynamic, tuple(images.shape))
        array = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return tuple(torch.from_numpy(np.asarray(o)) for o in self._runner(array))

    def run(self, images: Tensor) -> list[Tensor]:
        """``forward`` as a list (the shape ``bupose.export.check_parity`` compares)."""
        return list(self.forward(images))


def _meta_from(header: dict[str, Any], fmt: str) -> Any:
    from bupose.models.checkpoint import as_input_size
    from bupose.models.posenet import ModelMeta
    from bupose.structures.spec import KeypointSpec

    if "model" not in header:
        return None
    spec = header.get("spec")
    spec = KeypointSpec.from_dict(spec, source="exported model") if spec else None
    return ModelMeta(name=header["model"], kwargs=dict(header.get("model_kwargs") or {}),
                     spec=spec, input_size=as_input_size(header.get("input_size")),
                     test=dict(header.get("test") or {}), source=fmt)


def load_exported(path: str | Path, threads: int | None = None) -> ExportedModel:
    """An ``ExportedModel`` from an ONNX or TorchScript file written by ``bupose export``.

    Args:
        path: the file (ONNX protobuf or TorchScript zip; told apart by content).
        threads: onnxruntime intra-op threads (default ``torch.get_num_threads()``).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such exported model file")
    if zipfile.is_zipfile(path):
        return _load_torchscript(path)
    return _load_onnx(path, threads)


def _load_onnx(path: Path, threads: int | None) -> ExportedModel:
    from bupose.inference.onnx_predictor import open_session

    session, header = open_session(path, int(threads or torch.get_num_threads()))
    name = session.get_inputs()[0].name

    def run(images: np.ndarray) -> list[np.ndarray]:
        return list(session.run(None, {name: images}))

    return ExportedModel(run, header, path, "onnx")


def _load_torchscript(path: Path) -> ExportedModel:
    extra = {"bupose.json": ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # torch.jit raises RuntimeError subclasses of many kinds
        raise CheckpointError(f"{path}: not a readable TorchScript model ({e})") from None
    if not extra["bupose.json"]:
        raise CheckpointError(f"{path}: no bupose metadata (not written by `bupose export`)")
    module.eval()

    def run(images: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = module(torch.from_numpy(images))
        out = [out] if isinstance(out, Tensor) else list(out)
        return [o.numpy() for o in out]

    return ExportedModel(run, json.loads(extra["bupose.json"]), path, "torchscript")
