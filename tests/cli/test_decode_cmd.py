"""`bupose decode`: saved decoder inputs re-decoded without the network."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bupose.cli import main
from tests.conftest import FIXTURES, SHARED_DATA, require

TINY = FIXTURES / "tiny"
SAMPLES = SHARED_DATA / "samples" / "coco"


def test_decode_reproduces_infer_exactly(tmp_path):
    images = [str(require(SAMPLES / f)) for f in ("000000000785.jpg", "000000040083.jpg")]
    model = ["--checkpoint", str(require(TINY / "tiny_model.pth")),
             "--config", str(require(TINY / "tiny_config.yaml"))]
    maps, infer_json, decode_json = tmp_path / "maps", tmp_path / "a.json", tmp_path / "b.json"
    argv = ["infer", *images, *model, "--save-maps", str(maps), "--json", str(infer_json)]
    assert main(argv) == 0
    saved = sorted(str(p) for p in maps.glob("*.npz"))
    assert len(saved) == 2
    assert main(["decode", *saved, "--decoder", "ae", "--json", str(decode_json)]) == 0
    inferred = json.loads(infer_json.read_text())
    assert inferred and json.loads(decode_json.read_text()) == inferred


def _two_people_maps(k: int = 17, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian peaks for two people (joint j at x = 4 + 2j, y = 10 and y = 34) with tags about
    0 / 5 (+ 0.001 j: distinct values, since the official bookkeeping keys people by tag value)."""
    ys, xs = np.mgrid[0:size, 0:size]
    heatmaps = np.zeros((k, size, size), np.float32)
    tags = np.zeros((k, size, size, 1), np.float32)
    for j in range(k):
        for y0, tag in ((10, 0.0), (34, 5.0)):
            g = np.exp(-((xs - (4 + 2 * j)) ** 2 + (ys - y0) ** 2) / 8.0).astype(np.float32)
            heatmaps[j] = np.maximum(heatmaps[j], g)
            tags[j][g > 0.01] = tag + 0.001 * j
    return heatmaps, tags


def test_decode_without_geometry_is_in_map_pixels(tmp_path):
    from bupose.decoders.ae import decode_ae
    from bupose.structures.spec import COCO17

    heatmaps, tags = _two_people_maps()
    path = tmp_path / "12.npz"
    np.savez(path, heatmaps=heatmaps[None], tags=tags[None])  # (1, K, H, W) form
    out = tmp_path / "r.json"
    assert main(["decode", str(path), "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    grouped, scores = decode_ae(heatmaps, tags, None, COCO17.joint_order)
    assert len(results) == len(grouped) == 2 and {e["image_id"] for e in results} == {12}
    for entry, person, score in zip(results, grouped, scores):
        np.testing.assert_array_equal(np.reshape(entry["keypoints"], (17, 3)), person[:, :3])
        assert entry["score"] == pytest.approx(float(score), abs=1e-7)
    ys = sorted(np.reshape(e["keypoints"], (17, 3))[0, 1] for e in results)
    # map frame: integer peak, -0.25 (symmetric neighbours: the official "else" branch), +0.5
    assert ys == [10.25, 34.25]


@pytest.mark.parametrize("decoder", ["ae", "hae"])
def test_both_decoders_find_the_two_people(tmp_path, decoder):
    heatmaps, tags = _two_people_maps()
    path = tmp_path / "m.npz"
    np.savez(path, heatmaps=heatmaps, tags=tags)
    out = tmp_path / "r.json"
    assert main(["decode", str(path), "--decoder", decoder, "--json", str(out)]) == 0
    people = sorted(np.reshape(e["keypoints"], (17, 3))[:, 1].mean() for e in json.loads(
        out.read_text()))
    assert people == [10.25, 34.25]  # every joint of each person on its own row


def test_decode_thresholds(tmp_path):
    heatmaps, tags = _two_people_maps()
    path = tmp_path / "m.npz"
    np.savez(path, heatmaps=heatmaps, tags=tags)
    out = tmp_path / "r.json"
    assert main(["decode", str(path), "--detection-threshold", "1.5", "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == []
    assert main(["decode", str(path), "--tag-threshold", "0", "--decoder", "ae",
                 "--json", str(out)]) == 0
    # no match accepted: each of the 2 x K candidates starts a person (refine completes them)
    assert len(json.loads(out.read_text())) == 2 * 17


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"heatmaps": np.zeros((17, 8, 8), np.float32)}, "'tags'"),
        ({"heatmaps": np.zeros((14, 8, 8), np.float32),
          "tags": np.zeros((14, 8, 8, 1), np.float32)}, "K = 14"),
        ({"heatmaps": np.zeros((17, 8, 8), np.float32),
          "tags": np.zeros((17, 8, 9, 1), np.float32)}, "do not fit"),
        ({"heatmaps": np.zeros((2, 17, 8, 8), np.float32),
          "tags": np.zeros((2, 17, 8, 8, 1), np.float32)}, "shape"),
        ({"heatmaps": np.zeros((17, 8, 8), np.float32),
          "tags": np.zeros((17, 8, 8, 1), np.float32), "center": np.zeros(2)}, "center"),
    ],
    ids=["no-tags", "wrong-k", "tags-mismatch", "batch-2", "center-only"],
)
def test_bad_npz_names_the_file(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad_maps.npz"
    np.savez(path, **arrays)
    assert main(["decode", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad_maps.npz" in err and message in err and "Traceback" not in err


def test_unreadable_or_missing_npz(tmp_path, capsys):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["decode", str(broken)]) == 2
    assert "broken.npz" in capsys.readouterr().err
    assert main(["decode", str(tmp_path / "absent.npz")]) == 2
    assert "absent.npz" in capsys.readouterr().err


def test_crowdpose_spec(tmp_path):
    heatmaps, tags = _two_people_maps(k=14)
    path = tmp_path / "m.npz"
    np.savez(path, heatmaps=heatmaps, tags=tags, center=np.array([24.0, 24.0]),
             scale=np.array([0.24, 0.24]), base_size=np.array([48, 48]))
    out = tmp_path / "r.json"
    assert main(["decode", str(path), "--spec", "crowdpose14", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert len(results) == 2 and len(results[0]["keypoints"]) == 14 * 3
    # center (24, 24), box 48 px wide on a 48-px map: image frame = map frame here
    ys = sorted(np.reshape(e["keypoints"], (14, 3))[0, 1] for e in results)
    np.testing.assert_allclose(ys, [10.25, 34.25], atol=1e-3)


@pytest.mark.parametrize("name", ["000000040083_ambiguous", "000000196141_ambiguous"])
def test_munkres_solver_reproduces_official_tie_breaking(tmp_path, name):
    """Tie-ambiguous fixtures: only munkres-compatible tie-breaking gives the official people;
    `bupose decode --solver munkres` reproduces them in image coordinates."""
    ref = np.load(require(FIXTURES / "grouping" / f"structured_{name}.npz"))
    maps = tmp_path / "maps.npz"
    np.savez(maps, heatmaps=ref["det"], tags=ref["tag"], center=ref["center"],
             scale=ref["scale"], base_size=ref["base_size"])
    out = tmp_path / "r.json"
    assert main(["decode", str(maps), "--solver", "munkres", "--json", str(out)]) == 0
    entries = json.loads(out.read_text())
    ours = np.array([e["keypoints"] for e in entries]).reshape(len(entries), 17, 3)
    np.testing.assert_allclose(ours, ref["final"][..., :3], atol=1e-4)
    np.testing.assert_allclose([e["score"] for e in entries], ref["scores"], atol=1e-6)
