"""Test-time aggregation of network outputs (pure torch): stage averaging, flip test, projection to
the input resolution and multi-scale averaging, with the official HigherHRNet semantics
(ALGORITHMS.md §2.5 steps 2-5, §3.8; reference `lib/core/inference.py` of HigherHRNet).

Data flow for one image::

    for s in scales (largest first):
        passes = run_passes(model, input_s, flip)           # [outputs], [flipped-back outputs]
        maps = [average_stages(p, layouts, flip_index if flipped) for p in passes]
        maps = [project(m, base_size) for m in maps]        # PROJECT2IMAGE
        acc = accumulate_scale(acc, s, maps, ...)           # heatmaps summed, tags kept at s = 1
    heatmaps, tags = finish_scales(acc)                     # (B,K,H,W), (B,K,H,W,L)

All maps are (B, C, h, w) float tensors; the function order and the float operations follow the
official code so that results agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from bupose.models.outputs import StageOutput


@dataclass
class PassMaps:
    """One forward pass (plain or flipped) after stage averaging.

    Attributes:
        heatmaps: (B, K, h, w) mean of the heatmaps of the selected stages, or None.
        tags: one (B, K, h, w, D) tensor per selected tag stage (D = tag dimension per joint).
    """

    heatmaps: Tensor | None
    tags: list[Tensor] = field(default_factory=list)


def resize(maps: Tensor, size_wh: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, h, w) maps to (B, C, H, W), align_corners=False (reference)."""
    return F.interpolate(
        maps, size=(int(size_wh[1]), int(size_wh[0])), mode="bilinear", align_corners=False
    )


def run_passes(
    model: Callable[[Tensor], Sequence[Tensor]], image: Tensor, flip: bool
) -> list[list[Tensor]]:
    """Forward the image (and its mirror image) and bring each pass's outputs to one resolution:
    ``flip_back(forward_passes(model, image, flip))``.

    Args:
        model: returns a tuple of (B, C_i, h_i, w_i) maps, lowest resolution first.
        image: (B, 3, H, W) normalised input.
        flip: also run ``torch.flip(image, [3])``.

    Returns:
        ``passes[0]``: the raw outputs; with ``flip``, ``passes[1]``: the flipped pass's outputs,
        every stage but the last resized to the last stage's size, then flipped back horizontally
        (channels not yet permuted). This is the reference ``outputs`` list, split per pass.
    """
    return flip_back(forward_passes(model, image, flip))


def forward_passes(
    model: Callable[[Tensor], Sequence[Tensor]], image: Tensor, flip: bool
) -> list[list[Tensor]]:
    """The network alone: [outputs of image] (+ [outputs of its mirror image] with ``flip``)."""
    passes = [list(model(image))]
    if flip:
        passes.append(list(model(torch.flip(image, [3]))))
    return passes


def flip_back(passes: list[list[Tensor]]) -> list[list[Tensor]]:
    """``forward_passes`` output with the mirror pass (if any) resized to its last stage's size
    and flipped back horizontally (see ``run_passes``)."""
    if len(passes) == 1:
        return passes
    return [passes[0], [torch.flip(o, [3]) for o in to_last_stage_size(passes[1])]]


def to_last_stage_size(outputs: Sequence[Tensor]) -> list[Tensor]:
    """Resize every output to the last (highest-resolution) output's size (no-op when equal)."""
    h, w = outputs[-1].shape[-2:]
    return [o if o.shape[-2:] == (h, w) else resize(o, (w, h)) for o in outputs]


