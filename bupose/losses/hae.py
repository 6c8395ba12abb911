"""Hierarchical associative-encoding loss (HAE ``AEgroupLoss``) and focal pulling weights.

ALGORITHMS.md §3.4–3.5. Per image, for the people n = 1..N with at least one encoded joint, K joint
types, visible joints V_n, a fixed list of joint groups (from ``KeypointSpec.get_groups(scheme)``:
hierarchical_coco, hierarchical_crowdpose, spatial-prior, mutual-information or user-defined
schemes) and V_{n,g} = V_n ∩ g:

* h_n = mean_{k in V_n} t_{n,k};   h_{n,g} = mean_{k in V_{n,g}} t_{n,k} for non-empty V_{n,g};
* O  = sum_n K * mean_{k in V_n} ||t_{n,k} - h_n||^2          (keypoint-to-instance, weight o);
* Lg = sum_n sum_g |g| * mean_{k in V_{n,g}} ||t_{n,k} - h_{n,g}||^2
  (keypoint-to-group, weight l; |g| is the NOMINAL group size, as in the reference code);
* Hg = sum_n sum_{g: V_{n,g} nonempty} ||h_n - h_{n,g}||^2     (group-to-instance, weight h);
* pull = (o * O / N + l * Lg / N + h * Hg / N) / K, push = AE push of the h_n.

This module returns O / (N K), Lg / (N K) and Hg / (N K) separately and unweighted; ``PoseLoss``
applies o / l / h (released configs: 0.0 / 1.0 / 1.5) and the pull factor. With (o, l, h) =
(1, 0, 0) the pull equals the plain AE pull.

Group membership is by the TRUE joint id: slot k of ``tag_indices`` is joint k (one slot per joint
type). The reference code looks group members up by position in a list that its encoder packs
contiguously, so for people with missing joints it picks the wrong joints (a bug, ALGORITHMS.md
§3.4); with one slot per joint type, position and joint id coincide and the bug cannot occur.

Tag dimension D >= 1: distances are Euclidean over the D components (official D = 1).

Focal pulling (``focal``):

* "iqr" (code-faithful, ``AEgroupfocalLoss`` / ``AEgroupfocalLossv2``): inside each set being pulled
  (a person's visible joints for O, a person's visible group members for Lg), Tukey fences on the
  tag values with Q1 = 25th percentile (numpy "lower" interpolation) and Q3 = 75th ("higher"):
  joints below Q1 - 1.5 IQR or above Q3 + 1.5 IQR get weight 2, the others 1; weights are
  detached. The reference computes the fences on a SORTED copy of the tags and then applies the
  weights in the original joint order, so the ×2 lands on whichever joints happen to sit at the
  outliers' sorted positions; we fix this and weight the actual outlier joints. For D > 1 (our
  extension) a joint is an outlier when any component is outside its fences.
* "gamma" — OUR EXTRAPOLATION, not from the paper or the code (the paper's formula is not
  available): w = 1 + (d / max d)^gamma with d = ||t - center|| of each member to the mean it is
  pulled towards and the max over the set's members; detached; w = 1 when all d are 0.
* Hg is never focal-weighted (as in the reference).

Push variants (``loss_type``; ``AEgroupfocalLoss`` of the HAE code, ALGORITHMS.md §3.5), over the
N valid people's tags h_n, with d_ij = ||h_i - h_j|| (|h_i - h_j| for the official D = 1) and the
official normalisation 0.5 / (N (N - 1)):

* "exp" (the reference's "exp_normal") and "max": the AE push (``losses.ae.push_loss``);
* "exp_focal": sum_{i != j} w_ij exp(-d_ij^2) with w_ij = 1.2 when 0 < d_ij < mean d, 0.8 when
  d_ij >= mean d, 1.0 when d_ij = 0; the mean is over the whole N x N matrix, zero diagonal
  included (as the reference computes it); weights detached;
* "exp_topk": the nonzero d_ij of the ordered pairs i != j (a pair counts twice, exact ties
  drop out), of which the k = ceil(0.7 n) largest are kept (computed in float64 as the
  reference's Python ``math.ceil(0.7 * n)``): sum exp(-d^2) over them. Reference quirk
  named, not reproduced: the reference copies the kept distances into a new tensor
  (``torch.tensor(list)``), which cuts the gradient, so its exp_topk push never trains the
  tags; here the gradient flows. Note that the largest distances are the easy pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from bupose.errors import ConfigError
from bupose.losses.ae import gather_tags, masked_pull, push_loss

Focal = Literal["none", "iqr", "gamma"]
PushType = Literal["exp", "max", "exp_focal", "exp_topk"]
PUSH_TYPES: tuple[str, ...] = ("exp", "max", "exp_focal", "exp_topk")
TOPK_FRACTION = 0.7  # share of the nonzero pair distances exp_topk keeps (reference value)


class HAELossTerms(NamedTuple):
    """Unweighted per-image HAE terms, each (B,) float32 (see the module docstring)."""

    pull_keypoint_instance: Tensor  # O / (N K)
    pull_keypoint_group: Tensor  # Lg / (N K)
    pull_group_instance: Tensor  # Hg / (N K)
    push: Tensor


def group_matrix(groups: Sequence[Sequence[int]], num_keypoints: int) -> Tensor:
    """(G, K) bool membership matrix of ``groups``; raises ConfigError for bad groups."""
    g = torch.zeros(len(groups), num_keypoints, dtype=torch.bool)
    for i, members in enumerate(groups):
        if len(members) == 0:
            raise ConfigError(f"HAE group {i} is empty")
        if len(set(members)) != len(members):
            raise ConfigError(f"HAE group {list(members)} lists a joint twice")
        for k in members:
            if not 0 <= int(k) < num_keypoints:
                raise ConfigError(
                    f"HAE group {list(members)} has joint {k}, outside 0..{num_keypoints - 1}"
                )
            g[i, int(k)] = True
    return g


def iqr_weights(t: Tensor, mask: Tensor, outlier_weight: float = 2.0) -> Tensor:
    """Focal pulling weights by the interquartile rule, per set of tags (detached).

    Args:
        t: (..., K, D) tags; mask: (..., K) bool members of each set.
        outlier_weight: weight of the outliers (2 in the reference), others get 1.

    Returns:
        (..., K) float32 weights (1 for non-members).
    """
    t = t.detach().float()
    inf = torch.full_like(t, float("inf"))
    values = torch.where(mask[..., None], t, inf).transpose(-1, -2)  # (..., D, K)
    ordered = values.sort(dim=-1).values
    nm1 = (mask.sum(dim=-1) - 1).clamp(min=0)  # (...,) n - 1
    lo = nm1 // 4  # floor(0.25 (n - 1)): numpy "lower"
    hi = (3 * nm1 + 3) // 4  # ceil(0.75 (n - 1)): numpy "higher"
    size = (*ordered.shape[:-1], 1)
    q1 = ordered.gather(-1, lo[..., None, None].expand(size)).squeeze(-1)  # (..., D)
    q3 = ordered.gather(-1, hi[..., None, None].expand(size)).squeeze(-1)
    iqr = q3 - q1
    low, high = (q1 - 1.5 * iqr)[..., None, :], (q3 + 1.5 * iqr)[..., None, :]
    outlier = ((t < low) | (t > high)).any(dim=-1) & mask
    return 1.0 + (outlier_weight - 1.0) * outlier.float()


def gamma_weights(t: Tensor, center: Tensor, mask: Tensor, gamma: float) -> Tensor:
    """OUR EXTRAPOLATION of focal pulling: w = 1 + (d / max d)^gamma, detached.

    Args:
        t: (..., K, D) tags; center: (..., D) the mean each set is pulled towards;
        mask: (..., K) bool members; gamma: > 0.

    Returns:
        (..., K) float32 weights in [1, 2] (1 for non-members and for sets with max d = 0).
    """
    d = torch.linalg.vector_norm(t.detach() - center.detach()[..., None, :], dim=-1)
    d = d * mask.float()
    dmax = d.amax(dim=-1, keepdim=True)
    ratio = d / dmax.clamp(min=torch.finfo(d.dtype).tiny)
    return 1.0 + torch.where(dmax > 0, ratio.pow(gamma), torch.zeros_like(ratio))


def focal_pull(
    t: Tensor, mask: Tensor, focal: Focal = "none", gamma: float = 2.0
) -> tuple[Tensor, Tensor, Tensor]:
    """``masked_pull`` with optional focal weights: (center (..., D), pull (...,), count (...,))."""
    if focal == "none":
        return masked_pull(t, mask)
    if focal == "iqr":
        return masked_pull(t, mask, iqr_weights(t, mask))
    if focal == "gamma":
        center, _, _ = masked_pull(t, mask)
        return masked_pull(t, mask, gamma_weights(t, center, mask, gamma))
    raise ValueError(f"unknown focal variant {focal!r} (expected 'none', 'iqr' or 'gamma')")


def _pair_distances(centers: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Squared and plain pair distances (B, M, M), valid off-diagonal pairs, N per image."""
    diff = centers[:, :, None, :] - centers[:, None, :, :]
    sq = torch.square(diff).sum(dim=-1)
    dist = sq.detach().sqrt()  # only for the (detached) weights and the selection
    m = centers.shape[1]
    eye = torch.eye(m, dtype=torch.bool, device=centers.device)
    both = valid[:, :, None] & valid[:, None, :]
    return sq, dist, both & ~eye, valid.float().sum(dim=1)


