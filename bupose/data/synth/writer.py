"""Write a synthetic crowd set in COCO keypoint format.

Layout (``split`` None):  OUT/images/000000000001.jpg ...  and  OUT/annotations.json;
with a split name S:      OUT/S/images/...                 and  OUT/S/annotations.json.
Image ids are 1..N and the file stems are the zero-padded ids. Image i is drawn from
``numpy.random.default_rng([seed, i])`` only, and the JSON carries no time stamp, so one seed
gives byte-identical files on every run (on one OpenCV build).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from bupose.data.synth.scene import Scene, SceneConfig, generate_scene
from bupose.errors import ConfigError
from bupose.structures.spec import COCO17
from bupose.utils.io import atomic_write_bytes, atomic_write_json

FORMAT_VERSION = 1
JPEG_QUALITY = 92


def dataset_paths(out_dir: str | os.PathLike, split: str | None = None) -> tuple[Path, Path]:
    """(annotation file, image directory) of a synthetic set written to ``out_dir``."""
    root = Path(out_dir) / split if split else Path(out_dir)
    return root / "annotations.json", root / "images"


def person_category() -> dict[str, Any]:
    """The COCO person category with the COCO-17 keypoint names and 1-based skeleton."""
    return {
        "id": 1, "name": "person", "supercategory": "person",
        "keypoints": list(COCO17.keypoints),
        "skeleton": [[a + 1, b + 1] for a, b in COCO17.skeleton],
    }


def scene_record(scene: Scene, image_id: int, file_name: str, first_ann_id: int
                 ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The COCO ``images`` entry and ``annotations`` entries of one scene."""
    h, w = scene.image.shape[:2]
    image = {"id": image_id, "file_name": file_name, "width": w, "height": h,
             "crowdIndex": round(scene.crowd_index, 4)}
    anns = []
    for i, person in enumerate(scene.persons):
        kps = person.keypoints.astype(np.float64)
        kps[:, :2] = np.round(kps[:, :2], 2)
        anns.append({
            "id": first_ann_id + i, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [float(v) if k % 3 < 2 else int(v)
                          for k, v in enumerate(kps.reshape(-1))],
            "num_keypoints": int(np.sum(kps[:, 2] > 0)),
            "bbox": [round(float(v), 2) for v in person.bbox],
            "area": round(person.area, 2),
            "segmentation": person.segmentation,
        })
    return image, anns


def encode_image(image: np.ndarray, ext: str) -> bytes:
    """RGB uint8 image -> file bytes (JPEG at a fixed quality, or PNG)."""
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext == "jpg" else []
    ok, buf = cv2.imencode(f".{ext}", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a .{ext} image")
    return buf.tobytes()


def write_synth(out_dir: str | os.PathLike, num_images: int, seed: int,
                cfg: SceneConfig | None = None, split: str | None = None,
                image_format: str = "jpg", progress: bool = False) -> Path:
    """Generate ``num_images`` scenes and write images plus the COCO JSON (all atomically).

    Returns:
        The path of the annotation file.
    """
    cfg = cfg or SceneConfig()
    if image_format not in ("jpg", "png"):
        raise ConfigError(f"image format {image_format!r} must be 'jpg' or 'png'")
    if num_images < 1:
        raise ConfigError(f"--images {num_images}: need at least one image")
    ann_file, image_dir = dataset_paths(out_dir, split)
    images, annotations = [], []
    ids = range(1, num_images + 1)
    if progress:
        from tqdm import tqdm

        ids = tqdm(ids, desc="synth", unit="img")
    for image_id in ids:
        scene = generate_scene(np.random.default_rng([seed, image_id]), cfg)
        file_name = f"{image_id:012d}.{image_format}"
        atomic_write_bytes(image_dir / file_name, encode_image(scene.image, image_format))
        record, anns = scene_record(scene, image_id, file_name, len(annotations) + 1)
        images.append(record)
        annotations.extend(anns)
    info = {"description": "bupose synthetic crowds", "version": FORMAT_VERSION, "seed": seed,
            "split": split or "", "config": dataclasses.asdict(cfg)}
    data = {"info": info, "images": images, "annotations": annotations,
            "categories": [person_category()]}
    atomic_write_json(ann_file, data)
    return ann_file
