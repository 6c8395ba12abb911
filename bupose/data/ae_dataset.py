"""``AETrainDataset``: reader + official augmentation + AE targets -> training tensors.

Defaults are HigherHRNet-W32-512 (input 512, outputs [128, 256]); HigherHRNet-W32-640 uses 640 and
[160, 320]; the single-resolution bottom-up HRNet uses outputs [128].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from bupose.data.sample import Sample
from bupose.data.targets import encode_ae_targets
from bupose.data.transforms import TrainAugment, normalize, training_views
from bupose.errors import ConfigError, DataError
from bupose.structures.spec import KeypointSpec


class SampleReader(Protocol):
    """What a reader offers: ``len(reader)`` and ``reader[i] -> Sample``."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Sample: ...


class AETrainDataset(Dataset):
    """Training items for the associative-embedding family.

    Args:
        reader: any reader returning ``Sample`` (CocoKeypoints, MpiiKeypoints, synthetic).
        spec: keypoint spec (flip index; K must match the reader's samples).
        input_size: square input side H = W.
        output_sizes: square map sides, lowest resolution first.
        sigma: heatmap Gaussian sigma in map pixels at every resolution.
        max_people: M, rows of the tag indices.
        augment: augmentation settings; None = deterministic centred crop without flip.
        seed: with a seed, item i of epoch e always gets the same augmentation (generator seeded
            with (seed, e, i), independent of DataLoader workers); None = fresh entropy.

    Items: dict(image=(3, H, W) float32 normalised, heatmaps=[(K, h_r, w_r) float32],
    masks=[(h_r, w_r) float32], tag_indices=(M, K, 2) int64), all torch tensors.
    """

    def __init__(
        self,
        reader: SampleReader,
        spec: KeypointSpec,
        input_size: int = 512,
        output_sizes: Sequence[int] = (128, 256),
        sigma: float = 2.0,
        max_people: int = 30,
        augment: TrainAugment | None = TrainAugment(),  # noqa: B008 (frozen dataclass)
        seed: int | None = None,
    ) -> None:
        sizes = [int(s) for s in output_sizes]
        if not sizes or sizes != sorted(sizes) or min(sizes) <= 0:
            raise ConfigError(f"output_sizes must be positive and ascending, got {list(sizes)}")
        if input_size <= 0:
            raise ConfigError(f"input_size must be positive, got {input_size}")
        self.reader = reader
        self.spec = spec
        self.input_size = int(input_size)
        self.output_sizes = sizes
        self.sigma = float(sigma)
        self.max_people = int(max_people)
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Change the augmentation stream (call once per epoch when a seed is set)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.reader)

    def rng_for(self, index: int) -> np.random.Generator:
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng([self.seed, self.epoch, index])

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.reader[index]
        if sample.num_keypoints != self.spec.num_keypoints:
            raise DataError(f"image {sample.file_name}: {sample.num_keypoints} keypoints per "
                            f"person, spec {self.spec.name!r} has {self.spec.num_keypoints}")
        view, frames = training_views(
            sample, self.rng_for(index), self.input_size, self.output_sizes,
            self.spec.flip_index, self.augment,
        )
        targets = encode_ae_targets(
            [f.keypoints for f in frames], [f.mask for f in frames], self.sigma, self.max_people
        )
        return {
            "image": torch.from_numpy(normalize(view.image)),
            "heatmaps": [torch.from_numpy(h) for h in targets.heatmaps],
            "masks": [torch.from_numpy(m) for m in targets.masks],
            "tag_indices": torch.from_numpy(targets.tag_indices),
        }
