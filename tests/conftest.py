"""Shared test fixtures. Real data is read from ../shared (beside the checkout); tests that need
it skip with a clear message when it is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures" / "official_higherhrnet"


def require(path: Path) -> Path:
    """Skip the calling test when a ../shared file is absent (e.g. a checkout without shared/)."""
    if not path.exists():
        pytest.skip(f"needs {path} (the shared/ folder beside the checkout); not found")
    return path


@pytest.fixture
def shared_data() -> Path:
    return require(SHARED_DATA)


@pytest.fixture
def fixtures_dir() -> Path:
    return require(FIXTURES)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def one_torch_thread():
    """torch runs single-threaded for the test (bitwise-comparable float sums), then gets its
    thread count back: a later test's near-tie decisions must not depend on which ran before."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
