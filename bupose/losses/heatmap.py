"""Masked heatmap regression loss (ALGORITHMS.md §2.3).

For one output resolution and one image: the mean over (K, h, w) of mask * (pred - gt)^2, where the
mask is shared by all K channels (1 = supervised, 0 = ignored, e.g. crowd or padded pixels). Masked
pixels still count in the denominator, exactly as the official HigherHRNet / mmpose HeatmapLoss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def heatmap_loss(pred: Tensor, gt: Tensor, mask: Tensor, supervise_empty: bool = True) -> Tensor:
    """Per-image masked mean squared error of one resolution, computed in float32.

    Args:
        pred: (B, K, h, w) predicted heatmaps, any float dtype.
        gt: (B, K, h, w) target heatmaps (unnormalised Gaussians in [0, 1]).
        mask: (B, h, w) weights, 1 = supervised, 0 = ignored.
        supervise_empty: when False, channels whose target is all zero are not supervised
            (mmpose's ``supervise_empty=False``); the denominator stays K * h * w.

    Returns:
        (B,) float32: mean over (K, h, w) of mask * (pred - gt)^2 per image.
    """
    if pred.shape != gt.shape:
        raise ValueError(f"heatmap prediction {tuple(pred.shape)} != target {tuple(gt.shape)}")
    b, _, h, w = pred.shape
    if tuple(mask.shape) != (b, h, w):
        raise ValueError(f"heatmap mask {tuple(mask.shape)} does not fit maps {tuple(pred.shape)}")
    pred, gt = pred.float(), gt.float()
    weight = mask.float()[:, None]
    if not supervise_empty:
        weight = weight * (gt.sum(dim=(2, 3), keepdim=True) > 0).float()
    return (torch.square(pred - gt) * weight).mean(dim=(1, 2, 3))
