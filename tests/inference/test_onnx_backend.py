"""ExportedModel / load_exported: the exported file behind the model interface, and the errors
for files that are not bupose exports."""

from __future__ import annotations

import io

import onnx
import pytest
import torch
from torch import nn

from bupose.errors import CheckpointError
from bupose.export import export_model
from bupose.inference.onnx_backend import load_exported


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


def test_module_interface(tmp_path):
    model = Net().eval()
    path = export_model(model, tmp_path / "n.onnx", "onnx", 32)
    exported = load_exported(path).to("cpu").eval()
    assert list(exported.parameters()) == []
    x = torch.randn(2, 3, 32, 32)
    (out,) = exported(x)
    assert out.dtype == torch.float32
    assert torch.allclose(out, model(x), atol=1e-5)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such exported model"):
        load_exported(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        load_exported(junk)
    plain = tmp_path / "plain.onnx"  # a valid ONNX file without the bupose metadata
    buffer = io.BytesIO()
    torch.onnx.export(Net().eval(), (torch.zeros(1, 3, 8, 8),), buffer, dynamo=False)
    onnx.save(onnx.load_from_string(buffer.getvalue()), str(plain))
    with pytest.raises(CheckpointError, match="no bupose metadata"):
        load_exported(plain)
