"""Shared helpers for the decoder tests: official grouping fixtures and synthetic maps."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from tests.conftest import FIXTURES, require

GROUPING = FIXTURES / "grouping"
SOLVER_INDEPENDENT = (
    "000000000785", "000000040083", "000000196141", "000000197388",
)
SOLVER_DEPENDENT = (
    "000000000785_ambiguous", "000000040083_ambiguous", "000000196141_ambiguous",
    "000000197388_ambiguous", "crowd40",
)
# Official variants: name in the fixture -> (adjust, refine)
FLAG_VARIANTS = {
    "adjust0_refine0": (False, False),
    "adjust1_refine0": (True, False),
    "adjust0_refine1": (False, True),
    "adjust1_refine1": (True, True),
}


@lru_cache(maxsize=4)
def load_fixture(name: str) -> dict[str, np.ndarray]:
    """Arrays of ``structured_<name>.npz`` (decoder inputs without the batch axis)."""
    path = require(Path(GROUPING) / f"structured_{name}.npz")
    with np.load(path) as data:
        out = {key: data[key] for key in data.files}
    out["det"], out["tag"] = out["det"][0], out["tag"][0]
    return out


def official(data: dict[str, np.ndarray], what: str, variant: str) -> np.ndarray:
    """Fixture key for a flag variant: the default (adjust1_refine1) has no suffix."""
    if variant == "adjust1_refine1" and f"{what}_{variant}" not in data:
        return data[what]
    return data[f"{what}_{variant}"]


def synthetic_maps(
    rng: np.random.Generator, k: int = 3, h: int = 37, w: int = 45, dim: int = 2,
    people: int = 4,
) -> tuple[np.ndarray, np.ndarray]:
    """Small maps with the features that stress the decoders.

    Heatmaps: zero background, a negative patch, Gaussian peaks and a two-pixel plateau (exact
    ties); tags: piecewise-constant per person in vertical bands (bands meet inside tiles),
    with small noise; with dim = 2 both components are nearly equal, as with the flip test.
    """
    heat = np.zeros((k, h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    person_tags = rng.uniform(-3, 3, size=people)
    for j in range(k):
        for _ in range(people):
            cx, cy = rng.integers(0, w), rng.integers(0, h)
            amp = rng.uniform(0.05, 1.0)
            heat[j] += amp * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 2.0**2))
        heat[j][heat[j] < 1e-3] = 0.0
        heat[j, :5, :6] = -0.05
        heat[j, h // 2, w // 3 : w // 3 + 2] = 0.5  # plateau: two equal maxima
    band = np.minimum((xx * people) // w, people - 1)
    tags = person_tags[band][None, :, :, None] + rng.normal(0, 0.03, (k, h, w, dim))
    return heat.astype(np.float32), tags.astype(np.float32)
