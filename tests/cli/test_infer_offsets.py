"""``bupose infer`` / ``bupose decode --decoder offsets`` with the tiny official OffsetGuided
checkpoint against ``evaluate.py`` run_images() (fixtures ``official_offsetguided/e2e``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bupose.cli import main
from tests.conftest import SHARED, SHARED_DATA, require

OG = SHARED / "fixtures" / "official_offsetguided"
IMAGES = SHARED_DATA / "samples" / "coco"
VARIANTS = {
    "flip_long640": [],
    "noflip_long640": ["--no-flip"],
    "flip_fixedheight640": ["--resize-mode", "fixed-height"],
}


def _official(variant: str) -> dict[str, Any]:
    return json.loads(require(OG / "e2e" / "e2e_tiny.json").read_text())["variants"][variant]


def _same_person(ours: dict[str, Any], ref: dict[str, Any], miss: np.ndarray) -> bool:
    """One of our entries vs an official one: score ~1e-6; joints found (our value > 0) at the
    official coordinates (2-decimal rounding, 1e-2 px) with flag 1 when inside the image's
    positive quadrant; joints not found are (0, 0, 0) here and (offset/scale, flag 0) there."""
    if abs(ours["score"] - ref["score"]) > 1e-6:
        return False
    mine = np.asarray(ours["keypoints"]).reshape(-1, 3)
    theirs = np.asarray(ref["keypoints"]).reshape(-1, 3)
    found = mine[:, 2] > 0
    if not np.allclose(mine[found, :2], theirs[found, :2], atol=1e-2):
        return False
    flags = (theirs[found, 0] > 0) | (theirs[found, 1] > 0)
    if not np.array_equal(theirs[found, 2], flags.astype(float)):
        return False
    return bool(np.all(mine[~found] == 0) and np.allclose(theirs[~found, :2], miss, atol=1e-2)
                and np.all(theirs[~found, 2] == 0))


def _assert_same_results(ours: list[dict[str, Any]], variant: str) -> None:
    """As sets per image (the random tiny net has near-equal candidates, README tolerance)."""
    for image in _official(variant)["images"]:
        image_id = image["image_id"]
        miss = np.asarray(image["meta_offset"]) / np.asarray(image["meta_scale"])
        mine = [e for e in ours if e["image_id"] == image_id]
        assert len(mine) == image["n_poses"] == len(image["coco_results"]), image_id
        free = list(range(len(mine)))
        for ref in image["coco_results"]:
            match = next((i for i in free if _same_person(mine[i], ref, miss)), None)
            assert match is not None, f"image {image_id}: official person {ref} not found"
            free.remove(match)


def _infer(tmp_path: Path, variant: str, *extra: str) -> list[dict[str, Any]]:
    ckpt = require(OG / "tiny" / "tiny_checkpoint.pth")
    names = [f"{image['image_id']:012d}.jpg" for image in _official(variant)["images"]]
    images = [str(require(IMAGES / name)) for name in names]
    out = tmp_path / f"{variant}.json"
    args = ["infer", *images, "--checkpoint", str(ckpt), "--json", str(out), *extra]
    assert main([*args, *VARIANTS[variant]]) == 0
    return json.loads(out.read_text())


def test_infer_flip_long_edge_equals_official(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    pictures = tmp_path / "pictures"
    ours = _infer(tmp_path, "flip_long640", "--save-maps", str(maps), "--show-maps",
                  str(pictures), "--draw", str(pictures))
    _assert_same_results(ours, "flip_long640")
    for kind in ("", "_heatmaps", "_joints", "_offsets", "_grouping"):
        assert (pictures / f"000000196141{kind}.jpg").stat().st_size > 1000
    # the saved maps re-decode to the same results
    out = tmp_path / "decoded.json"
    files = sorted(str(p) for p in maps.glob("*.npz"))
    assert main(["decode", *files, "--decoder", "offsets", "--json", str(out)]) == 0
    _assert_same_results(json.loads(out.read_text()), "flip_long640")


@pytest.mark.parametrize("variant", ["noflip_long640", "flip_fixedheight640"])
def test_infer_variants_equal_official(tmp_path: Path, variant: str) -> None:
    _assert_same_results(_infer(tmp_path, variant), variant)


def test_decode_rejects_bad_maps(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, heatmaps=np.zeros((17, 8, 8), np.float32))
    assert main(["decode", str(bad), "--decoder", "offsets"]) != 0


def test_decode_fixture_maps_in_input_pixels(tmp_path: Path) -> None:
    """A decoding fixture without its meta: the people in input pixels (official poses)."""
    with np.load(require(OG / "decoding" / "coco_196141.npz")) as z:
        heatmaps, offsets, poses = z["heatmaps"], z["offsets"], z["poses"]
    maps = tmp_path / "m.npz"
    np.savez(maps, heatmaps=heatmaps, offsets=offsets)
    out = tmp_path / "r.json"
    assert main(["decode", str(maps), "--decoder", "offsets", "--json", str(out)]) == 0
    entries = json.loads(out.read_text())
    kps = np.asarray([e["keypoints"] for e in entries]).reshape(len(entries), -1, 3)
    np.testing.assert_allclose(kps[..., :2], poses[..., :2], atol=1e-4)
    np.testing.assert_allclose([e["score"] for e in entries], poses[..., 2].sum(-1) / 17,
                               atol=1e-6)


def test_decode_flags_override_defaults(tmp_path: Path) -> None:
    """--person-thre drops the people whose mean joint value is below it (official rule)."""
    with np.load(require(OG / "decoding" / "mini_217285_13p.npz")) as z:
        maps = tmp_path / "m.npz"
        np.savez(maps, heatmaps=z["heatmaps"], offsets=z["offsets"],
                 meta_offset=z["meta_offset"], meta_scale=z["meta_scale"])
        values = z["poses"][..., 2]
    mean = np.asarray([v[v > 0].mean() for v in values])
    threshold = float(np.sort(mean)[len(mean) // 2]) - 1e-4
    out = tmp_path / "r.json"
    args = ["decode", str(maps), "--decoder", "offsets", "--json", str(out)]
    assert main([*args, "--person-thre", str(threshold), "--topk", "32"]) == 0
    assert len(json.loads(out.read_text())) == int(np.sum(mean >= threshold)) < len(mean)
    # settings saved with the maps (infer --save-maps) apply unless a flag is given
    with np.load(maps) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(maps, **arrays, offset_params=json.dumps({"person_thre": threshold}))
    assert main(args) == 0
    assert len(json.loads(out.read_text())) == int(np.sum(mean >= threshold))
    assert main([*args, "--person-thre", "0.04"]) == 0
    assert len(json.loads(out.read_text())) == len(mean)
