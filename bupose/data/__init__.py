"""Datasets: readers (annotation file + images -> ``Sample``), transforms, targets.

``DATASETS`` maps a dataset name to a reader factory called as
``DATASETS.get(name)(ann_file, image_dir, spec=None, train_filter=False, **extra)``; ``spec=None``
means the dataset's built-in keypoint spec ("coco_format" requires one).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bupose.data.coco import CocoKeypoints
from bupose.data.mpii import MpiiKeypoints, read_mpii_annotations
from bupose.data.sample import Sample
from bupose.data.targets import AETargets, encode_ae_targets
from bupose.data.transforms import (
    TrainAugment,
    multi_scale_size,
    normalize,
    resize_align,
    training_views,
)
from bupose.errors import ConfigError
from bupose.registry import Registry
from bupose.structures.spec import KeypointSpec, get_spec

ReaderFactory = Callable[..., Any]
DATASETS: Registry[ReaderFactory] = Registry("dataset")


def __getattr__(name: str) -> Any:
    # AETrainDataset needs torch; import it lazily so `bupose data` starts fast.
    if name == "AETrainDataset":
        from bupose.data.ae_dataset import AETrainDataset

        return AETrainDataset
    raise AttributeError(f"module 'bupose.data' has no attribute {name!r}")


def _coco_format_factory(default_spec: str | None) -> ReaderFactory:
    def build(
        ann_file: str | os.PathLike,
        image_dir: str | os.PathLike,
        spec: KeypointSpec | None = None,
        train_filter: bool = False,
    ) -> CocoKeypoints:
        if spec is None:
            if default_spec is None:
                raise ConfigError("dataset 'coco_format' needs a keypoint spec (spec=...)")
            spec = get_spec(default_spec)
        return CocoKeypoints(ann_file, image_dir, spec, train_filter=train_filter)

    return build


for _name, _spec in (
    ("coco", "coco17"),
    ("crowdpose", "crowdpose14"),
    ("ochuman", "ochuman17"),
    ("aic", "aic14"),
    ("mhp", "mpii16"),  # LV-MHP keypoints are in MPII order
    ("coco_format", None),
):
    DATASETS.add(_name, _coco_format_factory(_spec))


@DATASETS.register("mpii")
def _mpii(
    ann_file: str | os.PathLike,
    image_dir: str | os.PathLike,
    spec: KeypointSpec | None = None,
    train_filter: bool = False,
    split: str = "all",
) -> MpiiKeypoints:
    """MPII (mmpose JSON or the hourglass JSON[.gz]); every listed image has people, so
    ``train_filter`` changes nothing."""
    return MpiiKeypoints(ann_file, image_dir, spec or get_spec("mpii16"), split=split)


__all__ = [
    "DATASETS",
    "AETargets",
    "AETrainDataset",
    "CocoKeypoints",
    "MpiiKeypoints",
    "Sample",
    "TrainAugment",
    "encode_ae_targets",
    "multi_scale_size",
    "normalize",
    "read_mpii_annotations",
    "resize_align",
    "training_views",
]
