"""Test-time aggregation on numpy arrays: a torch-free mirror of ``bupose.inference.tta`` for the
onnxruntime inference path (importing torch costs ~1.6 s of start-up; this module imports numpy
only, directly and indirectly).

Every function has the name, arguments and semantics of its ``tta`` counterpart, with float32
numpy arrays in place of tensors: maps are (B, C, h, w), joint tags (B, K, h, w, D). The float
operations run in the same order as in ``tta`` (heatmap mean = sum / n, flip mean (h0 + h1) / 2,
scale mean = sum / #scales), so results agree with it to float rounding. Data flow for one image::

    for s in scales (largest first):
        passes = run_passes(run, input_s, flip)             # [outputs], [flipped-back outputs]
        maps = aggregate_passes(passes, layouts, flip_index, base_size or None)
        acc = accumulate_scale(acc, s, maps, len(scales) == 1, projected=base_size is not None)
    heatmaps, tags = finish_scales(acc)                     # (B,K,H,W), (B,K,H,W,L)

``resize`` reproduces ``F.interpolate(mode="bilinear", align_corners=False)`` rather than calling
``cv2.resize(INTER_LINEAR)``: torch computes the source coordinates in float32 (with a fused
multiply-add on FMA CPUs), OpenCV in float64, and at non-integer size ratios the two differ by up
to ~1.5e-5 of the map scale; the numpy version below gives torch's exact weights (checked on all
size pairs tried) and maps within ~2e-7 relative.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
"""A float32 array (float64 inputs stay float64)."""

Runner = Callable[[np.ndarray], Sequence[np.ndarray]]
"""The network: (B, 3, H, W) float32 input -> (B, C_i, h_i, w_i) outputs, lowest resolution
first."""


class StageLayout(Protocol):
    """What aggregation reads of one output's layout (``bupose.models.outputs.StageOutput``)."""

    @property
    def num_heatmaps(self) -> int: ...

    @property
    def tag_channels(self) -> int: ...


@dataclass
class PassMaps:
    """One forward pass (plain or flipped) after stage averaging.

    Attributes:
        heatmaps: (B, K, h, w) mean of the heatmaps of the selected stages, or None.
        tags: one (B, K, h, w, D) array per selected tag stage (D = tag dimension per joint).
    """

    heatmaps: Array | None
    tags: list[Array] = field(default_factory=list)


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


def resize(maps: Array, size_wh: tuple[int, int]) -> Array:
    """Bilinear resize of (..., h, w) maps (e.g. (B, C, h, w)) to (..., H, W), size_wh = (W, H):
    ``F.interpolate(mode="bilinear", align_corners=False)``, rows (x) first then columns (y)."""
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


def _flip_x(maps: Array) -> Array:
    """Horizontal mirror of (..., h, w) maps, contiguous (``torch.flip(maps, [-1])``)."""
    return np.ascontiguousarray(maps[..., ::-1])


def run_passes(run: Runner, image: Array, flip: bool) -> list[list[Array]]:
    """``flip_back(forward_passes(run, image, flip))``: passes[0] the raw outputs; with ``flip``,
    passes[1] the mirror pass's outputs resized to its last stage's size and flipped back
    horizontally (channels not yet permuted)."""
    return flip_back(forward_passes(run, image, flip))


def forward_passes(run: Runner, image: Array, flip: bool) -> list[list[Array]]:
    """The network alone: [outputs of image] (+ [outputs of its mirror image] with ``flip``).

    Args:
        run: (B, 3, H, W) float32 array -> list of (B, C_i, h_i, w_i) arrays.
        image: (B, 3, H, W) normalised input.
        flip: also run ``image[..., ::-1]`` (made contiguous).
    """
    passes = [[np.asarray(o) for o in run(image)]]
    if flip:
        passes.append([np.asarray(o) for o in run(_flip_x(image))])
    return passes


def flip_back(passes: list[list[Array]]) -> list[list[Array]]:
    """``forward_passes`` output with the mirror pass (if any) resized to its last stage's size
    and flipped back horizontally (see ``run_passes``)."""
    if len(passes) == 1:
        return passes
    return [passes[0], [_flip_x(o) for o in to_last_stage_size(passes[1])]]


def to_last_stage_size(outputs: Sequence[Array]) -> list[Array]:
    """Resize every (B, C, h_i, w_i) output to the last (highest-resolution) output's (h, w)
    (no-op when equal)."""
    h, w = outputs[-1].shape[-2:]
    return [o if o.shape[-2:] == (h, w) else resize(o, (w, h)) for o in outputs]


