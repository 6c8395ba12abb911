"""``bupose demo``: the end-to-end demonstration on built-in synthetic data.

Steps: (1) generate a small synthetic crowd set, (2) print its counts, (3) draw the ground truth
into a contact sheet, (4) run the network (the shipped default model unless --checkpoint /
--model names another) on held-out synthetic figures: decoding, results JSON, the COCO AP table,
drawn skeletons, heatmap / tag-map / grouping pictures, (5) group oracle network outputs (perfect
heatmaps, noisy associative embedding tags) with the AE and HAE decoders, score both with the
CrowdPose protocol and draw the people found.

Outputs in OUT: data/ (the crowd set), gt_grid.jpg, network/ (data/, results.json, ap.json),
network_grid.jpg, maps/<stem>_{heatmaps,joints,tags,grouping}.jpg, ae_grid.jpg.
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
ORACLE_SIGMA = 6.0  # the stride-4 sigma of 2 seen at input resolution (1.5 map px per px)
DEMO_SCENE = SceneConfig(size=(384, 384), people=(2, 7), scale=(0.15, 0.8), crowding=0.5,
                         occluders=0.3)


NETWORK_IMAGES = 16
MAPS_PICTURES = 2  # images whose heatmap / tag / grouping pictures are written


def add_parser(subparsers: Any) -> None:
    from bupose.cli.common import add_model_args

    parser = subparsers.add_parser(
        "demo", help="run the demonstration on built-in synthetic data",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo_out", metavar="DIR",
                        help="output folder (default demo_out)")
    parser.add_argument("--images", type=int, default=DEMO_IMAGES, metavar="N",
                        help=f"synthetic crowd images (default {DEMO_IMAGES})")
    parser.add_argument("--network-images", type=int, default=NETWORK_IMAGES, metavar="N",
                        help=f"held-out images the network runs on (default {NETWORK_IMAGES})")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="data seed (default 0)")
    add_model_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    print(f"[1/5] synthetic crowds: {args.images} images, seed {args.seed} -> {out / 'data'}")
    ann_file = step_data(out / "data", args.images, args.seed)
    print("[2/5] dataset counts")
    data = read_json(ann_file, "annotation file")
    print(format_stats(keypoint_stats(data, str(ann_file))))
    print("[3/5] ground truth contact sheet")
    print(f"wrote {step_draw(data, ann_file.parent / 'images', out / 'gt_grid.jpg')}")
    print("[4/5] network: model -> maps -> AE grouping on held-out synthetic figures (COCO AP)")
    step_network(args, out)
    print("[5/5] grouping: oracle heatmaps with noisy tags, AE vs HAE decoding "
          "(CrowdPose protocol)")
    step_grouping(data, ann_file, ann_file.parent / "images", out, args.seed)
    return 0


def step_network(args: argparse.Namespace, out: Path) -> dict[str, float]:
    """Run the model (default: the shipped one) on ``args.network_images`` held-out synthetic
    images drawn like its training data; write network/results.json, network/ap.json,
    network_grid.jpg and the maps pictures of the first images; print the AP table."""
    import torch

    from bupose.cli.common import model_from_args
    from bupose.evaluation import format_keypoint_stats, score_keypoints
    from bupose.evaluation.results import write_coco_results
    from bupose.hub import DEFAULT_SCENE, HELDOUT_SEED
    from bupose.inference.predictor import Predictor
    from bupose.utils.io import atomic_write_json

    ann_file = write_synth(out / "network" / "data", args.network_images,
                           HELDOUT_SEED + args.seed, SceneConfig(**DEFAULT_SCENE))
    data = read_json(ann_file, "annotation file")
    model = model_from_args(args, use_default=True).eval()
    predictor = Predictor(model)
    entries: list[dict[str, Any]] = []
    drawn = []
    with torch.inference_mode():
        for n, image_info in enumerate(data["images"]):
            image = read_image(ann_file.parent / "images" / image_info["file_name"])
            maps = predictor.maps(image)
            poses = predictor.decode(maps)
            entries += poses.to_coco(image_info["id"], file_name=image_info["file_name"])
            drawn.append(poses.draw(image, predictor.spec))
            if n < MAPS_PICTURES:
                _maps_pictures(out / "maps", image_info["file_name"], image, maps, poses,
                               predictor.spec)
    write_coco_results(out / "network" / "results.json", entries)
    scored = score_keypoints(entries, data, "coco", COCO17)
    atomic_write_json(out / "network" / "ap.json", scored.stats, indent=1)
    print(format_keypoint_stats(scored))
    print(f"wrote {out / 'network' / 'results.json'}, {out / 'network' / 'ap.json'}, "
          f"{_write_grid(drawn, out / 'network_grid.jpg')}, {out / 'maps'}/")
    return scored.stats


def _maps_pictures(folder: Path, file_name: str, image: np.ndarray, maps: Any, poses: Any,
                   spec: Any) -> None:
    """The maps pictures of one small image, drawn at 3x so that the labels are legible."""
    import cv2

    from bupose.inference.predictor import DecoderInputs
    from bupose.viz.maps import write_map_pictures

    f = 3
    big = cv2.resize(image, (image.shape[1] * f, image.shape[0] * f),
                     interpolation=cv2.INTER_LINEAR)
    scaled = DecoderInputs(maps.heatmaps, maps.tags, None if maps.center is None
                           else np.asarray(maps.center) * f,
                           None if maps.scale is None else np.asarray(maps.scale) * f,
                           maps.base_size)
    keypoints = poses.keypoints.copy()
    keypoints[..., :2] *= f
    write_map_pictures(folder, Path(file_name).stem, big, scaled, keypoints, poses.scores, spec)


def step_data(out_dir: Path, num_images: int, seed: int) -> Path:
    return write_synth(out_dir, num_images, seed, DEMO_SCENE, progress=True)


def step_draw(data: dict[str, Any], image_dir: Path, path: Path, cols: int = 4) -> Path:
    """Draw every image's ground truth and tile them into one JPEG at ``path``."""
    from tqdm import tqdm

    from bupose.viz import draw_poses

    drawn = []
    for image in tqdm(data["images"], desc="draw", unit="img"):
        keypoints = _keypoints_of(data, image["id"])
        drawn.append(draw_poses(read_image(image_dir / image["file_name"]), keypoints, COCO17))
    return _write_grid(drawn, path, cols)


