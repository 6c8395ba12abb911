"""``TopDownDataset``: one item per annotated person, cropped and encoded as the CAL reference
(``COCODataset`` + ``JointsDataset.__getitem__``, ALGORITHMS.md §6.2-6.3).

People kept (reference ``_load_coco_keypoint_annotation_kernal``): non-crowd annotations of the
person category with ``area > 0``, a box that survives the clean-up (``topdown.clean_box``) and
at least one non-zero keypoint value; visibility v > 1 counts as 1. Their box gives the crop
(centre, aspect-fixed x1.25 scale); training draws half-body / scale / rotation / flip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from bupose.codecs.cal import encode_cal_targets
from bupose.data.topdown import (
    UPPER_BODY_IDS,
    CropParams,
    TopDownAugment,
    box_to_center_scale,
    clean_box,
    flip_joints,
    joints_to_input,
    sample_crop,
    udp_warp_matrix,
    warp_crop,
)
from bupose.data.transforms import normalize
from bupose.errors import ConfigError
from bupose.structures.spec import KeypointSpec
from bupose.utils.io import read_image


@dataclass(frozen=True)
class PersonRecord:
    """One person of the dataset: image, joints (K, 2) image px, visible (K,) 0/1, and the box
    as center (2,) float32 / scale (2,) float32 (units of 200 px)."""

    image_id: int
    file_name: str
    width: int
    joints: np.ndarray
    visible: np.ndarray
    center: np.ndarray
    scale: np.ndarray


def gt_person_boxes(
    anns: list[dict[str, Any]], image_wh: tuple[int, int]
) -> list[tuple[dict[str, Any], np.ndarray]]:
    """The annotations the reference crops, with their cleaned [x, y, w, h] boxes, in file order.

    Kept: ``iscrowd`` 0, category 1 (when given), ``area > 0`` (box area when absent), a box
    the clean-up keeps, and ``max(keypoints) != 0``.
    """
    people = []
    for ann in anns:
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1 or not ann.get("bbox"):
            continue
        area = ann.get("area", ann["bbox"][2] * ann["bbox"][3])
        box = clean_box(ann["bbox"], image_wh)
        if area <= 0 or box is None or max(ann.get("keypoints") or [0]) == 0:
            continue
        people.append((ann, box))
    return people


def person_records(reader: Any, num_keypoints: int, aspect: float, padding: float = 1.25
                   ) -> list[PersonRecord]:
    """Every kept person of a ``CocoKeypoints`` reader, image by image in file order."""
    records = []
    for image_id in reader.image_ids:
        info = reader.image_info(image_id)
        wh = (int(info["width"]), int(info["height"]))
        for ann, box in gt_person_boxes(reader.annotations(image_id), wh):
            kpts = np.asarray(ann["keypoints"], np.float64).reshape(num_keypoints, 3)
            center, scale = box_to_center_scale(box, aspect, padding, clean=False)
            records.append(PersonRecord(
                image_id=int(image_id), file_name=str(info["file_name"]), width=wh[0],
                joints=kpts[:, :2].copy(), visible=np.minimum(kpts[:, 2], 1.0),
                center=center, scale=scale))
    return records


class TopDownDataset(Dataset):
    """Training (or evaluation-mode) crops with CAL targets.

    Args:
        reader: ``bupose.data.coco.CocoKeypoints`` (its annotations, image folder and spec).
        spec: keypoint spec (flip index, K).
        input_size_hw: crop (h, w), e.g. (64, 48).
        heatmap_size_hw: map (h, w); default input / 4.
        sigma, locref_stdev, mask_sigma, kpd: target settings (``codecs.cal``).
        augment: training augmentation; None = evaluation mode (the box as it is).
        seed: item i of epoch e gets generator (seed, e, i); None = fresh entropy.
        padding: box enlargement (1.25).

    Items: dict of torch tensors ``image`` (3, h, w) float32 normalised (ImageNet), ``heatmaps``
    (K, h/4, w/4), ``offsets`` (2K, h/4, w/4), ``mask_01``, ``mask_g`` (K, h/4, w/4),
    ``target_weight`` (K, 1), ``center`` (2,), ``scale`` (2,), ``rotation`` () float32.
    """

    def __init__(
        self,
        reader: Any,
        spec: KeypointSpec,
        input_size_hw: tuple[int, int] = (64, 48),
        heatmap_size_hw: tuple[int, int] | None = None,
        sigma: float = 0.3,
        locref_stdev: float = 1.5,
        mask_sigma: float = 0.3,
        kpd: float = 4.0,
        augment: TopDownAugment | None = None,
        seed: int | None = None,
        padding: float = 1.25,
    ) -> None:
        h, w = (int(v) for v in input_size_hw)
        if h <= 1 or w <= 1:
            raise ConfigError(f"input size (h, w) must be > 1, got {input_size_hw}")
        hh, hw = heatmap_size_hw or (h // 4, w // 4)
        self.reader, self.spec = reader, spec
        self.input_wh, self.heatmap_wh = (w, h), (int(hw), int(hh))
        self.aspect = w * 1.0 / h
        self.settings = (float(sigma), float(locref_stdev), float(mask_sigma), float(kpd))
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.upper_ids = UPPER_BODY_IDS.get(spec.name, ())
        self.records = person_records(reader, spec.num_keypoints, self.aspect, padding)

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (once per epoch when a seed is set)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def rng_for(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index])

    def crop_params(self, index: int) -> CropParams:
        """The crop of item ``index`` (random in training mode, the box in evaluation mode)."""
        rec = self.records[index]
        if self.augment is None:
            return CropParams(rec.center, rec.scale, 0.0, False, False)
        return sample_crop(self.rng_for(index), rec.joints, rec.visible, rec.center, rec.scale,
                           self.augment, self.aspect, self.upper_ids, rec.width)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rec = self.records[index]
        params = self.crop_params(index)
        image = read_image(self.reader.image_dir / rec.file_name)
        return self.encode(image, rec.joints, rec.visible, params)

    def encode(self, image: np.ndarray, joints: np.ndarray, visible: np.ndarray,
               params: CropParams) -> dict[str, torch.Tensor]:
        """Crop ``image`` (H, W, 3) uint8 with ``params`` and encode the person's joints
        (K, 2) image px / visible (K,) (before any flip)."""
        if params.flipped:
            image = image[:, ::-1]
            joints, visible = flip_joints(joints, visible, image.shape[1], self.spec.flip_index)
        matrix = udp_warp_matrix(params.center, params.scale, params.rotation, self.input_wh)
        pixels = warp_crop(image, matrix, self.input_wh)
        joints_in = joints_to_input(joints, params.center, params.scale, params.rotation,
                                    self.input_wh)
        joints_in[np.asarray(visible) == 0] = 0.0  # quirk 9: invisible joints moved to (0, 0)
        t = encode_cal_targets(joints_in, visible, self.input_wh, self.heatmap_wh, *self.settings)
        return {
            "image": torch.from_numpy(normalize(pixels)),
            "heatmaps": torch.from_numpy(t.heatmaps),
            "offsets": torch.from_numpy(t.offsets),
            "mask_01": torch.from_numpy(t.mask_01),
            "mask_g": torch.from_numpy(t.mask_g),
            "target_weight": torch.from_numpy(t.target_weight),
            "center": torch.as_tensor(np.asarray(params.center, np.float32)),
            "scale": torch.as_tensor(np.asarray(params.scale, np.float32)),
            "rotation": torch.tensor(float(params.rotation), dtype=torch.float32),
        }
