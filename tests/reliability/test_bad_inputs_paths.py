"""Bad-input corpus, part 2: the SimplePose V2, CAL top-down, export, video and bench paths.

Same contract as ``test_bad_inputs.py`` (whose helpers and ``CASES`` table this module shares):
a one-line error naming the file and the problem, exit status 2, no traceback and no partial
output file; or a documented recovery:
  - a folder with unreadable images: each is skipped with a warning (SimplePose and CAL as AE);
  - an output file in a missing folder: the folder is created (as for every bupose output);
  - a video frame that cannot be decoded: skipped with a warning naming its index, the other
    frames keep their index and time; a truncated video: the frames before the damage are kept,
    with one warning. A video that cannot be opened or has no decodable frame is an error.
The whole table (both modules) is printed at the end of this module (``pytest -s``) and written
to ``<pytest basetemp>/bad_inputs_cases.md``.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from bupose.cli import main
from tests.reliability.test_bad_inputs import (  # noqa: F401 (case_table: prints the table)
    CASES,
    bad_images,
    case_table,
    expect_error,
    good_bgr,
    run,
)

SIMPLEPOSE = ["--model", "simplepose_hg_small", "--input-size", "128", "--no-flip"]
CAL = ["--model", "cal_hrnet_small_64x48", "--no-flip"]
TINY = ["--model", "higherhrnet_tiny", "--input-size", "64", "--no-flip"]
BAD_IMAGES = ["zero-byte .png", "zero-byte .jpg", "truncated JPEG (first 20 bytes)",
              "truncated PNG (header only)", "corrupt JPEG (garbage after SOI)",
              "text file named .jpg", "PNG header claiming 30000x30000",
              "directory named folder.jpg"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bad_images(tmp_path_factory.mktemp("bad_images"))


def expect_ok(command: str, what: str, argv: list, capsys: pytest.CaptureFixture,
              behaviour: str) -> str:
    """Exit 0 and no traceback; the row says what happened. Returns stderr."""
    rc, err = run(argv, capsys)
    assert rc == 0 and "Traceback" not in err, f"{what}: exit {rc}\n{err}"
    CASES.append((command, what, behaviour))
    return err


def expect_usage_error(command: str, what: str, argv: list, capsys: pytest.CaptureFixture,
                       absent: Path, word: str) -> None:
    """argparse refuses the value: exit 2 with its usage and one error line, nothing written."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert stop.value.code == 2 and "Traceback" not in err, err
    assert len(lines) == 1 and word in lines[0], err
    assert not absent.exists()
    CASES.append((command, what, "exit 2 (usage): " + lines[0].split("error: ", 1)[1][:110]))


def mixed_folder(corpus: dict[str, Path], folder: Path, good_name: str) -> int:
    """``folder`` with one good image and a copy of every bad file; the number of bad files."""
    folder.mkdir()
    cv2.imwrite(str(folder / good_name), good_bgr())
    bad = [p for p in corpus.values() if p.is_file()]
    for path in bad:
        (folder / path.name).write_bytes(path.read_bytes())
    return len(bad)


def skipped_warnings(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip().startswith("warning: skipped")]


# ------------------------------------------------------------------ SimplePose V2 (offsets)