def focal_push(centers: Tensor, valid: Tensor, loss_type: PushType = "exp") -> Tensor:
    """Push of the HAE code's variants (module docstring), per image.

    Args:
        centers: (B, M, D) float32 reference tags h_n. valid: (B, M) bool people.
        loss_type: "exp" | "max" (AE push) | "exp_focal" | "exp_topk".

    Returns:
        (B,) float32, 0 when N <= 1.
    """
    if loss_type in ("exp", "max"):
        return push_loss(centers, valid, loss_type)
    if loss_type not in PUSH_TYPES:
        raise ValueError(f"unknown push type {loss_type!r} (expected {', '.join(PUSH_TYPES)})")
    sq, dist, pairs, n = _pair_distances(centers, valid)
    norm = 0.5 / (n * (n - 1.0)).clamp(min=1.0)
    if loss_type == "exp_focal":
        both = (valid[:, :, None] & valid[:, None, :]).float()
        mean = (dist * both).sum(dim=(1, 2)) / (n * n).clamp(min=1.0)  # zeros included
        near = dist < mean[:, None, None]
        w = torch.where(dist == 0, 1.0, torch.where(near, 1.2, 0.8))
        return norm * (w * torch.exp(-sq) * pairs.float()).sum(dim=(1, 2))
    nonzero = pairs & (dist > 0)
    count = nonzero.flatten(1).sum(dim=1)
    k = torch.ceil(TOPK_FRACTION * count.double()).long()  # as Python's math.ceil(0.7 * n)
    key = torch.where(nonzero, dist, torch.full_like(dist, -math.inf)).flatten(1)
    order = key.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(
        order.shape[1], device=order.device).expand_as(order))
    keep = (rank < k[:, None]) & nonzero.flatten(1)
    return norm * (torch.exp(-sq.flatten(1)) * keep.float()).sum(dim=1)


