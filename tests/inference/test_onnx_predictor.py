"""OnnxPredictor (onnxruntime + numpy, no torch) against Predictor (PyTorch) on the same network:
the decoder inputs agree to float rounding for every test-time setting, and the people match."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bupose.errors import CheckpointError, ConfigError
from bupose.export import export_model
from bupose.inference.onnx_predictor import OnnxNetwork, OnnxPredictor
from bupose.inference.predictor import Predictor
from bupose.inference.pretrained import load_pretrained
from tests.conftest import SHARED_DATA

SAMPLES = SHARED_DATA / "samples" / "coco"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped default model and its dynamic ONNX export."""
    model = load_pretrained().eval()
    path = export_model(model, tmp_path_factory.mktemp("onnx") / "default.onnx", "onnx",
                        dynamic=True)
    return model, path


def _image(rng: np.random.Generator) -> np.ndarray:
    files = sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []
    if files:
        from bupose.utils.io import read_image

        return read_image(files[0])
    return rng.integers(0, 255, (150, 230, 3), dtype=np.uint8)


@pytest.mark.parametrize("options", [
    {}, {"flip": False}, {"scales": (2.0, 1.0, 0.5)}, {"project2image": False},
    {"scales": (1.0, 0.5), "project2image": False}, {"input_size": 160},
], ids=["default", "noflip", "multiscale", "noproject", "multiscale-noproject", "size160"])
def test_maps_match_pytorch(exported, rng, options):
    model, path = exported
    image = _image(rng)
    ours = OnnxPredictor.from_file(path, **options)
    ref = Predictor.from_pretrained(**options)
    a, b = ours.maps(image), ref.maps(image)
    assert isinstance(a.heatmaps, np.ndarray) and a.tags is not None and b.tags is not None
    scale = max(1.0, float(b.heatmaps.abs().max()))
    assert a.heatmaps.shape == tuple(b.heatmaps.shape)
    assert np.abs(a.heatmaps - b.heatmaps.numpy()).max() <= 1e-5 * scale
    tag_scale = max(1.0, float(b.tags.abs().max()))
    assert np.abs(a.tags - b.tags.numpy()).max() <= 1e-5 * tag_scale
    np.testing.assert_array_equal(a.center, b.center)
    np.testing.assert_array_equal(a.scale, b.scale)
    assert a.base_size == b.base_size
    pa, pb = ours.decode(a), ref.decode(b)
    assert len(pa) == len(pb)
    if len(pb):
        assert np.abs(pa.keypoints[..., :2] - pb.keypoints[..., :2]).max() <= 1e-3
        assert np.abs(pa.scores - pb.scores).max() <= 1e-5


def test_settings_and_spec_come_from_the_export(exported):
    model, path = exported
    predictor = OnnxPredictor.from_file(path, detection_threshold=0.3)
    assert predictor.spec.to_dict() == model.meta.spec.to_dict()
    assert predictor.settings.grouping.detection_threshold == 0.3
    assert predictor.settings.input_size == Predictor.from_pretrained().settings.input_size


def test_runs_without_torch(exported, rng):
    """A fresh interpreter predicts from the ONNX file and never imports torch."""
    _, path = exported
    code = ("import sys, numpy as np\n"
            "from bupose.inference.onnx_predictor import OnnxPredictor\n"
            f"p = OnnxPredictor.from_file({str(path)!r})\n"
            "image = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)\n"
            "poses = p(image)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n"
            "print(len(poses))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().isdigit()


def test_bad_inputs(exported, tmp_path):
    _, path = exported
    with pytest.raises(CheckpointError, match="no such exported model"):
        OnnxNetwork(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match=r"junk\.onnx: not a readable ONNX model"):
        OnnxNetwork(junk)
    predictor = OnnxPredictor.from_file(path)
    with pytest.raises(ValueError, match="uint8"):
        predictor.maps(np.zeros((32, 32, 3), np.float32))
    from bupose.structures.spec import get_spec

    with pytest.raises(ConfigError, match="predicts 17 keypoints but spec 'crowdpose14'"):
        OnnxPredictor(OnnxNetwork(path), spec=get_spec("crowdpose14"))


def test_static_export_refuses_other_sizes(tmp_path, rng):
    model = load_pretrained().eval()
    path = export_model(model, tmp_path / "static.onnx", "onnx", dynamic=False)
    network = OnnxNetwork(path)
    h, w = network.input_hw
    with pytest.raises(ConfigError, match="export with --dynamic"):
        network(np.zeros((1, 3, h, w + 32), np.float32))
    assert len(network(np.zeros((1, 3, h, w), np.float32))) == len(model.output_layout)

