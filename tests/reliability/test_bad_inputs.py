"""Bad-input corpus, generated into tmp_path by the tests (no binary files committed).

Every case drives a command in-process through ``bupose.cli.main([...])`` and checks the contract:
a one-line error naming the file, exit status 2, no traceback and no partial output file; or the
documented recovery (folder inference skips a bad file with a warning, exit 0 unless every input
failed; valid but unusual images such as grayscale, RGBA, palette, 16-bit, CMYK or 1x1 are read).
EXIF orientation is ignored on purpose, as the official reader (cv2.imread) does.
The table of cases tried is printed at the end of the module (``pytest -s``) and written to
``<pytest basetemp>/bad_inputs_cases.md``.
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from bupose.cli import main

CASES: list[tuple[str, str, str]] = []  # (command, input, behaviour seen)
TINY = ["--model", "higherhrnet_tiny", "--input-size", "64", "--no-flip"]


@pytest.fixture(scope="module", autouse=True)
def case_table(tmp_path_factory: pytest.TempPathFactory):
    yield
    lines = ["| command | input | behaviour |", "|---|---|---|"]
    lines += [f"| {c} | {i} | {b} |" for c, i, b in CASES]
    text = "\n".join(lines)
    print("\n" + text)
    (tmp_path_factory.getbasetemp() / "bad_inputs_cases.md").write_text(text + "\n")


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def expect_error(command: str, what: str, argv: list[str], capsys: pytest.CaptureFixture,
                 named: Path, absent: Path | None = None, word: str = "") -> str:
    """Exit 2, one error line naming ``named`` (and ``word``), no traceback, no ``absent``."""
    rc, err = run(argv, capsys)
    lines = [ln for ln in err.splitlines() if "error:" in ln]
    assert rc == 2, f"{what}: exit {rc}\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1 and str(named.name) in lines[0], err
    assert word.lower() in lines[0].lower(), lines[0]
    if absent is not None:
        assert not absent.exists(), f"{what}: partial output {absent}"
    CASES.append((command, what, "exit 2: " + lines[0].split("error: ", 1)[1][:110]))
    return lines[0]


# ------------------------------------------------------------------ images

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def huge_png_header() -> bytes:
    """A hand-written PNG whose IHDR claims 30000x30000 RGB with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def good_bgr(h: int = 48, w: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


def bad_images(d: Path) -> dict[str, Path]:
    """Files with image names that cannot be read, by description."""
    jpg = cv2.imencode(".jpg", good_bgr())[1].tobytes()
    png = cv2.imencode(".png", good_bgr())[1].tobytes()
    files = {
        "zero-byte .png": ("zero.png", b""),
        "zero-byte .jpg": ("zero.jpg", b""),
        "truncated JPEG (first 20 bytes)": ("trunc.jpg", jpg[:20]),
        "truncated PNG (header only)": ("trunc.png", png[:33]),
        "corrupt JPEG (garbage after SOI)": ("corrupt.jpg", b"\xff\xd8" + bytes(range(256)) * 4),
        "text file named .jpg": ("text.jpg", b"hello, I am not a picture\n"),
        "PNG header claiming 30000x30000": ("huge.png", huge_png_header()),
    }
    out = {}
    for what, (name, data) in files.items():
        (d / name).write_bytes(data)
        out[what] = d / name
    (d / "folder.jpg").mkdir()
    out["directory named folder.jpg"] = d / "folder.jpg"
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bad_images(tmp_path_factory.mktemp("bad_images"))


@pytest.mark.parametrize("what", [
    "zero-byte .png", "zero-byte .jpg", "truncated JPEG (first 20 bytes)",
    "truncated PNG (header only)", "corrupt JPEG (garbage after SOI)", "text file named .jpg",
    "PNG header claiming 30000x30000", "directory named folder.jpg"])
def test_infer_bad_image_alone(what: str, corpus: dict[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture) -> None:
    """A bad file given alone: every input failed -> exit 2, the file named, no results file."""
    out = tmp_path / "r.json"
    path = corpus[what]
    line = expect_error("infer", what, ["infer", path, *TINY, "--json", out], capsys, path, out)
    if not what.startswith("directory"):  # a folder argument is scanned: it holds no images
        assert "every input failed" in line


def test_infer_strict_stops(corpus: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture) -> None:
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), good_bgr())
    out = tmp_path / "r.json"
    bad = corpus["zero-byte .png"]
    expect_error("infer --strict", "good.jpg + zero-byte .png", ["infer", good, bad, *TINY,
                 "--strict", "--json", out], capsys, bad, out, "empty")


