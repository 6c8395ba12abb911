"""`bupose infer` beyond one image at a time, with the official tiny HigherHRNet on the COCO
sample images: an exported ONNX network (`infer --onnx`), `--batch`, videos with `--track` and
`--draw`, and a 2-process torchrun run, each against the plain single-process PyTorch run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bupose.cli import main
from tests.conftest import FIXTURES, ROOT, SHARED, SHARED_DATA, require
from tests.inference.test_video import FPS, make_clip, read_video

TINY = FIXTURES / "tiny"
SAMPLES = SHARED_DATA / "samples" / "coco"


def _model_args() -> list[str]:
    return ["--checkpoint", str(require(TINY / "tiny_model.pth")),
            "--official-config", str(require(TINY / "tiny_config.yaml"))]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The plain `bupose infer` results on the four sample images (official YAML settings); the
    module's tests run single-threaded, as the reference, and later modules get the thread count
    back."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "ref.json"
    assert main(["infer", str(require(SAMPLES)), *_model_args(), "--json", str(out)]) == 0
    yield json.loads(out.read_text())
    torch.set_num_threads(threads)


def assert_same_poses(ours: list[dict], ref: list[dict]) -> None:
    """Same entries in the same order: image ids and file names equal, keypoints within 1e-3 px
    and heatmap values / scores within 1e-6 (the e2e tolerances of the fixtures README)."""
    assert len(ours) == len(ref) and len(ref) > 0
    for a, b in zip(ours, ref):
        assert (a["image_id"], a["file_name"]) == (b["image_id"], b["file_name"])
        ka, kb = np.reshape(a["keypoints"], (-1, 3)), np.reshape(b["keypoints"], (-1, 3))
        assert np.abs(ka[:, :2] - kb[:, :2]).max() <= 1e-3
        assert np.abs(ka[:, 2] - kb[:, 2]).max() <= 1e-6
        assert abs(a["score"] - b["score"]) <= 1e-6


def test_infer_onnx_equals_pytorch(reference, tmp_path, capsys):
    model = tmp_path / "tiny.onnx"
    assert main(["export", *_model_args(), "--format", "onnx", "--out", str(model),
                 "--dynamic"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(": ok")
    out = tmp_path / "onnx.json"
    assert main(["infer", str(SAMPLES), "--onnx", str(model), "--json", str(out)]) == 0
    assert_same_poses(json.loads(out.read_text()), reference)


def test_batch_equals_one_at_a_time(reference, tmp_path):
    out = tmp_path / "batch.json"
    assert main(["infer", str(SAMPLES), *_model_args(), "--batch", "3", "--json", str(out)]) == 0
    assert_same_poses(json.loads(out.read_text()), reference)


def test_onnx_and_checkpoint_together_is_an_error(tmp_path, capsys):
    code = main(["infer", str(require(SAMPLES)), *_model_args(), "--onnx", str(tmp_path / "m"),
                 "--batch", "2"])
    assert code == 2 and "--onnx FILE replaces" in capsys.readouterr().err


def test_video_track_draw(tmp_path):
    clip = tmp_path / "walk.mp4"
    frames = len(make_clip(clip, num_frames=4, size=(192, 128)))
    out, drawn = tmp_path / "video.json", tmp_path / "drawn"
    argv = ["infer", str(clip), *_model_args(), "--no-flip", "--batch", "3", "--track",
            "--json", str(out), "--draw", str(drawn)]
    assert main(argv) == 0
    entries = json.loads(out.read_text())
    assert [e["frame"] for e in entries] == list(range(frames))
    assert [e["time_s"] for e in entries] == pytest.approx(np.arange(frames) / FPS)
    people = [p for e in entries for p in e["people"]]
    assert people and all(len(p["keypoints"]) == 51 for p in people)
    for e in entries:  # ids are unique within a frame
        ids = [p["track_id"] for p in e["people"]]
        assert len(set(ids)) == len(ids)
    video = read_video(drawn / "walk.mp4")
    assert len(video) == frames and video[0].shape == (128, 192, 3)
    assert sorted(p.name for p in drawn.iterdir()) == ["walk.mp4"]


def test_torchrun_two_processes_equal_one(reference, tmp_path):
    """Sharded over 2 processes: the results file of a single-process run, byte for byte (both
    runs in fresh processes, as a user runs them), and the in-process reference to rounding."""
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    infer = ["-m", "bupose", "infer", str(SAMPLES), *_model_args()]
    single = tmp_path / "single.json"
    done = subprocess.run([sys.executable, *infer, "--json", str(single)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "sharded.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
           "2", *infer, "--json", str(out), "--save-maps", str(tmp_path / "maps")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "over 2 processes" in done.stderr
    assert out.read_bytes() == single.read_bytes()
    assert_same_poses(json.loads(out.read_text()), reference)
    assert len(list((tmp_path / "maps").glob("*.npz"))) == 4  # both ranks wrote theirs


@pytest.mark.parametrize("family", ["offsets", "topdown"])
def test_infer_onnx_other_families(tmp_path, family):
    """The exported SimplePose (OffsetGuided tiny) and CAL (tiny, GT boxes) networks give the
    PyTorch results through the families' own predictors."""
    if family == "offsets":
        model = ["--checkpoint", str(require(SHARED / "fixtures" / "official_offsetguided" / "tiny"
                                             / "tiny_checkpoint.pth"))]
        images, extra, dynamic = [str(require(SAMPLES / "000000000785.jpg"))], [], ["--dynamic"]
    else:
        cal = SHARED / "fixtures" / "official_cal" / "tiny"
        model = ["--checkpoint", str(require(cal / "tiny_model.pth")),
                 "--official-config", str(require(cal / "tiny_config.yaml"))]
        images, dynamic = [str(SAMPLES)], []
        extra = ["--boxes", "gt", "--annotations", str(require(SAMPLES / "test_coco.json"))]
    exported = tmp_path / "m.onnx"
    assert main(["export", *model, "--out", str(exported), *dynamic]) == 0
    ref, ours = tmp_path / "ref.json", tmp_path / "onnx.json"
    assert main(["infer", *images, *model, *extra, "--json", str(ref)]) == 0
    assert main(["infer", *images, "--onnx", str(exported), *extra, "--json", str(ours)]) == 0
    assert_same_poses(json.loads(ours.read_text()), json.loads(ref.read_text()))