def _joint_tags(tags: Tensor, num_keypoints: int) -> Tensor:
    """(B, K*D, h, w) joint-major tags -> (B, K, h, w, D); a per-image tag (B, D, h, w) with
    D < K or D not a multiple of K is shared by all joints (expanded)."""
    b, c, h, w = tags.shape
    if c % num_keypoints == 0:
        return tags.reshape(b, num_keypoints, c // num_keypoints, h, w).permute(0, 1, 3, 4, 2)
    return tags.permute(0, 2, 3, 1).unsqueeze(1).expand(b, num_keypoints, h, w, c)


def average_stages(
    outputs: Sequence[Tensor],
    layouts: Sequence[StageOutput],
    flip_index: Sequence[int] | None = None,
    use_heatmaps: Sequence[bool] | None = None,
    use_tags: Sequence[bool] | None = None,
) -> PassMaps:
    """Average the stage heatmaps and collect the stage tags of one pass (reference step 2/3).

    Args:
        outputs: one pass's outputs, all at the same (h, w) (see ``to_last_stage_size``); for a
            flipped pass already flipped back horizontally.
        layouts: the model's ``output_layout``, one per output.
        flip_index: for a flipped pass, the spec's flip index: heatmap channel k takes channel
            flip_index[k], and so do per-joint tags. None for the plain pass.
        use_heatmaps, use_tags: per stage, whether its heatmaps enter the mean / its tags are kept
            (the official TEST.WITH_HEATMAPS / TEST.WITH_AE); default all stages that have them.

    Returns:
        PassMaps: heatmaps (B, K, h, w) = sum of the selected stages / their number; tags list of
        (B, K, h, w, D).
    """
    if len(outputs) != len(layouts):
        raise ValueError(f"{len(outputs)} outputs but {len(layouts)} stage layouts")
    heatmap_sum: Tensor | None = None
    num_heatmaps = 0
    tags: list[Tensor] = []
    index = None if flip_index is None else torch.as_tensor(list(flip_index), dtype=torch.long)
    for i, (output, layout) in enumerate(zip(outputs, layouts)):
        k = layout.num_heatmaps
        if k and (use_heatmaps is None or use_heatmaps[i]):
            heatmaps = output[:, :k] if index is None else output[:, :k][:, index]
            heatmap_sum = heatmaps if heatmap_sum is None else heatmap_sum + heatmaps
            num_heatmaps += 1
        if layout.tag_channels and (use_tags is None or use_tags[i]):
            joint_tags = _joint_tags(output[:, k : k + layout.tag_channels], k)
            per_joint = layout.tag_channels % k == 0
            if index is not None and per_joint:
                joint_tags = joint_tags[:, index]
            tags.append(joint_tags)
    mean = None if heatmap_sum is None else heatmap_sum / num_heatmaps
    return PassMaps(mean, tags)


def project(maps: PassMaps, size_wh: tuple[int, int]) -> PassMaps:
    """Resize a pass's heatmaps and tags to ``size_wh`` (W, H) (reference PROJECT2IMAGE)."""
    heatmaps = None if maps.heatmaps is None else resize(maps.heatmaps, size_wh)
    return PassMaps(heatmaps, [_resize_tags(t, size_wh) for t in maps.tags])


def _resize_tags(tags: Tensor, size_wh: tuple[int, int]) -> Tensor:
    """(B, K, h, w, D) -> (B, K, H, W, D), each tag dimension resized like a map."""
    b, k, h, w, d = tags.shape
    flat = tags.permute(0, 4, 1, 2, 3).reshape(b, d * k, h, w)
    out = resize(flat, size_wh)
    return out.reshape(b, d, k, *out.shape[-2:]).permute(0, 2, 3, 4, 1)


@dataclass
class ScaleAccumulator:
    """Running multi-scale aggregate (reference ``aggregate_results``).

    Attributes:
        heatmaps: (B, K, H, W) sum of the flip-averaged heatmaps of the scales seen so far.
        tags: (B, K, H, W, D) maps kept so far (one per pass and tag stage).
        num_scales: scales seen so far.
    """

    heatmaps: Tensor | None = None
    tags: list[Tensor] = field(default_factory=list)
    num_scales: int = 0


def accumulate_scale(
    acc: ScaleAccumulator,
    scale_factor: float,
    passes: Sequence[PassMaps],
    single_scale: bool,
    projected: bool = True,
) -> ScaleAccumulator:
    """Add one test scale's passes to the aggregate (in place; returns ``acc``).

    Args:
        acc: the aggregate so far (scales are visited largest first, as the reference does).
        scale_factor: this scale; tags are kept only at scale 1 or when there is a single scale.
        passes: the plain pass, then (flip test) the flipped pass; heatmaps are averaged
            ``(h0 + h1) / 2``.
        single_scale: the test uses one scale only.
        projected: the maps were projected to one common size (PROJECT2IMAGE); otherwise maps of
            later (smaller) scales and the kept tags are resized to the aggregate's size.
    """
    if scale_factor == 1 or single_scale:
        for p in passes:
            tags = p.tags
            if acc.heatmaps is not None and not projected:
                w_h = (acc.heatmaps.shape[-1], acc.heatmaps.shape[-2])
                tags = [_resize_tags(t, w_h) for t in tags]
            acc.tags.extend(tags)
    heatmaps = [p.heatmaps for p in passes]
    if any(h is None for h in heatmaps):
        raise ValueError("every pass needs heatmaps for multi-scale aggregation")
    mean = heatmaps[0] if len(heatmaps) == 1 else (heatmaps[0] + heatmaps[1]) / 2.0
    if acc.heatmaps is None:
        acc.heatmaps = mean
    elif projected:
        acc.heatmaps = acc.heatmaps + mean
    else:
        acc.heatmaps = acc.heatmaps + resize(mean, (acc.heatmaps.shape[-1], acc.heatmaps.shape[-2]))
    acc.num_scales += 1
    return acc


def finish_scales(acc: ScaleAccumulator) -> tuple[Tensor, Tensor | None]:
    """The decoder inputs: heatmaps (B, K, H, W) = sum / #scales, tags (B, K, H, W, L) with the
    kept tag maps concatenated on the last axis (L = D x passes; None when the model has no tags).
    """
    if acc.heatmaps is None:
        raise ValueError("no scale was accumulated")
    heatmaps = acc.heatmaps / float(acc.num_scales)
    tags = torch.cat(acc.tags, dim=4) if acc.tags else None
    return heatmaps, tags


def aggregate_passes(
    passes: Sequence[Sequence[Tensor]],
    layouts: Sequence[StageOutput],
    flip_index: Sequence[int] | None,
    size_wh: tuple[int, int] | None,
    use_heatmaps: Sequence[bool] | None = None,
    use_tags: Sequence[bool] | None = None,
) -> list[PassMaps]:
    """Stage-average each pass (the second one is the flipped pass) and project to ``size_wh``.

    Args:
        passes: ``run_passes`` output: [plain outputs] or [plain, flipped-back outputs].
        layouts: the model's output layout.
        flip_index: the spec's flip index (needed when there are two passes).
        size_wh: projection size (W, H), or None to keep the stage resolution.
    """
    result = []
    for i, outputs in enumerate(passes):
        if i == 1 and flip_index is None:
            raise ValueError("the flipped pass needs a flip_index")
        maps = average_stages(
            to_last_stage_size(outputs), layouts, flip_index if i == 1 else None,
            use_heatmaps, use_tags,
        )
        result.append(project(maps, size_wh) if size_wh is not None else maps)
    return result
