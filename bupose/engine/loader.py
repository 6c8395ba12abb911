"""Deterministic training data order and augmentation, so that runs resume exactly.

``EpochSampler`` yields ``(epoch, index)`` pairs: this rank's share of a seeded permutation of the
dataset (``DistributedSampler`` with ``set_epoch``), optionally skipping the samples a resumed run
already used. ``SeededDataset`` draws sample ``index`` of ``epoch`` with the Python, NumPy and
torch RNGs seeded from ``(seed, epoch, index)``: the augmentation of a sample depends neither on
the number of data-loader workers, nor on the number of processes, nor on where a run resumed.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


class EpochSampler(Sampler[tuple[int, int]]):
    """This rank's ``(epoch, index)`` pairs for one epoch.

    Args:
        size: dataset length.
        rank, world_size: this process's share (DistributedSampler semantics: the permutation is
            padded to a multiple of world_size and dealt out ``rank::world_size``).
        seed: permutation seed (same on every rank).
        shuffle: permute (True for training).
    """

    def __init__(self, size: int, rank: int, world_size: int, seed: int, shuffle: bool = True):
        self._inner = DistributedSampler(
            range(size), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed
        )
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select ``epoch`` and drop its first ``skip`` samples (already used before a resume)."""
        self.epoch, self.skip = epoch, skip
        self._inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in list(self._inner)[self.skip :]:
            yield self.epoch, index

    def __len__(self) -> int:
        return max(0, len(self._inner) - self.skip)

    @property
    def per_epoch(self) -> int:
        """Samples per epoch on this rank (before skipping)."""
        return len(self._inner)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for one (epoch, index) pair, well mixed by NumPy's SeedSequence."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class SeededDataset(Dataset):
    """``dataset[index]`` drawn with every global RNG seeded from ``(seed, epoch, index)``.

    A dataset with its own seeded generator gets ``set_epoch(epoch)`` before each item instead
    of relying on the global RNGs (both are done; the global seeding covers third-party code).

    The caller's RNG states are restored afterwards, so drawing a sample in the main process
    (``num_workers=0``) does not disturb the model's own random numbers (dropout, drop-path).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        s = sample_seed(self.seed, epoch, index)
        py_state, np_state = random.getstate(), np.random.get_state()
        torch_state = torch.get_rng_state()
        try:
            random.seed(s)
            np.random.seed(s)
            torch.manual_seed(s)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
