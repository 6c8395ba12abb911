"""The multi-resolution training loss of the AE family (HigherHRNet, HAE, fusion model).

``PoseLoss(layout, ae=...)`` turns a model's stage outputs and a batch of AE targets into a dict of
named, already weighted terms, each averaged over the batch like the official trainer (images
without people count as 0 in the batch mean). The training loss is ``sum(terms.values())``.

Term names:
* ``heatmap/<s>``: heatmaps_factor[s] * masked MSE of stage s (ALGORITHMS.md §2.3);
* ae="ae": ``ae/pull``, ``ae/push`` (suffixed ``/<s>`` when several stages have AE);
* ae="hae": ``hae/pull_keypoint_instance`` (o), ``hae/pull_keypoint_group`` (l),
  ``hae/pull_group_instance`` (h), ``hae/push`` (same suffix rule); a pull term whose o / l / h
  weight is 0 is left out. The three pull terms sum to the reference's single HAE pull.

Everything is computed in float32 with autocast disabled, whatever the dtype of the outputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from bupose.errors import ConfigError
from bupose.losses.ae import ae_loss
from bupose.losses.hae import PUSH_TYPES, Focal, PushType, group_matrix, hae_loss
from bupose.losses.heatmap import heatmap_loss
from bupose.models.outputs import StageOutput, split_stage

AEKind = Literal["ae", "hae", "none"]


def _per_stage(value: Any, n: int, what: str) -> tuple[Any, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f"{what} has {len(value)} entries for {n} output stages")
        return tuple(value)
    return (value,) * n


class PoseLoss(nn.Module):
    """Heatmap + associative-embedding (AE or hierarchical HAE) loss over all output stages.

    Args:
        layout: the model's ``output_layout`` (one StageOutput per output, lowest resolution first).
        ae: "ae" (HigherHRNet AELoss), "hae" (HAE AEgroupLoss) or "none" (heatmaps only).
        heatmaps_factor: per-stage (or one) heatmap loss factor (official 1.0).
        with_heatmaps: per-stage switch (default all True).
        with_ae: per-stage switch (default: the stages that have tag channels).
        pull_factor, push_factor: per-stage (or one) AE factors (official 0.001).
        ae_type: push type "exp" (official), "max", or the HAE code's "exp_focal" / "exp_topk"
            (``losses.hae``).
        groups: HAE joint groups, e.g. ``spec.get_groups("hierarchical_coco")``; needed for "hae".
        o_weight, l_weight, h_weight: HAE keypoint-to-instance / keypoint-to-group /
            group-to-instance pull weights (released configs 0.0 / 1.0 / 1.5).
        focal: focal pulling "none" | "iqr" (code-faithful) | "gamma" (our extrapolation); with
            ae="ae" it weights the instance pull (the reference AEgroupfocalLoss).
        gamma: exponent of the "gamma" variant (> 0).
        supervise_empty: False leaves all-zero target channels unsupervised (mmpose option).
    """

    def __init__(
        self,
        layout: Sequence[StageOutput],
        ae: AEKind = "ae",
        *,
        heatmaps_factor: float | Sequence[float] = 1.0,
        with_heatmaps: bool | Sequence[bool] = True,
        with_ae: bool | Sequence[bool] | None = None,
        pull_factor: float | Sequence[float] = 0.001,
        push_factor: float | Sequence[float] = 0.001,
        ae_type: PushType = "exp",
        groups: Sequence[Sequence[int]] | None = None,
        o_weight: float = 0.0,
        l_weight: float = 1.0,
        h_weight: float = 1.5,
        focal: Focal = "none",
        gamma: float = 2.0,
        supervise_empty: bool = True,
    ) -> None:
        super().__init__()
        self.layout = tuple(layout)
        n = len(self.layout)
        if ae not in ("ae", "hae", "none"):
            raise ConfigError(f"unknown AE loss {ae!r} (expected 'ae', 'hae' or 'none')")
        if ae_type not in PUSH_TYPES:
            raise ConfigError(f"unknown AE loss type {ae_type!r} (expected one of "
                              f"{', '.join(PUSH_TYPES)})")
        if focal not in ("none", "iqr", "gamma"):
            raise ConfigError(f"unknown focal variant {focal!r} (expected none, iqr or gamma)")
        if focal == "gamma" and not gamma > 0:
            raise ConfigError(f"focal gamma must be > 0, got {gamma}")
        self.ae, self.ae_type, self.focal, self.gamma = ae, ae_type, focal, float(gamma)
        self.heatmaps_factor = _per_stage(heatmaps_factor, n, "heatmaps_factor")
        self.with_heatmaps = _per_stage(with_heatmaps, n, "with_heatmaps")
        default_ae = tuple(s.tag_channels > 0 and ae != "none" for s in self.layout)
        self.with_ae = default_ae if with_ae is None else _per_stage(with_ae, n, "with_ae")
        self.pull_factor = _per_stage(pull_factor, n, "pull_factor")
        self.push_factor = _per_stage(push_factor, n, "push_factor")
        self.tag_dims = tuple(self._tag_dim(s, i) for i, s in enumerate(self.layout))
        self.hae_weights = (float(o_weight), float(l_weight), float(h_weight))
        self.supervise_empty = supervise_empty
        member: Tensor | None = None
        if ae == "hae":
            if groups is None:
                raise ConfigError("ae='hae' needs groups, e.g. spec.get_groups(scheme)")
            member = group_matrix(groups, self.layout[0].num_heatmaps)
        self.groups: Tensor | None
        self.register_buffer("groups", member, persistent=False)

    def _tag_dim(self, stage: StageOutput, i: int) -> int:
        if not self.with_ae[i]:
            return 0
        if self.ae == "none":
            raise ConfigError("with_ae is set for a stage but ae='none'")
        k, c = stage.num_heatmaps, stage.tag_channels
        if c == 0 or c % k:
            raise ConfigError(f"stage {i} has {c} tag channels: need a positive multiple of K={k}")
        return c // k

    def forward(self, outputs: Sequence[Tensor], targets: Mapping[str, Any]) -> dict[str, Tensor]:
        """Named weighted terms from stage outputs and a batch dict with heatmaps/masks/tag_indices.

        Args:
            outputs: model outputs, one (B, C, h_s, w_s) tensor per stage (lowest resolution first).
            targets: ``heatmaps`` list of (B, K, h_s, w_s), ``masks`` list of (B, h_s, w_s) and
                ``tag_indices`` (B, M, K, 2) int64 at resolution 0, or a list with one per stage.
        """
        return self.compute(
            outputs, targets["heatmaps"], targets["masks"], targets.get("tag_indices")
        )

    def compute(
        self,
        outputs: Sequence[Tensor],
        heatmaps: Sequence[Tensor],
        masks: Sequence[Tensor],
        tag_indices: Tensor | Sequence[Tensor] | None,
    ) -> dict[str, Tensor]:
        """Same as ``forward`` with the targets passed separately."""
        n = len(self.layout)
        if not len(outputs) == len(heatmaps) == len(masks) == n:
            raise ValueError(
                f"expected {n} stages, got {len(outputs)} outputs, {len(heatmaps)} heatmap "
                f"targets and {len(masks)} masks"
            )
        terms: dict[str, Tensor] = {}
        with torch.autocast(device_type=outputs[0].device.type, enabled=False):
            for s, (out, stage) in enumerate(zip(outputs, self.layout)):
                hm_pred, tags, _ = split_stage(out, stage)
                if self.with_heatmaps[s]:
                    per_image = heatmap_loss(hm_pred, heatmaps[s], masks[s], self.supervise_empty)
                    terms[f"heatmap/{s}"] = self.heatmaps_factor[s] * per_image.mean()
                if self.with_ae[s]:
                    assert tags is not None
                    idx = self._stage_indices(tag_indices, s, outputs)
                    terms.update(self._grouping_terms(tags, idx, s))
        return terms

    def _stage_indices(
        self, tag_indices: Tensor | Sequence[Tensor] | None, s: int, outputs: Sequence[Tensor]
    ) -> Tensor:
        if tag_indices is None:
            raise ValueError("targets have no tag_indices but an AE loss is enabled")
        if isinstance(tag_indices, Tensor):
            if outputs[s].shape[-2:] != outputs[0].shape[-2:]:
                raise ValueError(
                    f"tag_indices are at resolution 0 but stage {s} with AE has a different size; "
                    "pass one tag_indices tensor per stage"
                )
            return tag_indices
        return tag_indices[s]

    def _grouping_terms(self, tags: Tensor, idx: Tensor, s: int) -> dict[str, Tensor]:
        suffix = f"/{s}" if sum(bool(a) for a in self.with_ae) > 1 else ""
        pull_f, push_f, d = self.pull_factor[s], self.push_factor[s], self.tag_dims[s]
        if self.ae == "ae" and self.focal == "none" and self.ae_type in ("exp", "max"):
            r = ae_loss(tags, idx, d, self.ae_type)
            return {f"ae/pull{suffix}": pull_f * r.pull.mean(),
                    f"ae/push{suffix}": push_f * r.push.mean()}
        k = self.layout[s].num_heatmaps
        groups = self.groups if self.groups is not None else torch.zeros(0, k, dtype=torch.bool)
        h = hae_loss(tags, idx, groups, d, self.ae_type, self.focal, self.gamma)
        if self.ae == "ae":  # focal pull / push variants = the reference AEgroupfocalLoss
            return {f"ae/pull{suffix}": pull_f * h.pull_keypoint_instance.mean(),
                    f"ae/push{suffix}": push_f * h.push.mean()}
        out: dict[str, Tensor] = {}
        parts = zip(
            ("pull_keypoint_instance", "pull_keypoint_group", "pull_group_instance"),
            self.hae_weights,
            h[:3],
        )
        for name, weight, value in parts:
            if weight != 0.0:
                out[f"hae/{name}{suffix}"] = pull_f * weight * value.mean()
        out[f"hae/push{suffix}"] = push_f * h.push.mean()
        return out
