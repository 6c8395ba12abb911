"""``bupose demo``: the end-to-end demonstration on built-in synthetic data.

Steps so far: (1) generate a small synthetic crowd set, (2) print its counts, (3) draw the ground
truth into a contact sheet, (4) score the ground truth with slight noise as a sanity check of the
evaluation. Later steps (train, infer, evaluate a model) are added here as they land.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from bupose.data.synth import SceneConfig, format_stats, keypoint_stats, write_synth
from bupose.structures.spec import COCO17
from bupose.utils.io import atomic_write_bytes, read_image, read_json

DEMO_IMAGES, DEMO_SEED = 16, 0
DEMO_SCENE = SceneConfig(size=(384, 384), people=(2, 7), scale=(0.15, 0.8), crowding=0.5,
                         occluders=0.3)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the demonstration on built-in synthetic data",
        description="Generate a small synthetic crowd set into OUT/data, print its counts, draw "
                    "the ground truth into OUT/gt_grid.jpg and score noisy ground truth as a "
                    "sanity check of the evaluation.")
    parser.add_argument("--out", default="demo_out", metavar="DIR",
                        help="output folder (default demo_out)")
    parser.add_argument("--images", type=int, default=DEMO_IMAGES, metavar="N",
                        help=f"synthetic images (default {DEMO_IMAGES})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="data seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    print(f"[1/4] synthetic crowds: {args.images} images, seed {args.seed} -> {out / 'data'}")
    ann_file = step_data(out / "data", args.images, args.seed)
    print("[2/4] dataset counts")
    data = read_json(ann_file, "annotation file")
    print(format_stats(keypoint_stats(data, str(ann_file))))
    print("[3/4] ground truth contact sheet")
    print(f"wrote {step_draw(data, ann_file.parent / 'images', out / 'gt_grid.jpg')}")
    print("[4/4] sanity check: noisy ground truth scored as predictions")
    step_sanity(data, ann_file)
    return 0


def step_data(out_dir: Path, num_images: int, seed: int) -> Path:
    return write_synth(out_dir, num_images, seed, DEMO_SCENE, progress=True)


def step_draw(data: dict[str, Any], image_dir: Path, path: Path, cols: int = 4) -> Path:
    """Draw every image's ground truth and tile them into one JPEG at ``path``."""
    import cv2
    from tqdm import tqdm

    from bupose.viz import draw_poses, make_grid

    drawn = []
    for image in tqdm(data["images"], desc="draw", unit="img"):
        keypoints = _keypoints_of(data, image["id"])
        drawn.append(draw_poses(read_image(image_dir / image["file_name"]), keypoints, COCO17))
    grid = make_grid(drawn, cols=cols, cell_size=(256, 256))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError("OpenCV could not encode the contact sheet")
    return atomic_write_bytes(path, buf.tobytes())


def _keypoints_of(data: dict[str, Any], image_id: int) -> np.ndarray:
    """(N, 17, 3) ground-truth keypoints of one image."""
    rows = [a["keypoints"] for a in data["annotations"] if a["image_id"] == image_id]
    return np.asarray(rows, dtype=np.float64).reshape(-1, COCO17.num_keypoints, 3)


def noisy_results(data: dict[str, Any], rng: np.random.Generator, noise: float = 0.25
                  ) -> list[dict[str, Any]]:
    """Ground truth as COCO result entries, each labelled joint moved by Gaussian noise of
    ``noise`` * k_i * sqrt(area) per coordinate (k_i = 2 sigma_i, the OKS falloff), so the
    expected OKS is about exp(-noise**2)."""
    k = 2.0 * np.asarray(COCO17.sigmas)
    entries = []
    for ann in data["annotations"]:
        if ann.get("iscrowd", 0) or ann["num_keypoints"] == 0:
            continue
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        labelled = kps[:, 2] > 0
        std = noise * k * np.sqrt(max(ann["area"], 1.0))
        xy = kps[:, :2] + rng.normal(size=(len(kps), 2)) * std[:, None]
        pred = np.concatenate([xy, labelled[:, None].astype(np.float64)], axis=1)
        entries.append({"image_id": ann["image_id"], "category_id": 1,
                        "keypoints": pred.reshape(-1).tolist(), "score": 1.0})
    return entries


def step_sanity(data: dict[str, Any], ann_file: Path) -> dict[str, dict[str, float]] | None:
    """Score noisy ground truth with the COCO and CrowdPose protocols (COCO-17 sigmas); None
    when the evaluation package is unavailable."""
    try:
        from bupose.evaluation import evaluate_keypoints
    except ImportError as e:
        print(f"note: bupose.evaluation is not available ({e}); skipping the sanity check")
        return None
    results = noisy_results(data, np.random.default_rng(0))
    scores = {}
    for kind in ("coco", "crowdpose"):
        stats = evaluate_keypoints(results, str(ann_file), kind=kind, spec=COCO17)
        print(f"{kind} AP of noisy ground truth (expect about 0.9-1): "
              + ", ".join(f"{name} {value:.3f}" for name, value in stats.items()))
        scores[kind] = stats
    return scores