@pytest.mark.parametrize("what", BAD_IMAGES)
def test_simplepose_bad_image_alone(what: str, corpus: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    path = corpus[what]
    line = expect_error("infer simplepose", what, ["infer", path, *SIMPLEPOSE, "--json", out],
                        capsys, path, out)
    if not what.startswith("directory"):
        assert "every input failed" in line


def test_simplepose_folder_skips_bad_files(corpus: dict[str, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    n_bad = mixed_folder(corpus, tmp_path / "mixed", "good.jpg")
    out = tmp_path / "r.json"
    err = expect_ok("infer simplepose FOLDER", f"1 good + {n_bad} bad files",
                    ["infer", tmp_path / "mixed", *SIMPLEPOSE, "--json", out], capsys,
                    f"exit 0, {n_bad} one-line warnings, results for the good image")
    assert len(skipped_warnings(err)) == n_bad, err
    assert isinstance(json.loads(out.read_text()), list)


def test_simplepose_bad_input_size(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), good_bgr())
    out = tmp_path / "r.json"
    argv = ["infer", image, "--model", "simplepose_hg_small", "--input-size", "64", "--json", out]
    expect_error("infer simplepose", "--input-size 64 (hourglass needs multiples of 128)", argv,
                 capsys, Path("64"), out, "multiple of 128")


def offset_maps(tmp_path: Path) -> dict[str, Path]:
    """Maps files for ``decode --decoder offsets`` that cannot be decoded, by description."""
    heat, off = np.zeros((17, 8, 8), np.float32), np.zeros((38, 8, 8), np.float32)
    nan = heat.copy()
    nan[3, 2, 2] = np.nan
    arrays = {
        "AE maps (no offsets)": {"heatmaps": heat, "tags": np.zeros((17, 8, 8, 1), np.float32)},
        "NaN in heatmaps": {"heatmaps": nan, "offsets": off},
        "offsets of another size": {"heatmaps": heat, "offsets": off[:, :4]},
        "6 offset channels (19 limbs need 38)": {"heatmaps": heat, "offsets": off[:6]},
        "5 heatmaps (skeleton joins 17)": {"heatmaps": heat[:5], "offsets": off},
    }
    files = {"zero-byte .npz": b"", "text named .npz": b"not numpy"}
    out = {}
    for i, (what, data) in enumerate(files.items()):
        out[what] = tmp_path / f"raw{i}.npz"
        out[what].write_bytes(data)
    for i, (what, maps) in enumerate(arrays.items()):
        out[what] = tmp_path / f"maps{i}.npz"
        np.savez(out[what], **maps)
    return out


def test_decode_offsets_bad_maps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    for what, path in offset_maps(tmp_path).items():
        expect_error("decode --decoder offsets", what, ["decode", path, "--decoder", "offsets",
                     "--json", out], capsys, path, out)


# ------------------------------------------------------------------ CAL top-down

def detections(folder: Path, name: str, dets: object, raw: str | None = None) -> Path:
    path = folder / name
    path.write_text(json.dumps(dets) if raw is None else raw)
    return path


DET = {"image_id": 7, "category_id": 1, "bbox": [5.0, 5.0, 30.0, 40.0], "score": 0.9}


@pytest.mark.parametrize("what", BAD_IMAGES)
def test_cal_bad_image_alone(what: str, corpus: dict[str, Path], tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    dets = detections(tmp_path, "dets.json", [dict(DET, image_id=0)])
    out = tmp_path / "r.json"
    path = corpus[what]
    line = expect_error("infer CAL --boxes", what, ["infer", path, *CAL, "--boxes", dets,
                        "--json", out], capsys, path, out)
    if not what.startswith("directory"):
        assert "every input failed" in line


def test_cal_folder_skips_bad_files(corpus: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    n_bad = mixed_folder(corpus, tmp_path / "mixed", "7.jpg")  # image id 7 (numeric stem)
    dets = detections(tmp_path, "dets.json", [DET])
    out = tmp_path / "r.json"
    err = expect_ok("infer CAL --boxes FOLDER", f"1 good + {n_bad} bad files",
                    ["infer", tmp_path / "mixed", *CAL, "--boxes", dets, "--json", out], capsys,
                    f"exit 0, {n_bad} one-line warnings, the good image's person")
    assert len(skipped_warnings(err)) == n_bad, err
    assert [e["image_id"] for e in json.loads(out.read_text())] == [7]


BAD_DETECTIONS: dict[str, tuple[object, str | None, str]] = {
    # description: (detections, raw text instead, a word of the error)
    "zero-byte detections file": (None, "", "malformed"),
    "malformed JSON": (None, "[{", "malformed"),
    "a JSON object, not a list": ({"bbox": [1, 2, 3, 4]}, None, "list"),
    "wrong image id (99 for image 7)": ([dict(DET, image_id=99)], None, "given images"),
    "NaN in a box": ([dict(DET, bbox=[float("nan"), 5, 30, 40])], None, "finite"),
    "inf in a box": ([dict(DET, bbox=[5, 5, float("inf"), 40])], None, "finite"),
    "NaN score": ([dict(DET, score=float("nan"))], None, "finite"),
    "box of 3 values": ([dict(DET, bbox=[5, 5, 30])], None, "4 values"),
    "box as a string": ([dict(DET, bbox="5 5 30 40")], None, "bbox"),
    "no score": ([{k: v for k, v in DET.items() if k != "score"}], None, "score"),
}


def test_cal_bad_detections(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = tmp_path / "7.jpg"
    cv2.imwrite(str(image), good_bgr())
    out = tmp_path / "r.json"
    for i, (what, (dets, raw, word)) in enumerate(BAD_DETECTIONS.items()):
        path = detections(tmp_path, f"dets{i}.json", dets, raw)
        expect_error("infer CAL --boxes", what, ["infer", image, *CAL, "--boxes", path,
                     "--json", out], capsys, path, out, word)
    missing = tmp_path / "missing.json"
    expect_error("infer CAL --boxes", "missing detections file", ["infer", image, *CAL,
                 "--boxes", missing, "--json", out], capsys, missing, out, "not found")
    zero = detections(tmp_path, "zero_box.json", [dict(DET, bbox=[5, 5, 0, 0])])
    expect_ok("infer CAL --boxes", "zero-size box [5, 5, 0, 0]", ["infer", image, *CAL,
              "--boxes", zero, "--json", out], capsys,
              "exit 0: boxes are used raw, as the reference (quirk 11)")


# ------------------------------------------------------------------ export

@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import bupose
    from bupose.models.checkpoint import save_checkpoint

    folder = tmp_path_factory.mktemp("checkpoints")
    good = folder / "tiny.pth"
    save_checkpoint(good, bupose.create_model("higherhrnet_tiny"))
    (folder / "truncated.pth").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (folder / "empty.pth").write_bytes(b"")
    return {"good": good, "truncated": folder / "truncated.pth", "zero bytes": folder / "empty.pth"}


def read_only_folder(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A folder nothing can be written into; as root (which ignores permissions) creating a
    file there fails with EACCES as it would for a user. Returns a note for the table."""
    path.mkdir()
    path.chmod(0o555)
    if not os.access(path, os.W_OK):
        return ""
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if Path(kwargs.get("dir") or ".") == path:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    return " (EACCES simulated: running as root)"


def test_export_bad_checkpoints(tiny_checkpoints: dict[str, Path], tmp_path: Path,
                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.onnx"
    for what in ("truncated", "zero bytes"):
        path = tiny_checkpoints[what]
        expect_error("export", f"checkpoint {what}", ["export", "--checkpoint", path, "--out",
                     out, "--input-size", "64"], capsys, path, out, "checkpoint")


def test_export_output_folders(tmp_path: Path, capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    args = [*TINY[:2], "--input-size", "64", "--no-check", "--format", "torchscript"]
    note = read_only_folder(tmp_path / "locked", monkeypatch)
    out = tmp_path / "locked" / "m.pt"
    expect_error("export", "--out in a read-only folder" + note, ["export", *args, "--out", out],
                 capsys, out, out, "folder")
    assert not [p for p in (tmp_path / "locked").iterdir()], "temporary file left behind"
    (tmp_path / "a_file").write_text("not a folder")
    out = tmp_path / "a_file" / "m.pt"
    expect_error("export", "--out under a regular file", ["export", *args, "--out", out],
                 capsys, out, None, "folder")
    out = tmp_path / "new" / "sub" / "m.pt"
    expect_ok("export", "--out in a missing folder", ["export", *args, "--out", out], capsys,
              "exit 0: the folders are created (as for every bupose output)")
    assert out.is_file()


@pytest.mark.parametrize("size", ["0", "-64", "0x64"])
def test_export_impossible_size_flag(size: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.onnx"
    expect_usage_error("export", f"--input-size {size}", ["export", *TINY[:2], "--out", out,
                       "--input-size", size], capsys, out, "--input-size")


EXPORT_SIZES = {  # model, size: no network can run on it
    "higherhrnet_tiny --input-size 4": ("higherhrnet_tiny", "4", "too small"),
    "simplepose_hg_small --input-size 64": ("simplepose_hg_small", "64", "128"),
    "cal_hrnet_small_64x48 --input-size 30x20": ("cal_hrnet_small_64x48", "30x20", "30x20"),
}


def test_export_size_the_model_cannot_take(tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "m.onnx"
    for what, (model, size, word) in EXPORT_SIZES.items():
        expect_error("export", what, ["export", "--model", model, "--out", out, "--input-size",
                     size, "--no-check"], capsys, Path("input"), out, word)


# ------------------------------------------------------------------ video

def write_video(path: Path, frames: int = 8) -> Path:
    """A short valid MJPG .avi (the most portable OpenCV writer), 64x48 at 10 fps."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.clip(good_bgr().astype(int) + 20 * i, 0, 255).astype(np.uint8))
    writer.release()
    return path


def jpeg_chunks(data: bytes) -> list[tuple[int, int]]:
    """(start, size) of each frame's JPEG in an MJPG AVI: the data of its ``00dc`` chunks."""
    chunks, at = [], data.find(b"00dc")
    while at >= 0:
        size = struct.unpack("<I", data[at + 4:at + 8])[0]
        if data[at + 8:at + 10] == b"\xff\xd8":
            chunks.append((at + 8, size))
        at = data.find(b"00dc", at + 8)
    return chunks


def break_frames(video: Path, out: Path, frames: list[int]) -> Path:
    """``video`` with the JPEG data of ``frames`` overwritten by garbage (same length)."""
    data = bytearray(video.read_bytes())
    chunks = jpeg_chunks(bytes(data))
    for k in frames:
        start, size = chunks[k]
        data[start + 2:start + size - 2] = (bytes(range(256)) * size)[:size - 4]
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_video(tmp_path_factory.mktemp("video") / "good.avi")
    assert len(jpeg_chunks(path.read_bytes())) == 8
    return path


def frames_of(out: Path) -> list[int]:
    return [entry["frame"] for entry in json.loads(out.read_text())]


def test_video_unreadable(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, draw = tmp_path / "r.json", tmp_path / "drawn"
    files = {"zero-byte .mp4": ("zero.mp4", b""),
             "text file named .mp4": ("text.mp4", b"hello, I am not a video\n"),
             "AVI header only (first 300 bytes)": ("head.avi", video.read_bytes()[:300])}
    for what, (name, data) in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        expect_error("infer VIDEO", what, ["infer", path, *TINY, "--json", out, "--draw", draw],
                     capsys, path, out)
    broken = break_frames(video, tmp_path / "allbad.avi", list(range(8)))
    expect_error("infer VIDEO", "every frame undecodable", ["infer", broken, *TINY, "--json", out,
                 "--draw", draw], capsys, broken, out, "no frame")
    assert not draw.exists() or not list(draw.iterdir()), "partial annotated video left"
    zero = tmp_path / "zero.mp4"
    expect_error("infer VIDEO", "good.avi + zero-byte .mp4", ["infer", video, zero, *TINY,
                 "--json", out], capsys, zero, out, "empty")


def test_video_broken_frame_is_skipped(video: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    broken = break_frames(video, tmp_path / "broken.avi", [3])
    out = tmp_path / "r.json"
    err = expect_ok("infer VIDEO", "frame 3 of 8 undecodable", ["infer", broken, *TINY, "--json",
                    out], capsys, "exit 0: one warning 'frame 3 cannot be decoded, skipped'; "
                    "frames 0-2, 4-7 kept with their index")
    assert "broken.avi: frame 3 cannot be decoded, skipped" in err, err
    assert frames_of(out) == [0, 1, 2, 4, 5, 6, 7]
    assert json.loads(out.read_text())[3]["time_s"] == pytest.approx(0.4)


def test_video_truncated(video: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = video.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[:jpeg_chunks(data)[4][0] - 8])  # frames 0-3 whole, no index
    out = tmp_path / "r.json"
    err = expect_ok("infer VIDEO", "truncated after frame 3 of 8", ["infer", cut, *TINY,
                    "--json", out], capsys, "exit 0: frames 0-3 kept, one warning 'stopped at "
                    "frame 4 of 8 announced: the next frames cannot be decoded'")
    assert frames_of(out) == [0, 1, 2, 3]
    warnings = [ln for ln in err.splitlines() if "warning: cut.avi" in ln]
    assert len(warnings) == 1 and "stopped at frame 4 of 8" in warnings[0], err


# ------------------------------------------------------------------ bench

def test_bench_bad_inputs(corpus: dict[str, Path], tiny_checkpoints: dict[str, Path],
                          tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "b.json"
    fast = ["--input-size", "64", "--no-flip", "--repeat", "1", "--warmup", "0", "--no-startup",
            "--json", out]
    good_folder = tmp_path / "good"
    good_folder.mkdir()
    cv2.imwrite(str(good_folder / "a.jpg"), good_bgr())
    n_bad = mixed_folder(corpus, tmp_path / "mixed", "good.jpg")
    first_bad = sorted(p for p in (tmp_path / "mixed").iterdir() if p.name != "good.jpg")[0]
    expect_error("bench --images", f"folder with 1 good + {n_bad} bad files", ["bench",
                 *TINY[:2], "--images", tmp_path / "mixed", *fast], capsys, first_bad, out)
    (tmp_path / "empty").mkdir()
    for what, folder in (("empty folder", tmp_path / "empty"),
                         ("missing folder", tmp_path / "missing")):
        expect_error("bench --images", what, ["bench", *TINY[:2], "--images", folder, *fast],
                     capsys, folder, out)
    for what in ("truncated", "zero bytes"):
        path = tiny_checkpoints[what]
        expect_error("bench --checkpoint", f"checkpoint {what}", ["bench", "--checkpoint", path,
                     "--images", good_folder, *fast], capsys, path, out, "checkpoint")