def hae_loss(
    tags: Tensor,
    tag_indices: Tensor,
    groups: Sequence[Sequence[int]] | Tensor,
    tag_dim: int = 1,
    loss_type: PushType = "exp",
    focal: Focal = "none",
    gamma: float = 2.0,
) -> HAELossTerms:
    """Hierarchical associative-encoding terms per image (unweighted, see module docstring).

    Args:
        tags: (B, K * D, h, w) tag maps, joint-major channels (k * D + d), any float dtype.
        tag_indices: (B, M, K, 2) int64 [k * h * w + y * w + x, valid], one slot per joint type.
        groups: tuple of groups of joint indices, or a (G, K) bool matrix from ``group_matrix``.
        tag_dim: D. loss_type: push type "exp" | "max" | "exp_focal" | "exp_topk".
        focal: "none" | "iqr" | "gamma".

    Returns:
        HAELossTerms of (B,) float32 tensors.
    """
    t, visible = gather_tags(tags, tag_indices, tag_dim)  # (B, M, K, D), (B, M, K)
    k = t.shape[2]
    member = groups if isinstance(groups, Tensor) else group_matrix(groups, k)
    member = member.to(device=t.device)
    center, pull_inst, count = focal_pull(t, visible, focal, gamma)  # (B, M, D), (B, M)
    in_group = visible[:, :, None, :] & member  # (B, M, G, K)
    t_group = t[:, :, None].expand(-1, -1, member.shape[0], -1, -1)
    g_center, g_pull, g_count = focal_pull(t_group, in_group, focal, gamma)  # (B, M, G, ...)
    size = member.sum(dim=1).float()  # nominal |g|
    lg = (g_pull * size).sum(dim=-1)
    hg_sq = torch.square(center[:, :, None, :] - g_center).sum(dim=-1)
    hg = (hg_sq * (g_count > 0).float()).sum(dim=-1)
    valid = count > 0
    norm = valid.float().sum(dim=1).clamp(min=1.0) * k  # N K

    def per_image(x: Tensor) -> Tensor:
        return (x * valid.float()).sum(dim=1) / norm

    return HAELossTerms(
        pull_keypoint_instance=per_image(k * pull_inst),
        pull_keypoint_group=per_image(lg),
        pull_group_instance=per_image(hg),
        push=focal_push(center, valid, loss_type),
    )
