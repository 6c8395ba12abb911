"""The SimplePose V2 (OffsetGuided) training loss (ALGORITHMS.md §4.5).

``OffsetLoss`` turns the stacked network outputs and a batch of ``codecs.offsets`` targets into a
dict of named, already weighted terms; the training loss is ``sum(terms.values())``.

With M = cells where ``mask_miss`` is true (broadcast over channels) and the target is finite:

* ``heatmap``: focal L2, per element ``0.5 (s - g)² |1 - s_t|^γ`` with ``s_t = s`` where
  ``g >= τ`` else ``1 - s``, summed over M;
* ``offset``: ``e = |ô/S - o/S|`` (S = instance scale) over M, elements with ``e < margin``
  dropped, ``√e`` (sqrt re-weighting), ``Σ e / (1 + #e)``;
* ``scale``: ``e = |ŝ - s|`` over M, elements with ``e < scale_margin`` dropped, ``√e``,
  ``Σ e / (1 + #e)``;

each stack weighted by ``stack_weights / Σ stack_weights`` (0.5 each for two stacks), summed,
divided by the batch size and multiplied by its λ (README: heatmap 1, offset 10000, scale 10; the
reference's background-heatmap and jitter terms have λ = 0 and are not computed).

γ: the README trains with ``--fgamma 2``, but the reference binds γ as a default argument when
its module is imported, so the option never reaches the loss and the published models were
trained with **γ = 1** (fixtures README, "Reference quirks" 2). ``gamma=1`` (the default here)
reproduces the published behaviour; ``gamma=2`` is what the flag meant.

Everything is computed in float32 whatever the dtype of the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from bupose.errors import ConfigError


def focal_l2(pred: Tensor, target: Tensor, tau: float = 0.01, gamma: float = 1.0) -> Tensor:
    """Element-wise focal L2 ``0.5 (s - g)² |1 - s_t|^γ`` (not detached, as the reference)."""
    s_t = torch.where(target >= tau, pred, 1.0 - pred)
    return 0.5 * (pred - target) ** 2 * torch.abs(1.0 - s_t) ** gamma


def _valid(pred: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Predicted and target elements where ``mask`` (B, 1, h, w) is true and the target finite."""
    keep = mask.expand_as(target) & torch.isfinite(target)
    return pred[keep], target[keep]


def sqrt_mean(err: Tensor, margin: float, sqrt: bool = True) -> Tensor:
    """``Σ f(e) / (1 + #e)`` over the elements ``e >= margin`` (f = √ with sqrt re-weighting)."""
    err = err[err >= margin]
    if sqrt:
        err = torch.sqrt(err)
    return err.sum() / (1 + err.numel())


class OffsetLoss(nn.Module):
    """Heatmap, guiding-offset and keypoint-scale loss over all stacks.

    Args:
        heatmap_weight, offset_weight, scale_weight: λ of the terms (README 1, 10000, 10).
        stack_weights: relative stack weights (normalised to sum 1; official (1, 1)).
        gamma: focal exponent (1 = the published training; see the module docstring).
        tau: fore/background threshold of the focal weight (0.01).
        focal: False uses the plain L2 ``0.5 (s - g)²`` (the reference's ``l2_loss``).
        margin, scale_margin: offset / scale errors below these are not punished (1e-5, 0.1).
        sqrt_re: square-root re-weighting of offset and scale errors (README ``--sqrt-re``).
        instance_norm: divide offsets by the instance scale (``offset_instance_l1_loss``).
    """

    def __init__(self, *, heatmap_weight: float = 1.0, offset_weight: float = 10000.0,
                 scale_weight: float = 10.0, stack_weights: Sequence[float] = (1.0, 1.0),
                 gamma: float = 1.0, tau: float = 0.01, focal: bool = True,
                 margin: float = 1e-5, scale_margin: float = 0.1, sqrt_re: bool = True,
                 instance_norm: bool = True) -> None:
        super().__init__()
        if not stack_weights or sum(stack_weights) <= 0 or min(stack_weights) < 0:
            raise ConfigError(f"stack weights must be >= 0 with a positive sum, got "
                              f"{list(stack_weights)}")
        if gamma < 0:
            raise ConfigError(f"focal gamma must be >= 0, got {gamma}")
        total = float(sum(stack_weights))
        self.stack_weights = tuple(float(w) / total for w in stack_weights)
        self.weights = {"heatmap": heatmap_weight, "offset": offset_weight, "scale": scale_weight}
        self.gamma, self.tau, self.focal = gamma, tau, focal
        self.margin, self.scale_margin = margin, scale_margin
        self.sqrt_re, self.instance_norm = sqrt_re, instance_norm

    def unweighted(self, outputs: Sequence[Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """The three terms before λ (the reference's per-head loss values).

        Args:
            outputs: heatmaps (B, S, K, h, w), offsets (B, S, 2L, h, w) and, for the scale term,
                scales (B, S, K, h, w).
            batch: ``heatmaps`` (B, K, h, w), ``offsets`` (B, 2L, h, w), ``scales`` (B, K, h, w),
                ``instance_scales`` (B, 2L, h, w), ``mask_miss`` (B, 1, h, w) bool.
        """
        hmp, off = outputs[0].float(), outputs[1].float()
        scl = outputs[2].float() if len(outputs) > 2 else None
        n_stacks = hmp.shape[1]
        if len(self.stack_weights) < n_stacks:
            raise ConfigError(f"{len(self.stack_weights)} stack weights for {n_stacks} stacks")
        mask = batch["mask_miss"].bool()
        g_hmp, g_off = batch["heatmaps"].float(), batch["offsets"].float()
        g_inst = batch["instance_scales"].float()
        terms = {"heatmap": hmp.new_zeros(()), "offset": hmp.new_zeros(())}
        if scl is not None:
            terms["scale"] = hmp.new_zeros(())
        for s in range(n_stacks):
            w = self.stack_weights[s]
            p, g = _valid(hmp[:, s], g_hmp, mask)
            elem = (focal_l2(p, g, self.tau, self.gamma) if self.focal else 0.5 * (p - g) ** 2)
            terms["heatmap"] = terms["heatmap"] + elem.sum() * w
            norm = g_inst if self.instance_norm else torch.ones_like(g_inst)
            p, g = _valid(off[:, s] / norm, g_off / norm, mask)
            terms["offset"] = terms["offset"] + sqrt_mean((p - g).abs(), self.margin,
                                                          self.sqrt_re) * w
            if scl is not None:
                p, g = _valid(scl[:, s], batch["scales"].float(), mask)
                terms["scale"] = terms["scale"] + sqrt_mean((p - g).abs(), self.scale_margin,
                                                            self.sqrt_re) * w
        b = hmp.shape[0]
        return {k: v / b for k, v in terms.items()}

    def forward(self, outputs: Sequence[Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Weighted terms ``heatmap``, ``offset`` and (with a scale output and λ > 0) ``scale``;
        a term whose λ is 0 is left out."""
        with torch.autocast(outputs[0].device.type, enabled=False):
            raw = self.unweighted(outputs, batch)
        return {k: v * self.weights[k] for k, v in raw.items() if self.weights[k] != 0}