def test_infer_folder_skips_bad_files(corpus: dict[str, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    """Documented recovery: a folder with one good image and every bad one -> exit 0, warnings."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    cv2.imwrite(str(folder / "good.jpg"), good_bgr())
    for _what, path in corpus.items():
        if path.is_file():
            (folder / path.name).write_bytes(path.read_bytes())
    out = tmp_path / "r.json"
    rc, err = run(["infer", folder, *TINY, "--json", out], capsys)
    assert rc == 0 and "Traceback" not in err, err
    skipped = [ln for ln in err.splitlines() if ln.startswith("warning: skipped")]
    assert len(skipped) == sum(p.is_file() for p in corpus.values()), err
    assert json.loads(out.read_text()) is not None
    CASES.append(("infer FOLDER", f"1 good + {len(skipped)} bad files",
                  f"exit 0, {len(skipped)} one-line warnings, results for the good image"))


def unusual_images(d: Path) -> dict[str, tuple[Path, tuple[int, int]]]:
    """Readable but unusual images -> (path, expected (H, W) as stored, EXIF ignored)."""
    out: dict[str, tuple[Path, tuple[int, int]]] = {}
    gray = good_bgr()[..., 0]
    cv2.imwrite(str(d / "gray.png"), gray)
    out["grayscale PNG"] = (d / "gray.png", (48, 64))
    cv2.imwrite(str(d / "rgba.png"), np.dstack([good_bgr(), np.full((48, 64), 128, np.uint8)]))
    out["RGBA PNG"] = (d / "rgba.png", (48, 64))
    cv2.imwrite(str(d / "deep.png"), (good_bgr().astype(np.uint16) * 257))
    out["16-bit PNG"] = (d / "deep.png", (48, 64))
    cv2.imwrite(str(d / "one.png"), good_bgr(1, 1))
    out["1x1 PNG"] = (d / "one.png", (1, 1))
    try:
        from PIL import Image
    except ImportError:
        return out
    Image.fromarray(gray).convert("P").save(d / "palette.png")
    out["palette PNG"] = (d / "palette.png", (48, 64))
    Image.fromarray(good_bgr()[..., ::-1].copy()).convert("CMYK").save(d / "cmyk.jpg")
    out["CMYK JPEG"] = (d / "cmyk.jpg", (48, 64))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(good_bgr()).save(d / "exif.jpg", exif=exif.tobytes())
    out["EXIF orientation 6 JPEG"] = (d / "exif.jpg", (48, 64))
    return out


def test_unusual_images_are_read(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from bupose.utils.io import read_image

    cases = unusual_images(tmp_path)
    if "CMYK JPEG" not in cases:
        CASES.append(("read_image", "palette / CMYK / EXIF", "skipped: Pillow not installed"))
    for what, (path, hw) in cases.items():
        image = read_image(path)
        assert image.dtype == np.uint8 and image.shape == (*hw, 3), (what, image.shape)
    out = tmp_path / "r.json"
    paths = [p for p, _ in cases.values()]
    rc, err = run(["infer", *paths, *TINY, "--json", out], capsys)
    assert rc == 0 and "Traceback" not in err and "skipped" not in err, err
    for what in cases:
        note = " (stored orientation: EXIF ignored, as the official cv2.imread)" if "EXIF" in what \
            else ""
        CASES.append(("infer", what, "read as (H, W, 3) uint8 RGB" + note))


def test_subprocess_no_traceback(corpus: dict[str, Path], tmp_path: Path) -> None:
    """A real process: the zero-byte .png (once an OpenCV traceback) gives one line on stderr."""
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "bupose", "infer", str(corpus["zero-byte .png"]),
                           *TINY, "--json", str(out)], capture_output=True, text=True,
                          timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "zero.png" in proc.stderr, proc.stderr
    assert not out.exists()
    CASES.append(("python -m bupose infer", "zero-byte .png (subprocess)",
                  "exit 2, no traceback on stderr"))


# ------------------------------------------------------------------ annotations and results

def coco_gt(num_kpts: int = 17) -> dict:
    kpts = []
    for j in range(num_kpts):
        kpts += [10.0 + j, 20.0 + j, 2]
    return {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "keypoints": kpts,
                             "num_keypoints": num_kpts, "bbox": [5, 5, 40, 40], "area": 1600.0,
                             "iscrowd": 0}],
            "categories": [{"id": 1, "name": "person", "keypoints": [str(i) for i in
                                                                      range(num_kpts)]}]}


def bad_annotations() -> dict[str, str]:
    """Annotation files (as JSON text) that are malformed, by description."""
    def mutate(fn) -> str:
        gt = coco_gt()
        fn(gt)
        return json.dumps(gt)

    return {
        "malformed JSON": '{"images": [',
        "missing 'annotations'": mutate(lambda g: g.pop("annotations")),
        "annotation without keypoints": mutate(lambda g: g["annotations"][0].pop("keypoints")),
        "wrong K (16 values)": mutate(lambda g: g["annotations"][0].update(
            keypoints=g["annotations"][0]["keypoints"][:48])),
        "NaN coordinate": mutate(lambda g: g["annotations"][0]["keypoints"].__setitem__(0,
                                                                                      float("nan"))),
        "inf coordinate": mutate(lambda g: g["annotations"][0]["keypoints"].__setitem__(
            1, float("inf"))),
        "duplicate annotation ids": mutate(lambda g: g["annotations"].append(
            dict(g["annotations"][0]))),
        "duplicate image ids": mutate(lambda g: g["images"].append(dict(g["images"][0]))),
        "annotation of an unknown image": mutate(lambda g: g["annotations"][0].update(image_id=7)),
        "crowd region without segmentation": mutate(lambda g: g["annotations"].extend([
            dict(g["annotations"][0], id=2, segmentation=[[5, 5, 45, 5, 45, 45]]),
            dict(g["annotations"][0], id=3, iscrowd=1)])),
        "string coordinate": mutate(lambda g: g["annotations"][0]["keypoints"].__setitem__(
            0, "12")),
    }


@pytest.mark.parametrize("what", list(bad_annotations()))
def test_data_stats_bad_annotations(what: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "ann.json"
    path.write_text(bad_annotations()[what])
    expect_error("data stats", what, ["data", "stats", path], capsys, path)


def test_data_stats_negative_coordinate_accepted(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    """Negative coordinates occur in real sets (joints just outside the image): accepted."""
    gt = coco_gt()
    gt["annotations"][0]["keypoints"][0] = -3.0
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(gt))
    rc, err = run(["data", "stats", path], capsys)
    assert rc == 0 and "Traceback" not in err, err
    CASES.append(("data stats", "negative coordinate", "exit 0 (COCO has them)"))


def test_eval_checkpoint_image_missing_on_disk(tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    """An image listed in the annotation file but absent from --images: named, exit 2."""
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco_gt()))
    (tmp_path / "images").mkdir()
    out = tmp_path / "ap.json"
    from bupose.hub import DEFAULT_MODEL

    expect_error("eval", "image missing on disk",
                 ["eval", "--annotations", gt, "--images", tmp_path / "images", "--checkpoint",
                  DEFAULT_MODEL, "--input-size", "64", "--no-flip", "--json", out], capsys,
                 tmp_path / "images" / "a.jpg", out, "not found")


def bad_results() -> dict[str, list]:
    entry = {"image_id": 1, "category_id": 1, "keypoints": [10.0, 20.0, 1.0] * 17, "score": 0.9}
    return {
        "unknown image id": [dict(entry, image_id=99)],
        "NaN score": [dict(entry, score=float("nan"))],
        "NaN keypoint": [dict(entry, keypoints=[float("nan")] + entry["keypoints"][1:])],
        "wrong K": [dict(entry, keypoints=entry["keypoints"][:42])],
        "missing score": [{k: v for k, v in entry.items() if k != "score"}],
    }


@pytest.mark.parametrize("what", list(bad_results()))
def test_eval_bad_results(what: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco_gt()))
    res = tmp_path / "res.json"
    res.write_text(json.dumps(bad_results()[what]))
    out = tmp_path / "ap.json"
    expect_error("eval", f"results: {what}", ["eval", "--results", res, "--annotations", gt,
                                              "--json", out], capsys, res, out)


def test_eval_malformed_results_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(coco_gt()))
    res = tmp_path / "res.json"
    res.write_text("[{")
    expect_error("eval", "results: malformed JSON", ["eval", "--results", res,
                 "--annotations", gt], capsys, res)


# ------------------------------------------------------------------ decode maps

def test_decode_bad_maps(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "r.json"
    cases = {"zero-byte .npz": b"", "text named .npz": b"not numpy"}
    for what, data in cases.items():
        path = tmp_path / f"{what.split()[0]}.npz"
        path.write_bytes(data)
        expect_error("decode", what, ["decode", path, "--json", out], capsys, path, out)
    path = tmp_path / "nokeys.npz"
    np.savez(path, other=np.zeros(3))
    expect_error("decode", ".npz without heatmaps", ["decode", path, "--json", out], capsys,
                 path, out)
    path = tmp_path / "nan.npz"
    heat = np.zeros((17, 8, 8), np.float32)
    heat[0, 2, 2] = np.nan
    np.savez(path, heatmaps=heat, tags=np.zeros((17, 8, 8, 1), np.float32))
    expect_error("decode", "NaN in heatmaps", ["decode", path, "--json", out], capsys, path, out)
    path = tmp_path / "pickled.npz"
    np.savez(path, heatmaps=np.array([object()], dtype=object))
    expect_error("decode", ".npz holding a pickled object", ["decode", path, "--json", out],
                 capsys, path, out)


# ------------------------------------------------------------------ checkpoints

class Evil:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import torch

    import bupose
    from bupose.models.checkpoint import save_checkpoint

    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), good_bgr())
    out = tmp_path / "r.json"
    args = ["--input-size", "64", "--no-flip", "--json", out]
    good = tmp_path / "tiny.pth"
    save_checkpoint(good, bupose.create_model("higherhrnet_tiny"))
    trunc = tmp_path / "truncated.pth"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    expect_error("infer", "checkpoint truncated", ["infer", image, "--checkpoint", trunc, *args],
                 capsys, trunc, out)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    expect_error("infer", "checkpoint zero bytes", ["infer", image, "--checkpoint", empty, *args],
                 capsys, empty, out)
    other = tmp_path / "otherarch.pth"
    torch.save({"fc.weight": torch.zeros(3, 3), "fc.bias": torch.zeros(3)}, other)
    expect_error("infer", "checkpoint of another architecture", ["infer", image,
                 "--checkpoint", other, *args], capsys, other, out)
    otherk = tmp_path / "otherK.pth"
    save_checkpoint(otherk, bupose.create_model("higherhrnet_tiny", num_keypoints=14))
    expect_error("infer", "K=14 checkpoint with --num-keypoints 17", ["infer", image,
                 "--checkpoint", otherk, "--num-keypoints", "17", *args], capsys, otherk, out)
    marker = tmp_path / "PWNED"
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": Evil(marker)}, evil)
    expect_error("infer", "checkpoint with pickled code", ["infer", image, "--checkpoint", evil,
                 *args], capsys, evil, out)
    assert not marker.exists(), "unpickling ran code"
    CASES[-1] = (*CASES[-1][:2], CASES[-1][2] + " (marker file not created)")


def test_malicious_pickle_every_loader(tmp_path: Path) -> None:
    """Each checkpoint reader refuses a pickle whose __reduce__ would create a file."""
    import torch

    import bupose
    from bupose.engine import checkpoint as engine_ckpt
    from bupose.errors import BuposeError
    from bupose.models.checkpoint import read_state_dict

    marker = tmp_path / "PWNED"
    evil = tmp_path / "last.pt"
    torch.save({"model": {}, "payload": Evil(marker)}, evil)
    loaders = {"bupose.load_checkpoint": lambda p: bupose.load_checkpoint(p),
               "models.checkpoint.read_state_dict": read_state_dict}
    for name in dir(engine_ckpt):
        if name.startswith(("load", "read")) and callable(getattr(engine_ckpt, name)):
            loaders[f"engine.checkpoint.{name}"] = getattr(engine_ckpt, name)
    for name, load in loaders.items():
        with contextlib.suppress(BuposeError, TypeError):
            load(evil)
        assert not marker.exists(), f"{name} ran pickled code"
        CASES.append(("python", f"{name}(malicious pickle)", "refused, marker not created"))


# ------------------------------------------------------------------ recipes

RECIPE_CASES = {
    "unknown key": ["--set", "train.batchsize=8"],
    "wrong type": ["--set", "train.batch_size=eight"],
    "batch 0": ["--set", "train.batch_size=0"],
    "negative lr": ["--set", "optim.lr=-0.1"],
    "epochs -1": ["--set", "train.epochs=-1"],
}


@pytest.mark.parametrize("what", list(RECIPE_CASES))
def test_train_bad_recipe(what: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = Path(__file__).parents[2] / "configs" / "quickstart_synth.yaml"
    out = tmp_path / "run"
    expect_error("train", f"recipe: {what} ({RECIPE_CASES[what][1]})", ["train", recipe,
                 *RECIPE_CASES[what], "--out", out, "--print-config"], capsys, Path("--set"), out)


def test_train_recipe_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    expect_error("train", "recipe: malformed YAML", ["train", bad, "--print-config"], capsys, bad)
    bad.write_text("method: ae\nmodel:\n  name: higherhrnet_tiny\n  colour: red\n")
    expect_error("train", "recipe: unknown key in file", ["train", bad, "--print-config"],
                 capsys, bad, word="colour")
