"""Associative-embedding grouping loss (pull / push), vectorised over batch, people and joints.

ALGORITHMS.md §2.3, official semantics (HigherHRNet ``AELoss``), per image with the people
n = 1..N that have at least one encoded joint:

* reference tag h_n = mean of the tags t_{n,k} read at person n's encoded joints, each in its own
  joint's tag map;
* pull = (1/N) sum_n mean_k ||t_{n,k} - h_n||^2;
* push = 0.5 * sum_{i != j} f(h_i, h_j) / (N (N - 1)) with f = exp(-||h_i - h_j||^2) ("exp") or
  max(0, 1 - ||h_i - h_j||) ("max"); push = 0 when N <= 1, both are 0 when N = 0.

Tag dimension D >= 1: the official code has D = 1; for D > 1 we use the Euclidean (L2) distance
over the D components everywhere (squared for pull and "exp", plain for "max"), which reduces to the
official formulas for D = 1.

Targets (``bupose.data.targets``): ``tag_indices`` (B, M, K, 2) int64 with ONE SLOT PER JOINT TYPE
(slot k holds joint k of the person): [k * h * w + y * w + x, valid]. The loss itself only needs the
flat index and the flag; the slot number is what ``hae.py`` uses as joint id.

Everything is computed in float32 (tags are cast after gathering), without host synchronisation.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

AEType = Literal["exp", "max"]


class AELossTerms(NamedTuple):
    """Unweighted per-image AE terms (multiply by the pull / push factors, then average over B)."""

    pull: Tensor  # (B,) float32
    push: Tensor  # (B,) float32


def gather_tags(tags: Tensor, tag_indices: Tensor, tag_dim: int = 1) -> tuple[Tensor, Tensor]:
    """Read each encoded joint's tag vector from the tag maps.

    Args:
        tags: (B, K * D, h, w) tag maps, joint-major channels (channel k * D + d), any float dtype.
        tag_indices: (B, M, K, 2) int64 [k * h * w + y * w + x, valid] at this map's resolution.
        tag_dim: D.

    Returns:
        t: (B, M, K, D) float32 tags at the encoded locations (arbitrary where not visible).
        visible: (B, M, K) bool, valid flag > 0.
    """
    b, c, h, w = tags.shape
    if c % tag_dim:
        raise ValueError(f"{c} tag channels is not a multiple of tag_dim {tag_dim}")
    k = c // tag_dim
    shape = tuple(tag_indices.shape)
    if len(shape) != 4 or shape[0] != b or shape[2] != k or shape[3] != 2:
        raise ValueError(
            f"tag_indices must be (B={b}, M, K={k}, 2), got {shape}"
        )
    hw = h * w
    visible = tag_indices[..., 1] > 0
    flat = torch.where(visible, tag_indices[..., 0], torch.zeros_like(tag_indices[..., 0]))
    # Flat index k*hw + p into (K, hw) -> index k*D*hw + d*hw + p into (K, D, hw).
    base = (flat // hw) * (tag_dim * hw) + flat % hw
    offsets = torch.arange(tag_dim, device=tags.device, dtype=base.dtype) * hw
    index = (base[..., None] + offsets).reshape(b, -1)
    t = torch.take_along_dim(tags.reshape(b, -1), index, dim=1)
    return t.reshape(*tag_indices.shape[:3], tag_dim).float(), visible


def masked_pull(
    t: Tensor, mask: Tensor, weights: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Mean tag and mean (weighted) squared distance to it over the masked entries of a set.

    Args:
        t: (..., K, D) float32 tags.
        mask: (..., K) bool, members of each set.
        weights: optional (..., K) per-entry weights (e.g. focal pulling weights).

    Returns:
        center: (..., D) mean of the members (0 for empty sets).
        pull: (...,) mean over members of weight * ||t - center||^2 (0 for empty sets).
        count: (...,) float32 number of members.
    """
    m = mask.float()
    count = m.sum(dim=-1)
    denom = count.clamp(min=1.0)
    center = (t * m[..., None]).sum(dim=-2) / denom[..., None]
    sq = torch.square(t - center[..., None, :]).sum(dim=-1)
    if weights is not None:
        sq = sq * weights
    pull = (sq * m).sum(dim=-1) / denom
    return center, pull, count


def push_loss(centers: Tensor, valid: Tensor, loss_type: AEType = "exp") -> Tensor:
    """AE push over all ordered pairs of distinct valid people, official normalisation.

    Args:
        centers: (B, M, D) float32 reference tags h_n.
        valid: (B, M) bool, people with at least one encoded joint.
        loss_type: "exp" (exp(-||h_i - h_j||^2)) or "max" (max(0, 1 - ||h_i - h_j||)).

    Returns:
        (B,) float32: 0.5 * sum_{i != j} f / (N (N - 1)), 0 when N <= 1.
    """
    diff = centers[:, :, None, :] - centers[:, None, :, :]
    if loss_type == "exp":
        f = torch.exp(-torch.square(diff).sum(dim=-1))
    elif loss_type == "max":
        # vector_norm has a zero subgradient at 0, so identical tags give finite gradients.
        f = torch.clamp(1.0 - torch.linalg.vector_norm(diff, dim=-1), min=0.0)
    else:
        raise ValueError(f"unknown AE loss type {loss_type!r} (expected 'exp' or 'max')")
    m = centers.shape[1]
    eye = torch.eye(m, dtype=torch.bool, device=centers.device)
    pairs = (valid[:, :, None] & valid[:, None, :] & ~eye).float()
    n = valid.float().sum(dim=1)
    return 0.5 * (f * pairs).sum(dim=(1, 2)) / (n * (n - 1.0)).clamp(min=1.0)


def ae_loss(
    tags: Tensor, tag_indices: Tensor, tag_dim: int = 1, loss_type: AEType = "exp"
) -> AELossTerms:
    """Associative-embedding pull and push per image (unweighted).

    Args:
        tags: (B, K * D, h, w) tag maps of the supervised stage, joint-major channels.
        tag_indices: (B, M, K, 2) int64 targets at the same resolution (see module docstring).
        tag_dim: D.
        loss_type: "exp" (official default) or "max".

    Returns:
        AELossTerms(pull (B,), push (B,)) in float32.
    """
    t, visible = gather_tags(tags, tag_indices, tag_dim)
    centers, pull_n, count = masked_pull(t, visible)
    valid = count > 0
    n = valid.float().sum(dim=1)
    pull = (pull_n * valid.float()).sum(dim=1) / n.clamp(min=1.0)
    return AELossTerms(pull=pull, push=push_loss(centers, valid, loss_type))
