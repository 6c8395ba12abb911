"""`bupose infer` end to end against the official tools/valid.py runs of the tiny model on the four
sample images (fixtures e2e/e2e_tiny_<variant>.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bupose.cli import main
from bupose.utils.io import read_image
from tests.conftest import FIXTURES, SHARED_DATA, require

TINY = FIXTURES / "tiny"
SAMPLES = SHARED_DATA / "samples" / "coco"

# variant -> extra command-line flags (the YAML gives FLIP_TEST True, SCALE_FACTOR [1], TAG 1.0)
VARIANTS = {
    "noflip_s1": ["--no-flip"],
    "flip_s1": [],
    "flip_ms": ["--scales", "0.5,1,2"],
}


def _model_args() -> list[str]:
    return ["--checkpoint", str(require(TINY / "tiny_model.pth")),
            "--config", str(require(TINY / "tiny_config.yaml"))]


def _reference(name: str) -> dict:
    return json.loads(require(FIXTURES / "e2e" / f"e2e_tiny_{name}.json").read_text())


def _same_joints(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """(K,) joints equal to the tolerances: x, y within 1e-3 px, heatmap value within 1e-6."""
    xy_ok = np.abs(ours[:, :2] - ref[:, :2]).max(1) <= 1e-3
    return xy_ok & (np.abs(ours[:, 2] - ref[:, 2]) <= 1e-6)


def _refine_near_tie(ours: np.ndarray, score: float, person: dict, maps: Path) -> bool:
    """True when ``ours`` is the official ``person`` except for joints added by refine whose
    official location or ours sits on a rounding boundary of the refine penalty
    round(|tag - prev_tag|) on our maps (|distance - (n + 0.5)| < 1e-4): float noise of the
    network (~1e-5 on tags) decides such ties, and the README's fragility margins cover top-k
    only, not refine."""
    from bupose.structures.affine import affine_from_center_scale, apply_affine

    ref, tags = np.asarray(person["keypoints_xyv"]), np.asarray(person["tags"])
    detected = np.abs(tags).sum(1) > 0  # official tags are 0 for refined and missing joints
    same = _same_joints(ours, ref)
    if abs(score - person["score"]) > 1e-6 or not detected.any() or not same[detected].all():
        return False
    z = np.load(maps)
    map_wh = (z["heatmaps"].shape[2], z["heatmaps"].shape[1])
    to_map = affine_from_center_scale(z["center"], z["scale"], 0.0, map_wh)
    prev_tag = tags[detected].mean(0)
    def on_boundary(j: int, xy: np.ndarray) -> bool:
        x, y = apply_affine(xy, to_map)  # adjusted map position: integer + 0.25 / 0.75
        distance = float(np.linalg.norm(z["tags"][j, int(y), int(x)] - prev_tag))
        return abs(distance - np.floor(distance) - 0.5) < 1e-4

    for j in np.flatnonzero(~same):
        if detected[j] or ref[j, 2] <= 0:
            return False
        # the tie may sit at the official location or at ours (e.g. 785, noflip: our pixel's
        # distance is 0.4999986 on the folded model's maps, 0.5000062 on the unfolded one's)
        if not (on_boundary(j, ref[j, :2]) or on_boundary(j, ours[j, :2])):
            return False
    return True


def _match_people(ours: list[dict], official: list[dict], where: str,
                  maps: Path | None = None) -> int:
    """Same people as a set: keypoints within 1e-3 px, heatmap values and scores within 1e-6.
    With the saved maps, a person may instead differ by a refine near-tie (``_refine_near_tie``);
    returns how many did."""
    assert len(ours) == len(official), f"{where}: {len(ours)} people, official {len(official)}"
    mine = [np.asarray(e["keypoints"]).reshape(-1, 3) for e in ours]
    free, unmatched = list(range(len(ours))), []
    for n, person in enumerate(official):
        ref = np.asarray(person["keypoints_xyv"])
        hit = next((i for i in free if _same_joints(mine[i], ref).all()
                    and abs(ours[i]["score"] - person["score"]) <= 1e-6), None)
        if hit is None:
            unmatched.append(n)
        else:
            free.remove(hit)
    for n in unmatched:
        person = official[n]
        hit = next((i for i in free if maps is not None
                    and _refine_near_tie(mine[i], ours[i]["score"], person, maps)), None)
        assert hit is not None, f"{where}: official person {n} (score {person['score']}) not found"
        free.remove(hit)
    assert len(unmatched) <= 2, f"{where}: {len(unmatched)} people differ by refine near-ties"
    return len(unmatched)


def _compare(results: list[dict], ref: dict, only_solver_independent: bool,
             maps: Path | None = None) -> int:
    compared = 0
    for image in ref["images"]:
        ours = [e for e in results if e["image_id"] == image["image_id"]]
        assert ours and all(e["file_name"] == image["file_name"] for e in ours)
        if image["solver_independent"] or not only_solver_independent:
            npz = None if maps is None else maps / f"{Path(image['file_name']).stem}.npz"
            _match_people(ours, image["people"], f"{ref['variant']} {image['file_name']}", npz)
            compared += 1
    return compared


@pytest.fixture(scope="module")
def tagthr0_runs(tmp_path_factory):
    """One `bupose infer --tag-threshold 0 --save-maps` run per variant on the sample folder
    (the network part is shared with the official-threshold checks below)."""
    runs = {}
    for variant, flags in VARIANTS.items():
        root = tmp_path_factory.mktemp(variant)
        argv = ["infer", str(require(SAMPLES)), *_model_args(), *flags, "--tag-threshold", "0",
                "--save-maps", str(root / "maps"), "--json", str(root / "results.json")]
        assert main(argv) == 0
        runs[variant] = root
    return runs


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_infer_matches_official_tagthr0(tagthr0_runs, variant):
    """TAG_THRESHOLD 0: no tag match is accepted, so the result is solver-independent for every
    image; all four must match valid.py."""
    results = json.loads((tagthr0_runs[variant] / "results.json").read_text())
    assert {e["category_id"] for e in results} == {1}
    ref = _reference(f"{variant}_tagthr0")
    assert _compare(results, ref, False, tagthr0_runs[variant] / "maps") == 4


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_official_threshold_on_solver_independent_images(tagthr0_runs, tmp_path, variant):
    """TAG_THRESHOLD 1.0 (the YAML's): the maps saved by `infer` re-decoded with `bupose decode`
    (which reproduces `infer` exactly, see test_decode_cmd and the test below) must match
    valid.py on the images the README marks solver_independent (flip_s1: 196141; flip_ms: all;
    noflip_s1: none, there only the run itself is checked)."""
    maps = sorted(str(p) for p in (tagthr0_runs[variant] / "maps").glob("*.npz"))
    out = tmp_path / "official.json"
    assert main(["decode", *maps, "--tag-threshold", "1.0", "--json", str(out)]) == 0
    ref = _reference(variant)
    expected = sum(im["solver_independent"] for im in ref["images"])
    maps_dir = tagthr0_runs[variant] / "maps"
    assert _compare(json.loads(out.read_text()), ref, True, maps_dir) == expected


def test_infer_official_flip_s1_on_the_staged_image(tmp_path):
    """`bupose infer` itself at the YAML's settings on 196141 (solver-independent for flip_s1)."""
    out = tmp_path / "r.json"
    image = str(require(SAMPLES / "000000196141.jpg"))
    assert main(["infer", image, *_model_args(), "--json", str(out)]) == 0
    ref = _reference("flip_s1")
    ref["images"] = [im for im in ref["images"] if im["image_id"] == 196141]
    assert _compare(json.loads(out.read_text()), ref, True) == 1


def test_infer_saves_maps_and_uses_annotation_ids(tmp_path, capsys):
    """--save-maps writes the decoder inputs per image; with --annotations the ids come from the
    ground truth (by file name) and the COCO scores are printed; --draw writes the picture."""
    image = require(SAMPLES / "000000196141.jpg")
    renamed = tmp_path / "img" / "photo.jpg"
    renamed.parent.mkdir()
    shutil.copy(image, renamed)
    gt = json.loads(require(SAMPLES / "test_coco.json").read_text())
    for entry in gt["images"]:
        if entry["file_name"] == image.name:
            entry["file_name"] = "photo.jpg"
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    out, maps = tmp_path / "r.json", tmp_path / "maps"
    argv = ["infer", str(renamed), *_model_args(), "--json", str(out), "--save-maps", str(maps),
            "--annotations", str(gt_path), "--draw", str(tmp_path / "drawn")]
    assert main(argv) == 0
    results = json.loads(out.read_text())
    assert results and {e["image_id"] for e in results} == {196141}
    assert {e["file_name"] for e in results} == {"photo.jpg"}
    z = np.load(maps / "photo.npz")
    assert z["heatmaps"].shape == (17, 256, 384) and z["heatmaps"].dtype == np.float32
    assert z["tags"].shape == (17, 256, 384, 2)
    np.testing.assert_allclose(z["center"], [320.0, 215.0])
    np.testing.assert_allclose(z["scale"], [3.2175, 2.145])
    assert z["base_size"].tolist() == [384, 256] and int(z["image_id"]) == 196141
    assert "AP" in capsys.readouterr().out
    drawn = read_image(tmp_path / "drawn" / "photo.jpg")
    assert drawn.shape == read_image(renamed).shape


def test_corrupt_image_stops_without_partial_json(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(require(SAMPLES / "000000000785.jpg"), folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"not a jpeg at all")
    out = tmp_path / "r.json"
    assert main(["infer", str(folder), *_model_args(), "--json", str(out), "--strict"]) == 2
    err = capsys.readouterr().err
    assert "b.jpg" in err and "Traceback" not in err
    assert not out.exists()
    # without --strict the bad file is skipped, listed, and the rest is written (exit 0)
    assert main(["infer", str(folder), *_model_args(), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert "b.jpg" in err and "Traceback" not in err
    assert {r["file_name"] for r in json.loads(out.read_text())} <= {"a.jpg"}


def test_argument_errors(tmp_path, capsys):
    assert main(["infer", str(tmp_path / "missing.jpg"), *_model_args()]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["infer", str(empty), *_model_args()]) == 2
    assert "no images" in capsys.readouterr().err
    image = str(require(SAMPLES / "000000000785.jpg"))
    with pytest.raises(SystemExit):
        main(["infer", image, *_model_args(), "--scales", "1,-2"])
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    assert main(["infer", image, *_model_args(), "--annotations", str(gt)]) == 2
    assert "000000000785.jpg" in capsys.readouterr().err


def test_infer_with_a_registered_model_and_random_weights(tmp_path, capsys):
    """`--model NAME` without weights runs the whole pipeline (smoke runs, benchmarks)."""
    import cv2

    image = np.full((96, 128, 3), 120, np.uint8)
    cv2.imwrite(str(tmp_path / "7.png"), image)
    out = tmp_path / "r.json"
    code = main(["infer", str(tmp_path / "7.png"), "--model", "higherhrnet_tiny",
                 "--input-size", "64", "--no-flip", "--json", str(out)])
    assert code == 0
    assert "random weights" in capsys.readouterr().err
    entries = json.loads(out.read_text())
    assert all(e["image_id"] == 7 and len(e["keypoints"]) == 51 for e in entries)
