"""`bupose infer --backend onnxruntime`: the checkpoint is exported once into the cache, then
image runs import no torch and give the PyTorch run's people; flags onnxruntime cannot honour
are refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bupose.cli import main
from bupose.cli.infer_onnx import _key
from tests.cli.test_infer_stream import assert_same_poses
from tests.conftest import SHARED_DATA, require

SAMPLES = SHARED_DATA / "samples" / "coco"
# the same code as `python -m bupose`, then a check that torch and all of scipy.optimize (see
# bupose.decoders.lsap) were never imported
RUN_NO_TORCH = ("import sys\nfrom bupose.cli import main\ncode = main(sys.argv[1:])\n"
                "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH',\n"
                "      'OPTIMIZE' if 'scipy.optimize' in sys.modules else 'NO-OPTIMIZE')\n"
                "sys.exit(code)\n")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BUPOSE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _run_fresh(argv: list[str], cache_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "BUPOSE_CACHE": str(cache_dir)}
    return subprocess.run([sys.executable, "-c", RUN_NO_TORCH, *argv], env=env,
                          capture_output=True, text=True, timeout=600)


def test_export_once_then_torch_free_and_equal(cache, tmp_path):
    images = require(SAMPLES)
    torch_json, ort_json = tmp_path / "torch.json", tmp_path / "ort.json"
    assert main(["infer", str(images), "--json", str(torch_json)]) == 0
    first = _run_fresh(["infer", str(images), "--backend", "onnxruntime", "--json",
                        str(ort_json)], cache)
    assert first.returncode == 0, first.stderr
    assert "exporting" in first.stderr and first.stdout.split()[0] == "TORCH"
    exports = list((cache / "onnx").glob("*.onnx"))
    assert len(exports) == 1 and not list((cache / "onnx").glob("*.part"))
    assert_same_poses(json.loads(ort_json.read_text()), json.loads(torch_json.read_text()))
    ort_json.unlink()
    second = _run_fresh(["infer", str(images), "--backend", "onnxruntime", "--json",
                         str(ort_json)], cache)
    assert second.returncode == 0, second.stderr
    assert "exporting" not in second.stderr
    assert second.stdout.split() == ["NO-TORCH", "NO-OPTIMIZE"]
    assert_same_poses(json.loads(ort_json.read_text()), json.loads(torch_json.read_text()))
    assert list((cache / "onnx").glob("*.onnx")) == exports


def test_cache_key_follows_the_weights(tmp_path):
    import argparse

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"a")
    args = argparse.Namespace(model=None, spec=None, num_keypoints=None)
    key = _key(weights, None, args)
    assert _key(weights, None, args) == key
    weights.write_bytes(b"ab")  # another size
    assert _key(weights, None, args) != key
    assert _key(weights, None, argparse.Namespace(model=None, spec="crowdpose14",
                                                 num_keypoints=None)) != _key(weights, None, args)


@pytest.mark.parametrize("flags, message", [
    (["--precision", "bf16"], "--backend onnxruntime runs fp32 only"),
    (["--device", "cuda"], "runs on the CPU"),
    (["--model", "higherhrnet_w32_512"], "needs weights"),
])
def test_flags_it_cannot_honour(cache, rng, tmp_path, capsys, flags, message):
    import cv2

    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    assert main(["infer", str(image), "--backend", "onnxruntime", *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (cache / "onnx").exists()


def test_onnx_file_errors_name_the_file(cache, rng, tmp_path, capsys):
    import cv2

    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x08\x01garbage")
    assert main(["infer", str(image), "--onnx", str(junk)]) == 2
    assert f"{junk}: not a readable ONNX model" in capsys.readouterr().err


def test_batch_runs_the_cached_export_through_the_torch_pipeline(cache, tmp_path):
    """--batch takes the streaming loop: the exported network behind the PyTorch test pipeline
    gives the PyTorch run's people too."""
    images = require(SAMPLES)
    ref, ours = tmp_path / "ref.json", tmp_path / "ours.json"
    assert main(["infer", str(images), "--batch", "2", "--json", str(ref)]) == 0
    assert main(["infer", str(images), "--batch", "2", "--backend", "onnxruntime",
                 "--json", str(ours)]) == 0
    assert len(list((cache / "onnx").glob("*.onnx"))) == 1
    assert_same_poses(json.loads(ours.read_text()), json.loads(ref.read_text()))
