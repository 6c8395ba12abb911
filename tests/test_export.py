"""bupose.export: ONNX / TorchScript files of the official tiny HigherHRNet and of a generic
tensor-returning module, checked against PyTorch at the 1e-4 parity tolerance."""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from bupose.errors import ConfigError
from bupose.export import (
    PARITY_TOLERANCE,
    check_parity,
    export_model,
    input_hw,
    parity_sizes,
)
from bupose.inference.onnx_backend import load_exported
from tests.conftest import FIXTURES, require

TINY = FIXTURES / "tiny"


@pytest.fixture(scope="module")
def tiny_model():
    from bupose.models import load_checkpoint

    torch.set_num_threads(1)
    return load_checkpoint(require(TINY / "tiny_model.pth"), require(TINY / "tiny_config.yaml"))


class TwoHeads(nn.Module):
    """Not a bupose model: no meta, a 5-D and a 4-D output (the SimplePose output shapes)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, stride=4, padding=1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(images)
        return y.reshape(y.shape[0], 2, 3, y.shape[2], y.shape[3]), torch.sigmoid(y[:, :2])


def test_onnx_fixed_size_parity_and_metadata(tiny_model, tmp_path):
    path = export_model(tiny_model, tmp_path / "m.onnx", "onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [3, 256, 256]  # the checkpoint's input size, H and W fixed
    result = check_parity(tiny_model, path, parity_sizes((256, 256), False), batch=2)
    assert result.ok() and result.worst <= PARITY_TOLERANCE
    exported = load_exported(path)
    assert exported.meta.name == tiny_model.meta.name
    assert exported.meta.spec == tiny_model.meta.spec
    assert exported.meta.test == tiny_model.meta.test
    assert exported.output_layout == tiny_model.output_layout
    assert exported.num_keypoints == 17 and not exported.dynamic
    with pytest.raises(ConfigError, match="256x256 inputs only"):
        exported(torch.zeros(1, 3, 256, 320))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_torchscript_dynamic_parity(tiny_model, tmp_path):
    path = export_model(tiny_model, tmp_path / "m.pt", "torchscript", 256, dynamic=True)
    result = check_parity(tiny_model, path, [(256, 384), (320, 192)])
    assert result.ok(), result.describe()
    exported = load_exported(path)
    assert exported.format == "torchscript" and exported.meta.source == "torchscript"


def test_generic_module_dynamic_onnx(tmp_path):
    model = TwoHeads().eval()
    path = export_model(model, tmp_path / "g.onnx", "onnx", (64, 96), dynamic=True)
    result = check_parity(model, path, parity_sizes((64, 96), True), batch=3)
    assert result.shapes == ((3, 3, 64, 96), (3, 3, 64, 192))
    assert result.ok(), result.describe()
    exported = load_exported(path)
    assert exported.meta is None
    assert [tuple(o.shape) for o in exported(torch.zeros(2, 3, 32, 48))] == [
        (2, 2, 3, 8, 12), (2, 2, 8, 12)]


def test_input_size_and_errors(tiny_model, tmp_path):
    assert input_hw(tiny_model) == (256, 256)
    assert input_hw(tiny_model, (64, 48)) == (64, 48)
    with pytest.raises(ConfigError, match="no input size"):
        input_hw(TwoHeads())
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(TwoHeads(), tmp_path / "x", "tflite", 64)
    assert not (tmp_path / "x").exists()
