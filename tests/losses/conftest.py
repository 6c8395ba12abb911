"""Random AE targets for the loss tests (tags, tag_indices with one slot per joint type)."""

from __future__ import annotations

import pytest
import torch


def random_ae_batch(
    seed: int, k: int = 5, tag_dim: int = 1, m: int = 7, h: int = 6, w: int = 7, scale: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(tags (3, K*D, h, w), tag_indices (3, M, K, 2)) with N = 0, 1 and many people.

    Image 0 has no people; image 1 one person plus a row whose joints are all invalid; image 2 has
    up to M people with random visibility (one of them with a single joint). Invalid slots carry a
    random (nonzero) index so that ignoring them is tested too.
    """
    g = torch.Generator().manual_seed(seed)
    tags = torch.randn(3, k * tag_dim, h, w, generator=g) * scale
    idx = torch.zeros(3, m, k, 2, dtype=torch.long)
    idx[..., 0] = torch.randint(0, k * h * w, (3, m, k), generator=g)
    pos = torch.randint(0, h * w, (3, m, k), generator=g)
    joint = torch.arange(k)[None, None, :] * (h * w)
    vis = torch.zeros(3, m, k, dtype=torch.bool)
    vis[1, 0] = torch.rand(k, generator=g) < 0.7
    vis[1, 0, int(torch.randint(0, k, (1,), generator=g))] = True
    p = 0.2 + 0.8 * torch.rand(m, 1, generator=g)
    vis[2] = torch.rand(m, k, generator=g) < p
    vis[2, 1] = False
    vis[2, 1, int(torch.randint(0, k, (1,), generator=g))] = True  # single-joint person
    idx[..., 0] = torch.where(vis, joint + pos, idx[..., 0])
    idx[..., 1] = vis.long()
    return tags, idx


@pytest.fixture
def ae_batch():
    return random_ae_batch
