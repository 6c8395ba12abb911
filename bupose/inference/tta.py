"""Test-time aggregation of network outputs: stage averaging, flip test, projection to the input
resolution and multi-scale averaging, with the official HigherHRNet semantics (ALGORITHMS.md
§2.5 steps 2-5, §3.8; reference `lib/core/inference.py` of HigherHRNet).

Every function takes torch tensors (``Predictor``) or numpy arrays (``OnnxPredictor``, the
onnxruntime path) and returns the same kind; torch is imported only when it is given tensors, so
the numpy path never loads it (~1.6 s of start-up). The float operations are the same for both
kinds; the only kind-specific ones are the flip, the axis permutations, the concatenation and
the bilinear ``resize``, whose numpy version reproduces torch's float32 source coordinates (so
both agree to ~2e-7 of the maps' scale; ``cv2.resize`` computes them in float64 and differs by up
to ~2e-5 at non-integer size ratios).

Data flow for one image::

    for s in scales (largest first):
        passes = run_passes(model, input_s, flip)           # [outputs], [flipped-back outputs]
        maps = [average_stages(p, layouts, flip_index if flipped) for p in passes]
        maps = [project(m, base_size) for m in maps]        # PROJECT2IMAGE
        acc = accumulate_scale(acc, s, maps, ...)           # heatmaps summed, tags kept at s = 1
    heatmaps, tags = finish_scales(acc)                     # (B,K,H,W), (B,K,H,W,L)

All maps are (B, C, h, w) float tensors or arrays; the function order and the float operations
follow the official code so that results agree to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bupose.structures.outputs import StageOutput

MapArray = Any
"""A torch.Tensor or a numpy.ndarray, one kind per call (a union would make every mixed-kind
operation a type error, though no call mixes them)."""
Array = np.ndarray


@dataclass
class PassMaps:
    """One forward pass (plain or flipped) after stage averaging.

    Attributes:
        heatmaps: (B, K, h, w) mean of the heatmaps of the selected stages, or None.
        tags: one (B, K, h, w, D) tensor per selected tag stage (D = tag dimension per joint).
    """

    heatmaps: MapArray | None
    tags: list[MapArray] = field(default_factory=list)


def resize(maps: MapArray, size_wh: tuple[int, int]) -> MapArray:
    """Bilinear resize of (B, C, h, w) maps to (B, C, H, W), align_corners=False (reference):
    ``F.interpolate`` for a tensor, ``_resize_numpy`` (the same weights) for an array."""
    if isinstance(maps, np.ndarray):
        return _resize_numpy(maps, size_wh)
    import torch.nn.functional as F

    return F.interpolate(
        maps, size=(int(size_wh[1]), int(size_wh[0])), mode="bilinear", align_corners=False
    )


def _linear_taps(size_in: int, size_out: int) -> tuple[Array, Array, Array, Array]:
    """torch's align_corners=False linear taps along one axis: output i = in[i0] * w0 + in[i1] * w1.

    Returns:
        i0, i1 (size_out,) int64 input indices; w0, w1 (size_out,) float32 weights.
    """
    if size_in == size_out:
        index = np.arange(size_out)
        return index, index, np.ones(size_out, np.float32), np.zeros(size_out, np.float32)
    scale = np.float32(size_in) / np.float32(size_out)
    dst = np.arange(size_out, dtype=np.float32) + np.float32(0.5)
    # scale * (i + 0.5) - 0.5 rounded once to float32, as torch's fused multiply-add does
    src = (np.float64(scale) * dst.astype(np.float64) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    w1 = np.clip(src - i0.astype(np.float32), np.float32(0), np.float32(1))
    i1 = i0 + (i0 < size_in - 1)
    return i0, i1, np.float32(1) - w1, w1


def _resize_numpy(maps: Array, size_wh: tuple[int, int]) -> Array:
    """``resize`` of a numpy (..., h, w) array: torch's weights (``_linear_taps``), x then y."""
    width, height = int(size_wh[0]), int(size_wh[1])
    x0, x1, wx0, wx1 = _linear_taps(maps.shape[-1], width)
    y0, y1, wy0, wy1 = _linear_taps(maps.shape[-2], height)
    columns = np.ascontiguousarray(np.swapaxes(maps, -1, -2))  # (..., w, h): gather whole rows
    rows = np.take(columns, x0, axis=-2) * wx0[:, None]
    rows += np.take(columns, x1, axis=-2) * wx1[:, None]
    rows = np.ascontiguousarray(np.swapaxes(rows, -1, -2))  # (..., h, W)
    out = np.take(rows, y0, axis=-2) * wy0[:, None]
    out += np.take(rows, y1, axis=-2) * wy1[:, None]
    return out