def _keypoints_of(data: dict[str, Any], image_id: int) -> np.ndarray:
    """(N, 17, 3) ground-truth keypoints of one image."""
    rows = [a["keypoints"] for a in data["annotations"] if a["image_id"] == image_id]
    return np.asarray(rows, dtype=np.float64).reshape(-1, COCO17.num_keypoints, 3)


def step_grouping(data: dict[str, Any], ann_file: Path, image_dir: Path, out: Path,
                  seed: int) -> dict[str, dict[str, float]]:
    """Group oracle maps (perfect heatmaps, noisy tags) with the AE and HAE decoders, score both
    with the CrowdPose protocol (easy/medium/hard by crowdIndex) and draw the AE result."""
    from bupose.codecs.oracle import render_oracle_maps
    from bupose.decoders.ae import decode_ae
    from bupose.decoders.hae import decode_hae
    from bupose.evaluation import evaluate_keypoints
    from bupose.evaluation.results import coco_entries
    from bupose.viz import draw_poses

    rng = np.random.default_rng(seed)
    results: dict[str, list[dict[str, Any]]] = {"ae": [], "hae": []}
    drawn = []
    for image in data["images"]:
        gt = _keypoints_of(data, image["id"])
        size = (image["width"], image["height"])
        heatmaps, tags = render_oracle_maps(gt, size, rng, sigma=ORACLE_SIGMA,
                                            person_tag_spread=3.0, joint_tag_noise=0.3)
        for name, decode in (("ae", decode_ae), ("hae", decode_hae)):
            grouped, scores = decode(heatmaps, tags, joint_order=COCO17.joint_order)
            results[name] += coco_entries(image["id"], grouped[..., :3], scores)
            if name == "ae":
                drawn.append(draw_poses(read_image(image_dir / image["file_name"]),
                                        grouped[..., :3], COCO17, scores=scores))
    stats = {name: evaluate_keypoints(entries, str(ann_file), kind="crowdpose", spec=COCO17)
             for name, entries in results.items()}
    names = list(next(iter(stats.values())))
    print("decoder " + " ".join(f"{n:>9}" for n in names))
    for name, values in stats.items():
        print(f"{name:<7} " + " ".join(f"{values[n]:9.3f}" for n in names))
    print(f"wrote {_write_grid(drawn, out / 'ae_grid.jpg')}")
    return stats


def _write_grid(images: list[np.ndarray], path: Path, cols: int = 4) -> Path:
    import cv2

    from bupose.viz import make_grid

    grid = make_grid(images, cols=cols, cell_size=(256, 256))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {path}")
    return atomic_write_bytes(path, buf.tobytes())
