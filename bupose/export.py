"""Export a pose network to ONNX or TorchScript, with a parity check against PyTorch.

The exported file holds the network only (images in, the model's output tensors out); test-time
augmentation and decoding stay in Python (``bupose infer --onnx FILE`` runs the file with
onnxruntime through the same ``Predictor``). Any ``nn.Module`` whose ``forward(images)``
returns a tensor or a tuple of tensors can be exported, so every family (ae, offsets, topdown)
works.

    images (B, 3, H, W) float32, normalised  ->  out0, out1, ... (the model's outputs, in order)

The batch axis is always dynamic; H and W are fixed to the export size unless ``dynamic``.
The model's metadata (``ModelMeta`` as a bupose checkpoint header, plus the output layout, the
input shape and a few integer attributes such as ``num_keypoints``) travels inside the file:
ONNX ``metadata_props["bupose"]``, TorchScript extra file ``bupose.json``.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from bupose.errors import ConfigError

FORMATS = ("onnx", "torchscript")
META_KEY = "bupose"  # ONNX metadata_props key / TorchScript extra file stem
PARITY_TOLERANCE = 1e-4  # max |exported - PyTorch| over every output map
# integer / bool attributes of the families' models that decoders and predictors read
_ATTRIBUTES = ("num_keypoints", "num_limbs", "num_stacks", "with_scale")


@dataclass(frozen=True)
class ParityResult:
    """Max |exported - PyTorch| over every output, per checked input shape (B, 3, H, W)."""

    shapes: tuple[tuple[int, int, int, int], ...]
    max_abs_diff: tuple[float, ...]

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff)

    def ok(self, tolerance: float = PARITY_TOLERANCE) -> bool:
        return self.worst <= tolerance

    def describe(self, tolerance: float = PARITY_TOLERANCE) -> str:
        parts = [f"{h}x{w}: {d:.3g}" for (_, _, h, w), d in zip(self.shapes, self.max_abs_diff)]
        verdict = "ok" if self.ok(tolerance) else "FAILED"
        return f"parity max |diff| {', '.join(parts)} (tolerance {tolerance:g}): {verdict}"


def input_hw(model: nn.Module, input_size: int | Sequence[int] | None = None) -> tuple[int, int]:
    """The export input (H, W): ``input_size`` (N -> (N, N), or (H, W)), else the model's
    ``meta.input_size`` (a square for bottom-up models, the (h, w) crop for top-down ones)."""
    size = input_size if input_size is not None else getattr(
        getattr(model, "meta", None), "input_size", None)
    if size is None:
        raise ConfigError("no input size: pass --input-size N (the model has no meta)")
    h, w = (int(size), int(size)) if isinstance(size, (int, np.integer)) else map(int, size)
    if h < 8 or w < 8:
        raise ConfigError(f"input size {h}x{w} is too small")
    return h, w


def outputs_of(model: nn.Module, images: Tensor) -> list[Tensor]:
    """The model's outputs on ``images`` as a list of tensors (a single tensor becomes [it])."""
    try:
        with torch.inference_mode():
            out = model(images)
    except (RuntimeError, ValueError) as e:  # e.g. an input size the architecture cannot take
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"the model cannot run on a {images.shape[-2]}x{images.shape[-1]} "
                          f"input: {reason}") from None
    if isinstance(out, Tensor):
        return [out]
    if not isinstance(out, (tuple, list)) or not all(isinstance(o, Tensor) for o in out):
        raise ConfigError(f"cannot export: the model returns {type(out).__name__}, not tensors")
    return list(out)


def export_header(model: nn.Module, hw: tuple[int, int], dynamic: bool,
                  num_outputs: int) -> dict[str, Any]:
    """The JSON metadata stored in the exported file (see the module docstring)."""
    meta = getattr(model, "meta", None)
    header: dict[str, Any] = {
        "format_version": 1, "input_hw": list(hw), "dynamic": bool(dynamic),
        "num_outputs": num_outputs,
        "output_layout": [list(s) for s in getattr(model, "output_layout", ())],
        "attributes": {a: getattr(model, a) for a in _ATTRIBUTES
                       if isinstance(getattr(model, a, None), (bool, int))},
    }
    if meta is not None:
        size = meta.input_size
        header.update(model=meta.name, model_kwargs=meta.kwargs,
                      spec=meta.spec.to_dict() if meta.spec else None,
                      input_size=list(size) if isinstance(size, tuple) else size,
                      test=meta.test, source=meta.source)
    return header


