"""Video sources, per-frame results, the annotated video and tracking through ``process_video``
on a generated clip of synthetic people walking across the frame (``make_clip``); the poses come
from the clip's ground truth (an oracle ``predict``), so nothing depends on a trained model."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bupose.errors import DataError
from bupose.inference.poses import Poses
from bupose.inference.track import PoseTracker
from bupose.inference.video import (
    AtomicVideoWriter,
    Source,
    expand_sources,
    needs_streaming,
    process_video,
)
from bupose.structures.spec import get_spec

FPS = 10.0


def make_clip(path: Path, num_frames: int = 12, size: tuple[int, int] = (256, 160),
              num_people: int = 2, seed: int = 0) -> np.ndarray:
    """Write an mp4v clip of ``num_people`` synthetic people walking left / right and return
    their ground-truth keypoints (num_frames, num_people, 17, 3) [x, y, 2] in frame pixels."""
    from bupose.data.synth.body import build_body, sample_pose
    from bupose.data.synth.render import draw_background, draw_person, sample_clothing

    rng = np.random.default_rng(seed)
    w, h = size
    background = draw_background(rng, h, w)
    poses = [sample_pose(rng) for _ in range(num_people)]
    clothes = [sample_clothing(rng) for _ in range(num_people)]
    start = np.linspace(0.25, 0.75, num_people) * w
    step = np.where(np.arange(num_people) % 2 == 0, 1.0, -1.0) * 0.02 * w
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h))
    truth = np.zeros((num_frames, num_people, 17, 3), np.float32)
    for t in range(num_frames):
        image, label = background.copy(), np.zeros((h, w), np.int32)
        for n in range(num_people):
            body = build_body(poses[n], (start[n] + step[n] * t, 0.62 * h), 0.55 * h)
            draw_person(image, label, body, clothes[n], n)
            truth[t, n, :, :2], truth[t, n, :, 2] = body.keypoints, 2.0
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    return truth


def oracle(truth: np.ndarray, order: list[int] | None = None):
    """A ``predict`` returning the ground truth of the frames in call order (people listed in a
    shuffled order per frame so that ids cannot come from the list order)."""
    state = {"frame": 0}
    rng = np.random.default_rng(1)

    def predict(frames: list[np.ndarray]) -> list[Poses]:
        out = []
        for _ in frames:
            kps = truth[state["frame"]][rng.permutation(truth.shape[1])]
            out.append(Poses(kps, np.ones(len(kps), np.float32)))
            state["frame"] += 1
        return out

    return predict


def read_video(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "walk.mp4"
    return path, make_clip(path)


@pytest.mark.parametrize("batch", [1, 5])
def test_frames_json_video_and_tracks(clip, tmp_path, batch):
    path, truth = clip
    spec = get_spec("coco17")
    out = tmp_path / "drawn" / "walk.mp4"
    entries = process_video(Source("video", path), oracle(truth), spec, batch=batch, draw=out,
                            tracker=PoseTracker(spec.sigmas), progress=False)
    assert [e["frame"] for e in entries] == list(range(len(truth)))
    assert [e["time_s"] for e in entries] == pytest.approx(np.arange(len(truth)) / FPS)
    assert all(e["video"] == "walk.mp4" and len(e["people"]) == 2 for e in entries)
    # the same person keeps one id: match each track's first pose to the ground truth
    first = {p["track_id"]: np.reshape(p["keypoints"], (17, 3)) for p in entries[0]["people"]}
    assert sorted(first) == [0, 1]
    who = {tid: int(np.argmin([np.abs(kps[:, :2] - t[:, :2]).max() for t in truth[0]]))
           for tid, kps in first.items()}
    for e, frame_truth in zip(entries, truth):
        for p in e["people"]:
            kps = np.reshape(p["keypoints"], (17, 3))
            assert np.allclose(kps, frame_truth[who[p["track_id"]]])
    frames = read_video(out)  # the annotated video reads back, frame for frame
    assert len(frames) == len(truth) and frames[0].shape == (160, 256, 3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["walk.mp4"]


def test_failed_run_leaves_no_video(clip, tmp_path):
    path, _ = clip

    def broken(frames):
        raise RuntimeError("boom")

    out = tmp_path / "v.mp4"
    with pytest.raises(RuntimeError):
        process_video(Source("video", path), broken, get_spec("coco17"), draw=out,
                      progress=False)
    assert list(tmp_path.iterdir()) == []


def test_writer_is_atomic(tmp_path):
    writer = AtomicVideoWriter(tmp_path / "a.mp4", 5.0, (64, 48))
    writer.write(np.zeros((48, 64, 3), np.uint8))
    assert not (tmp_path / "a.mp4").exists() and writer.partial.exists()
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]
    assert len(read_video(tmp_path / "a.mp4")) == 1


def test_expand_sources(clip, tmp_path):
    path, _ = clip
    for name in ("b.jpg", "a.png"):
        cv2.imwrite(str(tmp_path / name), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    got = expand_sources([str(tmp_path / "*.*g"), "0", path, tmp_path])
    assert [(s.kind, s.name) for s in got] == [
        ("image", "a.png"), ("image", "b.jpg"), ("webcam", "webcam0"), ("video", "walk.mp4"),
        ("image", "a.png"), ("image", "b.jpg")]
    assert not needs_streaming([tmp_path]) and needs_streaming([path])
    assert needs_streaming(["2"]) and needs_streaming([str(tmp_path / "*.jpg")])
    with pytest.raises(DataError, match="matches no file"):
        expand_sources([str(tmp_path / "*.bmp")])
    with pytest.raises(DataError, match="no such image, video"):
        expand_sources([str(tmp_path / "missing.mp4")])


def test_unreadable_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match="bad.mp4"):
        process_video(Source("video", bad), lambda f: [], get_spec("coco17"), progress=False)
