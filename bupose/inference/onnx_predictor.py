"""The AE test pipeline on an exported network without PyTorch: onnxruntime + numpy + OpenCV.

``OnnxPredictor`` is ``Predictor``'s pipeline (``bupose.inference.ae_pipeline.AEPipeline``) with
the network an ONNX file written by ``bupose export`` and the test-time aggregation on numpy
arrays (``bupose.inference.tta`` takes either kind, with the same float operations); the
decoders are shared. Importing this module and running it never imports torch, whose import
alone costs ~1.6 s, so a one-image ``bupose infer --backend onnxruntime`` starts in well under
half the time of the PyTorch path.

    image (H,W,3) uint8 RGB
      -> for s in scales, largest first: resize_align (s) -> normalize -> session.run (+ mirror)
         -> tta (numpy): stage average, flip, project to base size, multi-scale average
      -> DecoderInputs (numpy) -> decode_maps (ae | hae) -> Poses (image frame)

The maps equal the PyTorch path's to float rounding (~1e-7 of the maps' scale: onnxruntime's
kernels and numpy's sums), so decoded people equal them except at near-ties.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bupose.errors import CheckpointError, ConfigError
from bupose.inference.ae_pipeline import AEPipeline
from bupose.inference.settings import TestSettings
from bupose.structures.outputs import StageOutput
from bupose.structures.spec import KeypointSpec


def open_session(path: Path, threads: int | None = None) -> tuple[Any, dict[str, Any]]:
    """An onnxruntime CPU session of an ONNX file written by ``bupose export``, and the bupose
    metadata stored in it (``bupose.export.export_header``).

    Args:
        path: the .onnx file.
        threads: intra-op threads (None: onnxruntime's default, one per physical core).

    Raises:
        ConfigError: onnxruntime is not installed.
        CheckpointError: the file is unreadable or has no bupose metadata (names the file).
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("running ONNX files needs onnxruntime: pip install 'bupose[export]'"
                          ) from None
    if not path.is_file():
        raise CheckpointError(f"{path}: no such exported model file")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: not a readable ONNX model ({e})") from None
    text = session.get_modelmeta().custom_metadata_map.get("bupose")
    if text is None:
        raise CheckpointError(f"{path}: no bupose metadata (not written by `bupose export`)")
    try:
        header = json.loads(text)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: malformed bupose metadata ({e})") from None
    return session, header


def check_input_size(path: Path, input_hw: Sequence[int], dynamic: bool,
                     shape: Sequence[int]) -> None:
    """ConfigError (naming the file) when a fixed-size export gets a (.., H, W) input of
    another size."""
    if not dynamic and tuple(shape[-2:]) != tuple(input_hw):
        h, w = input_hw
        raise ConfigError(f"{path}: exported for {h}x{w} inputs only, got {shape[-2]}x"
                          f"{shape[-1]}; export with --dynamic for other sizes")


class OnnxNetwork:
    """An exported pose network run by onnxruntime: float32 (B, 3, H, W) -> its output maps.

    Attributes:
        path: the file; header: its bupose metadata.
        layouts: ``StageOutput`` per output (lowest resolution first).
        spec: the keypoint spec recorded at export, or None.
        input_hw: the export (H, W); dynamic: whether other sizes are accepted.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session, self.header = open_session(self.path, threads)
        self._input = self.session.get_inputs()[0].name
        self.layouts = tuple(StageOutput(*s) for s in self.header.get("output_layout", ()))
        spec = self.header.get("spec")
        self.spec = KeypointSpec.from_dict(spec, source=str(self.path)) if spec else None
        self.input_hw = tuple(int(v) for v in self.header.get("input_hw", (0, 0)))
        self.dynamic = bool(self.header.get("dynamic", True))

    @property
    def is_ae(self) -> bool:
        """True for an associative-embedding network (tags, no offsets): what
        ``OnnxPredictor`` runs."""
        return (any(s.tag_channels for s in self.layouts)
                and not any(s.offset_channels for s in self.layouts))

    def __call__(self, images: np.ndarray) -> list[np.ndarray]:
        """images (B, 3, H, W) float32 normalised -> the outputs, (B, C_i, h_i, w_i) float32."""
        check_input_size(self.path, self.input_hw, self.dynamic, images.shape)
        array = np.ascontiguousarray(images, dtype=np.float32)
        return [np.asarray(o, dtype=np.float32) for o in self.session.run(None,
                                                                          {self._input: array})]


class OnnxPredictor(AEPipeline):
    """Image -> Poses with the official AE test pipeline on an ``OnnxNetwork`` (no torch): the
    ``Predictor`` interface (``AEPipeline``) with numpy maps.

    Args:
        network: the exported network (an AE model: ``network.is_ae``).
        settings: the test settings (default: the ones recorded at export, else the defaults).
        spec: keypoint spec (default: the exported model's).
    """

    def __init__(self, network: OnnxNetwork, settings: TestSettings | None = None,
                 spec: KeypointSpec | None = None) -> None:
        spec = spec or network.spec
        if spec is None:
            raise ConfigError(f"{network.path}: exported without a keypoint spec")
        if not network.is_ae:
            raise ConfigError(f"{network.path}: not an associative-embedding network (its "
                              "outputs have no tag channels); run it with --backend torch")
        header = network.header
        settings = settings or TestSettings.from_meta(header.get("test"),
                                                      header.get("input_size"))
        try:
            self._use(settings, spec, network.layouts)
        except ValueError as e:
            raise ConfigError(f"{network.path}: {e}") from None
        self.network = network

    @classmethod
    def from_file(cls, path: str | os.PathLike, threads: int | None = None,
                  **options: Any) -> OnnxPredictor:
        """A predictor of an exported ONNX file; ``options`` are test settings over the recorded
        ones (``bupose.inference.settings`` keys: decoder, flip, scales, input_size ...)."""
        network = OnnxNetwork(path, threads)
        header = network.header
        base = TestSettings.from_meta(header.get("test"), header.get("input_size"))
        return cls(network, base.replace(**options))

    @property
    def network_fn(self) -> OnnxNetwork:
        return self.network