def export_model(model: nn.Module, out: str | Path, fmt: str,
                 input_size: int | Sequence[int] | None = None, dynamic: bool = False,
                 opset: int = 17) -> Path:
    """Write ``model`` to ``out`` (atomically) as ONNX or TorchScript.

    Args:
        model: images (B, 3, H, W) -> tensor(s); put in eval mode here.
        out: the file to write.
        fmt: "onnx" or "torchscript".
        input_size: export (H, W) or N for N x N; default the model's ``meta.input_size``.
        dynamic: H and W free (the batch axis is always free).
        opset: ONNX opset.

    Returns:
        The written path.
    """
    from bupose.utils.io import atomic_write

    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    model = model.eval()
    hw = input_hw(model, input_size)
    example = example_input(hw)
    outputs = outputs_of(model, example)
    header = export_header(model, hw, dynamic, len(outputs))
    if fmt == "onnx":
        data = _onnx_bytes(model, example, outputs, header, dynamic, opset)
    else:
        data = _torchscript_bytes(model, example, header)
    return atomic_write(Path(out), lambda f: f.write(data))


def example_input(hw: tuple[int, int], batch: int = 1, seed: int = 0) -> Tensor:
    """A reproducible normalised-image-like input (B, 3, H, W): N(0, 1) values."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, hw[0], hw[1], generator=g)


def _onnx_bytes(model: nn.Module, example: Tensor, outputs: list[Tensor],
                header: dict[str, Any], dynamic: bool, opset: int) -> bytes:
    import onnx

    names = [f"out{i}" for i in range(len(outputs))]
    axes: dict[str, dict[int, str]] = {"images": {0: "batch"}}
    if dynamic:
        axes["images"].update({2: "height", 3: "width"})
    for name, o in zip(names, outputs):
        axes[name] = {0: "batch"}
        if dynamic:  # the last two axes of every output are spatial
            axes[name].update({o.ndim - 2: f"{name}_height", o.ndim - 1: f"{name}_width"})
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notes
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=names, dynamic_axes=axes)
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(header)
    return proto.SerializeToString()


def _torchscript_bytes(model: nn.Module, example: Tensor, header: dict[str, Any]) -> bytes:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (example,), check_trace=False, strict=False)
    buffer = io.BytesIO()
    torch.jit.save(traced, buffer, _extra_files={f"{META_KEY}.json": json.dumps(header)})
    return buffer.getvalue()


def check_parity(model: nn.Module, path: str | Path, sizes: Sequence[tuple[int, int]],
                 batch: int = 1) -> ParityResult:
    """Run the exported file and ``model`` on the same inputs (``example_input`` of each size).

    Returns:
        The max |difference| over every element of every output, per size.
    """
    from bupose.inference.onnx_backend import load_exported

    exported = load_exported(path)
    shapes, diffs = [], []
    for n, hw in enumerate(sizes):
        images = example_input(hw, batch, seed=n)
        ours = outputs_of(model.eval(), images)
        theirs = exported.run(images)
        if len(ours) != len(theirs):
            raise ConfigError(f"{path}: {len(theirs)} outputs, the model has {len(ours)}")
        diff = max(float((a.float() - b.float()).abs().max()) if a.numel() else 0.0
                   for a, b in zip(ours, theirs))
        shapes.append((batch, 3, hw[0], hw[1]))
        diffs.append(diff)
    return ParityResult(tuple(shapes), tuple(diffs))


def parity_sizes(hw: tuple[int, int], dynamic: bool) -> list[tuple[int, int]]:
    """The export size, and for a dynamic export also (H, 2W) (a different aspect ratio that any
    network accepting (H, W) accepts)."""
    return [hw, (hw[0], 2 * hw[1])] if dynamic else [hw]