def _joint_tags(tags: Array, num_keypoints: int) -> Array:
    """(B, K*D, h, w) joint-major tags -> (B, K, h, w, D); a per-image tag (B, D, h, w) with
    D not a multiple of K is shared by all joints (broadcast, read-only view)."""
    b, c, h, w = tags.shape
    if c % num_keypoints == 0:
        return tags.reshape(b, num_keypoints, c // num_keypoints, h, w).transpose(0, 1, 3, 4, 2)
    return np.broadcast_to(tags.transpose(0, 2, 3, 1)[:, None], (b, num_keypoints, h, w, c))


def average_stages(
    outputs: Sequence[Array],
    layouts: Sequence[StageLayout],
    flip_index: Sequence[int] | None = None,
    use_heatmaps: Sequence[bool] | None = None,
    use_tags: Sequence[bool] | None = None,
) -> PassMaps:
    """Average the stage heatmaps and collect the stage tags of one pass (``tta.average_stages``).

    Args:
        outputs: one pass's (B, C_i, h, w) outputs, all at the same (h, w) (see
            ``to_last_stage_size``); for a flipped pass already flipped back horizontally.
        layouts: one per output (``num_heatmaps`` K then ``tag_channels`` joint-major tags).
        flip_index: for a flipped pass, the spec's flip index: heatmap channel k takes channel
            flip_index[k], and so do per-joint tags. None for the plain pass.
        use_heatmaps, use_tags: per stage, whether its heatmaps enter the mean / its tags are kept;
            default all stages that have them.

    Returns:
        PassMaps: heatmaps (B, K, h, w) = sum of the selected stages / their number; tags list of
        (B, K, h, w, D).
    """
    if len(outputs) != len(layouts):
        raise ValueError(f"{len(outputs)} outputs but {len(layouts)} stage layouts")
    heatmap_sum: Array | None = None
    num_heatmaps = 0
    tags: list[Array] = []
    index = None if flip_index is None else np.asarray(list(flip_index), dtype=np.int64)
    for i, (output, layout) in enumerate(zip(outputs, layouts)):
        k = layout.num_heatmaps
        if k and (use_heatmaps is None or use_heatmaps[i]):
            heatmaps = output[:, :k] if index is None else output[:, :k][:, index]
            heatmap_sum = heatmaps if heatmap_sum is None else heatmap_sum + heatmaps
            num_heatmaps += 1
        if layout.tag_channels and (use_tags is None or use_tags[i]):
            joint_tags = _joint_tags(output[:, k : k + layout.tag_channels], k)
            if index is not None and layout.tag_channels % k == 0:
                joint_tags = joint_tags[:, index]
            tags.append(joint_tags)
    mean = None if heatmap_sum is None else heatmap_sum / num_heatmaps
    return PassMaps(mean, tags)


def project(maps: PassMaps, size_wh: tuple[int, int]) -> PassMaps:
    """Resize a pass's heatmaps (B, K, h, w) and tags (B, K, h, w, D) to ``size_wh`` (W, H)
    (reference PROJECT2IMAGE)."""
    heatmaps = None if maps.heatmaps is None else resize(maps.heatmaps, size_wh)
    return PassMaps(heatmaps, [_resize_tags(t, size_wh) for t in maps.tags])


def _resize_tags(tags: Array, size_wh: tuple[int, int]) -> Array:
    """(B, K, h, w, D) -> (B, K, H, W, D), each tag dimension resized like a map."""
    b, k, h, w, d = tags.shape
    flat = tags.transpose(0, 4, 1, 2, 3).reshape(b, d * k, h, w)
    out = resize(flat, size_wh)
    return out.reshape(b, d, k, *out.shape[-2:]).transpose(0, 2, 3, 4, 1)


@dataclass
class ScaleAccumulator:
    """Running multi-scale aggregate (``tta.ScaleAccumulator``).

    Attributes:
        heatmaps: (B, K, H, W) sum of the flip-averaged heatmaps of the scales seen so far.
        tags: (B, K, H, W, D) maps kept so far (one per pass and tag stage).
        num_scales: scales seen so far.
    """

    heatmaps: Array | None = None
    tags: list[Array] = field(default_factory=list)
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
            later (smaller) scales and the kept tags are resized to the aggregate's (H, W).
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


def finish_scales(acc: ScaleAccumulator) -> tuple[Array, Array | None]:
    """The decoder inputs: heatmaps (B, K, H, W) = sum / #scales, tags (B, K, H, W, L) with the
    kept tag maps concatenated on the last axis (L = D x passes; None when the model has no tags).
    """
    if acc.heatmaps is None:
        raise ValueError("no scale was accumulated")
    heatmaps = acc.heatmaps / float(acc.num_scales)
    tags = np.concatenate(acc.tags, axis=4) if acc.tags else None
    return heatmaps, tags


def aggregate_passes(
    passes: Sequence[Sequence[Array]],
    layouts: Sequence[StageLayout],
    flip_index: Sequence[int] | None,
    size_wh: tuple[int, int] | None,
    use_heatmaps: Sequence[bool] | None = None,
    use_tags: Sequence[bool] | None = None,
) -> list[PassMaps]:
    """Stage-average each pass (the second one is the flipped pass) and project to ``size_wh``.

    Args:
        passes: ``run_passes`` output: [plain outputs] or [plain, flipped-back outputs], each a
            list of (B, C_i, h_i, w_i) arrays.
        layouts: the model's output layout.
        flip_index: the spec's flip index (needed when there are two passes).
        size_wh: projection size (W, H), or None to keep the stage resolution.

    Returns:
        One PassMaps per pass: heatmaps (B, K, H, W), tags (B, K, H, W, D) at ``size_wh`` (or at
        the last stage's (h, w) when None).
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