def _flip_x(maps: MapArray) -> MapArray:
    """Horizontal mirror of (B, C, h, w) maps (a contiguous copy, as ``torch.flip``)."""
    if isinstance(maps, np.ndarray):
        return np.ascontiguousarray(maps[..., ::-1])
    import torch

    return torch.flip(maps, [3])


def _permute(maps: MapArray, axes: tuple[int, ...]) -> MapArray:
    return maps.transpose(axes) if isinstance(maps, np.ndarray) else maps.permute(*axes)


def run_passes(
    model: Callable[[MapArray], Sequence[MapArray]], image: MapArray, flip: bool
) -> list[list[MapArray]]:
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
    model: Callable[[MapArray], Sequence[MapArray]], image: MapArray, flip: bool
) -> list[list[MapArray]]:
    """The network alone: [outputs of image] (+ [outputs of its mirror image] with ``flip``)."""
    passes = [list(model(image))]
    if flip:
        passes.append(list(model(_flip_x(image))))
    return passes


def flip_back(passes: list[list[MapArray]]) -> list[list[MapArray]]:
    """``forward_passes`` output with the mirror pass (if any) resized to its last stage's size
    and flipped back horizontally (see ``run_passes``)."""
    if len(passes) == 1:
        return passes
    return [passes[0], [_flip_x(o) for o in to_last_stage_size(passes[1])]]


def to_last_stage_size(outputs: Sequence[MapArray]) -> list[MapArray]:
    """Resize every output to the last (highest-resolution) output's size (no-op when equal)."""
    h, w = outputs[-1].shape[-2:]
    return [o if o.shape[-2:] == (h, w) else resize(o, (w, h)) for o in outputs]


def _joint_tags(tags: MapArray, num_keypoints: int) -> MapArray:
    """(B, K*D, h, w) joint-major tags -> (B, K, h, w, D); a per-image tag (B, D, h, w) with
    D < K or D not a multiple of K is shared by all joints (expanded)."""
    b, c, h, w = tags.shape
    if c % num_keypoints == 0:
        return _permute(tags.reshape(b, num_keypoints, c // num_keypoints, h, w), (0, 1, 3, 4, 2))
    shared = _permute(tags, (0, 2, 3, 1))[:, None]
    if isinstance(shared, np.ndarray):
        return np.broadcast_to(shared, (b, num_keypoints, h, w, c))
    return shared.expand(b, num_keypoints, h, w, c)


def _flip_indices(like: MapArray, flip_index: Sequence[int]) -> MapArray:
    """The flip index as an int64 index of ``like``'s kind (numpy array or torch long tensor)."""
    if isinstance(like, np.ndarray):
        return np.asarray(list(flip_index), dtype=np.int64)
    import torch

    return torch.as_tensor(list(flip_index), dtype=torch.long)


def average_stages(
    outputs: Sequence[MapArray],
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
    heatmap_sum: MapArray | None = None
    num_heatmaps = 0
    tags: list[MapArray] = []
    index = None if flip_index is None else _flip_indices(outputs[0], flip_index)
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


def _resize_tags(tags: MapArray, size_wh: tuple[int, int]) -> MapArray:
    """(B, K, h, w, D) -> (B, K, H, W, D), each tag dimension resized like a map."""
    b, k, h, w, d = tags.shape
    flat = _permute(tags, (0, 4, 1, 2, 3)).reshape(b, d * k, h, w)
    out = resize(flat, size_wh)
    return _permute(out.reshape(b, d, k, *out.shape[-2:]), (0, 2, 3, 4, 1))


@dataclass
class ScaleAccumulator:
    """Running multi-scale aggregate (reference ``aggregate_results``).

    Attributes:
        heatmaps: (B, K, H, W) sum of the flip-averaged heatmaps of the scales seen so far.
        tags: (B, K, H, W, D) maps kept so far (one per pass and tag stage).
        num_scales: scales seen so far.
    """

    heatmaps: MapArray | None = None
    tags: list[MapArray] = field(default_factory=list)
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
    heatmaps = [p.heatmaps for p in passes if p.heatmaps is not None]
    if len(heatmaps) != len(passes):
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


def finish_scales(acc: ScaleAccumulator) -> tuple[MapArray, MapArray | None]:
    """The decoder inputs: heatmaps (B, K, H, W) = sum / #scales, tags (B, K, H, W, L) with the
    kept tag maps concatenated on the last axis (L = D x passes; None when the model has no tags).
    """
    if acc.heatmaps is None:
        raise ValueError("no scale was accumulated")
    heatmaps = acc.heatmaps / float(acc.num_scales)
    if not acc.tags:
        return heatmaps, None
    if isinstance(heatmaps, np.ndarray):
        return heatmaps, np.concatenate(acc.tags, axis=4)
    import torch

    return heatmaps, torch.cat(acc.tags, dim=4)


def aggregate_passes(
    passes: Sequence[Sequence[MapArray]],
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
