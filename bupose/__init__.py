"""bupose: bottom-up multi-person human pose estimation.

Public API (more arrives with the model, decoder and engine modules):
``KeypointSpec``, ``get_spec``, ``load_spec``; ``create_model``, ``list_models``,
``load_checkpoint`` (bupose.models); ``Predictor``, ``Poses`` (bupose.inference);
``OnnxPredictor`` (an exported network in onnxruntime, without torch).
"""

from bupose.structures.spec import KeypointSpec, get_spec, load_spec

__version__ = "0.1.0"

# Heavy (torch, onnxruntime) exports, imported on first use so that `import bupose` stays light.
_LAZY_EXPORTS = {
    "create_model": "bupose.models",
    "list_models": "bupose.models",
    "load_checkpoint": "bupose.models.checkpoint",
    "Predictor": "bupose.inference.predictor",
    "OnnxPredictor": "bupose.inference.onnx_predictor",
    "Poses": "bupose.inference.poses",
}


def __getattr__(name: str) -> object:  # PEP 562 module attribute hook
    if name in _LAZY_EXPORTS:
        import importlib

        return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    raise AttributeError(f"module 'bupose' has no attribute {name!r}")


__all__ = ["KeypointSpec", "__version__", "get_spec", "load_spec", *_LAZY_EXPORTS]