def test_video_simplepose_avi(tmp_path):
    """A SimplePose model on an .avi clip: its own predictor per frame, tracked."""
    clip = tmp_path / "walk.avi"
    frames = len(make_clip(clip, num_frames=3, size=(160, 128)))
    ckpt = require(SHARED / "fixtures" / "official_offsetguided" / "tiny" / "tiny_checkpoint.pth")
    out = tmp_path / "v.json"
    assert main(["infer", str(clip), "--checkpoint", str(ckpt), "--track", "--json", str(out),
                 "--max-frames", "2"]) == 0
    entries = json.loads(out.read_text())
    assert [e["frame"] for e in entries] == [0, 1] and frames == 3
    assert all("track_id" in p for e in entries for p in e["people"])


def test_stream_argument_errors(tmp_path, capsys):
    image = str(require(SAMPLES / "000000000785.jpg"))
    assert main(["infer", image, *_model_args(), "--track"]) == 2
    assert "--track needs a video" in capsys.readouterr().err
    assert main(["infer", image, *_model_args(), "--batch", "0"]) == 2
    assert "--batch must be >= 1" in capsys.readouterr().err
    clip = tmp_path / "c.mp4"
    make_clip(clip, num_frames=1, size=(64, 64))
    assert main(["infer", image, str(clip), *_model_args()]) == 2
    assert "either images or videos" in capsys.readouterr().err


@pytest.mark.parametrize("preset", [None, "omp"])
def test_quiet_numba_threads(preset):
    """workqueue unless the user chose a layer (fresh process: numba has started none)."""
    code = ("import numba; from bupose.utils.threads import quiet_numba_threads; "
            "quiet_numba_threads(); print(numba.config.THREADING_LAYER)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if preset:
        env["NUMBA_THREADING_LAYER"] = preset
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == (preset or "workqueue")
