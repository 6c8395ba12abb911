"""SimplePose V2 decoding: candidate limbs from guiding offsets and greedy offset-guided grouping
(ALGORITHMS.md §4.7; reference ``decoder/collect.py``, ``decoder/group.py``,
``decoder/factory.py:PostProcess.generate_poses``, ``transforms/preprocess.py``).

``decode_offsets`` (registered as ``"offsets"`` in ``bupose.decoders.DECODERS``)::

    decode_offsets(heatmaps (J, h, w), offsets (2L, h, w) or (4L, h, w), params=OffsetParams(),
                   skeleton=COCO_OFFSET_SKELETON)
    -> OffsetDecoded(poses (M, J, 6) input px [x, y, v, s, limb_score, id], peaks, limbs)

Maps are the network's outputs at stride ``params.upsample`` of the network input (offsets in
input pixels, channel 2l = x, 2l+1 = y of limb l; 4 channels per limb for the
``--cat-flip-offset`` fusion). Steps: top-k peaks of the bicubic-upsampled heatmaps
(``offsets_peaks``), the offsets read bilinearly at the start candidates, for each start
candidate the nearest end candidate to its guided point, greedy grouping in limb order
(``offsets_group``), person filter and sort. ``back_project`` maps input pixels to image pixels
with the reference's meta (offset, scale).

Reference quirks reproduced (fixtures README "Reference quirks"; numbers are theirs):
1. row of a peak = integer division of its flat index (``offsets_peaks.peaks_full``);
3. the -1/+1 column-sum rule (``OffsetParams.matched_limbs_start_people=False`` fixes it) and
   the relabelling of all 2s / 1s (``offsets_group``);
4. replace test at slot b OR a; merge only on exactly 2 shared ids (``offsets_group``);
5. x == 0 or y == 0 is invalid; low candidates are moved by -1e5 but stay in the nearest search
   (``collect_limbs``, ``offsets_group``);
6. non-stable argsort in the re-connection filter (``offsets_group.delete_reconnections``);
7. back-projection with (target-1)/(orig-1) scales; joints not found, (0, 0), come out at
   offset/scale (``back_project``; ``OffsetPredictor`` reports them as 0, 0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bupose.decoders.offsets_group import delete_sort, group_limbs
from bupose.decoders.offsets_peaks import Peaks, peaks_full, peaks_windowed
from bupose.errors import DataError

# the reference's COCO_PERSON_SKELETON: 19 directed limbs (from, to), offset channels 2l, 2l+1
COCO_OFFSET_SKELETON: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (5, 6), (4, 6), (3, 5), (5, 7), (7, 9), (6, 8),
    (8, 10), (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
)
OFF_IMAGE = 100000  # low candidates are moved this far up-left (reference quirk 5)


@dataclass(frozen=True)
class OffsetParams:
    """Test settings; defaults are the README evaluation flags of the reference.

    Attributes:
        thre_hmp: peaks below this heatmap value are moved off the image (``--thre-hmp``).
        topk: peaks kept per joint type (``--topk``).
        dist_max: limbs whose guided end misses its candidate by d >= max(dist_max, scale)
            are dropped (``--dist-max``).
        person_thre: people whose mean joint value is below this are dropped (``--person-thre``).
        min_len: limb lengths are clamped to at least this in the limb score (``--min-len``).
        upsample: heatmap/offset upsampling factor = network stride (4).
        sort_dim: person score column: 2 heatmap value, 4 limb score (``--sort-dim``).
        use_scale: compare d with max(dist_max, end-joint scale) (``--use-scale``).
        keypoint_scale: the scale of every candidate without a scale head (the reference: 4).
        peaks: "windowed" (fast, same result) or "full" (the reference's whole-map upsampling).
        matched_limbs_start_people: True (official, quirk 3): a limb whose match column sums to
            0 (e.g. -1 and +1) starts a new person; False: only a limb matching nobody does.
    """

    thre_hmp: float = 0.04
    topk: int = 32
    dist_max: float = 40.0
    person_thre: float = 0.04
    min_len: float = 0.5
    upsample: int = 4
    sort_dim: int = 2
    use_scale: bool = True
    keypoint_scale: float = 4.0
    peaks: str = "windowed"
    matched_limbs_start_people: bool = True

    def __post_init__(self) -> None:
        if self.peaks not in ("windowed", "full"):
            raise ValueError(f"peaks must be 'windowed' or 'full', got {self.peaks!r}")
        if self.topk < 1 or self.upsample < 2:
            raise ValueError(f"topk must be >= 1 and upsample >= 2, got {self.topk}, "
                             f"{self.upsample}")
        if self.sort_dim not in (2, 4):
            raise ValueError(f"sort_dim must be 2 or 4, got {self.sort_dim}")


@dataclass
class OffsetDecoded:
    """Stage outputs of ``decode_offsets`` for one image (input pixels).

    Attributes:
        poses: (M, J, 6) float32 [x, y, v, s, limb_score, id], 0 for joints not found, sorted
            by person score.
        peaks: the top-k candidates per joint type.
        limbs: (L, k, 13) float32 candidate limbs (``offsets_group`` docstring).
    """

    poses: np.ndarray
    peaks: Peaks
    limbs: np.ndarray


def find_peaks(heatmaps: np.ndarray, params: OffsetParams) -> Peaks:
    """Top-k peaks of the upsampled heatmaps (windowed unless ``params.peaks`` is "full" or
    the threshold is not positive)."""
    if params.peaks == "full" or params.thre_hmp <= 0:
        return peaks_full(heatmaps, params.upsample, params.topk)
    return peaks_windowed(heatmaps, params.upsample, params.topk, params.thre_hmp)


def sample_bilinear(
    maps: np.ndarray, index: np.ndarray, ys: np.ndarray, xs: np.ndarray, factor: int
) -> np.ndarray:
    """Values of the x``factor`` bilinear upsampling (align_corners False, as torch) of maps
    at upsampled pixels.

    Args:
        maps: (N, C, h, w) float32 low-res maps.
        index: (n,) int map of each point (first axis of ``maps``).
        ys, xs: (n,) int upsampled pixel rows / columns.

    Returns:
        (n, C) float32.
    """
    h, w = maps.shape[-2:]

    def axis(o: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.maximum((o.astype(np.float32) + np.float32(0.5)) / np.float32(factor)
                         - np.float32(0.5), np.float32(0))
        i0 = np.minimum(src.astype(np.int64), size - 1)
        i1 = np.minimum(i0 + 1, size - 1)
        return i0, i1, (src - i0).astype(np.float32)[:, None]

    y0, y1, ly = axis(ys, h)
    x0, x1, lx = axis(xs, w)
    top = maps[index, :, y0, x0] * (1 - lx) + maps[index, :, y0, x1] * lx
    bottom = maps[index, :, y1, x0] * (1 - lx) + maps[index, :, y1, x1] * lx
    return (top * (1 - ly) + bottom * ly).astype(np.float32)


def _norm(v: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(v * v, axis=-1))


def collect_limbs(
    peaks: Peaks,
    offsets: np.ndarray,
    params: OffsetParams,
    skeleton: Sequence[tuple[int, int]],
    map_size: tuple[int, int],
) -> np.ndarray:
    """Candidate limbs: for every limb (a -> b) and start candidate p, the end candidate q*
    nearest to the guided point g = p + offset(p), d = |g - q*|, length = max(|p - q*|,
    min_len), limb score = v_p * v_q* * exp(-d / length).

    Args:
        peaks: top-k candidates (upsampled frame of size ``map_size`` = (H, W)).
        offsets: (n_vec * L, h, w) float32 low-res offsets in input pixels (n_vec = 2 or 4).

    Returns:
        (L, k, 13) float32 limb records; ids are joint * H * W + flat index.
    """
    start = np.asarray([a for a, _ in skeleton])
    end = np.asarray([b for _, b in skeleton])
    nvec = offsets.shape[0] // len(skeleton)
    xy = np.stack((peaks.xs, peaks.ys), axis=-1)  # (J, k, 2)
    # quirk 5: low candidates are moved off the image but stay in the nearest search
    xy = np.where(peaks.scores[..., None] < params.thre_hmp, xy - OFF_IMAGE, xy)
    xy = xy.astype(np.float32)
    scores = peaks.scores.astype(np.float32)
    limb, slot = np.nonzero(peaks.inds[start] >= 0)
    off = np.zeros((len(skeleton), scores.shape[1], nvec), np.float32)
    off[limb, slot] = sample_bilinear(offsets.reshape(len(skeleton), nvec, *offsets.shape[1:]),
                                      limb, peaks.ys[start][limb, slot],
                                      peaks.xs[start][limb, slot], params.upsample)
    guide = np.tile(xy[start], nvec // 2) + off  # (L, k, n_vec)
    dist = _norm(guide[:, :, None] - np.tile(xy[end], nvec // 2)[:, None])  # (L, k, k)
    near = np.argmin(dist, axis=2)  # first of equal distances, as torch.min
    d = np.take_along_axis(dist, near[..., None], 2)[..., 0]
    xy_q = np.take_along_axis(xy[end], near[..., None], 1)
    v_q = np.take_along_axis(scores[end], near, 1)
    length = np.maximum(_norm(xy[start] - xy_q), np.float32(params.min_len))
    score = scores[start] * v_q * np.exp(-d / length)
    hw = map_size[0] * map_size[1]
    ids_a = (peaks.inds[start] + start[:, None] * hw).astype(np.float32)
    ids_b = (np.take_along_axis(peaks.inds[end], near, 1) + end[:, None] * hw).astype(np.float32)
    scale = np.full_like(d, params.keypoint_scale)
    return np.stack((xy[start][..., 0], xy[start][..., 1], scores[start], xy_q[..., 0],
                     xy_q[..., 1], v_q, ids_a, ids_b, d, length, score, scale, scale),
                    axis=-1).astype(np.float32)


def decode_offsets(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    params: OffsetParams | None = None,
    skeleton: Sequence[tuple[int, int]] = COCO_OFFSET_SKELETON,
) -> OffsetDecoded:
    """Greedy offset-guided grouping of one image (module docstring).

    Args:
        heatmaps: (J, h, w) float32 heatmaps at stride ``params.upsample``.
        offsets: (2L, h, w) (or (4L, h, w) for concatenated flip offsets) float32, input px.
        params: test settings (default: the reference's README evaluation flags).
        skeleton: L directed limbs (a, b) in the order of the offset channels.

    Returns:
        OffsetDecoded with the people in input pixels.

    Raises:
        ValueError: maps of the wrong shapes. DataError: NaN or inf in the maps.
    """
    params = params or OffsetParams()
    heatmaps = np.ascontiguousarray(heatmaps, dtype=np.float32)
    offsets = np.ascontiguousarray(offsets, dtype=np.float32)
    if heatmaps.ndim != 3 or offsets.ndim != 3 or offsets.shape[1:] != heatmaps.shape[1:]:
        raise ValueError(f"heatmaps (J,h,w) and offsets (nL,h,w) of the same size expected, got "
                         f"{heatmaps.shape} and {offsets.shape}")
    if offsets.shape[0] not in (2 * len(skeleton), 4 * len(skeleton)):
        raise ValueError(f"offsets have {offsets.shape[0]} channels; expected 2 or 4 per limb "
                         f"for {len(skeleton)} limbs")
    for name, maps in (("heatmaps", heatmaps), ("offsets", offsets)):
        if not np.isfinite(maps).all():
            raise DataError(f"{name} are not finite (NaN or inf); cannot decode")
    size = (heatmaps.shape[1] * params.upsample, heatmaps.shape[2] * params.upsample)
    peaks = find_peaks(heatmaps, params)
    limbs = collect_limbs(peaks, offsets, params, skeleton, size)
    people = group_limbs(limbs, skeleton, heatmaps.shape[0], params.dist_max, params.use_scale,
                         params.matched_limbs_start_people)
    poses = delete_sort(people, params.person_thre, params.sort_dim)
    return OffsetDecoded(poses, peaks, limbs)


def back_project(poses: np.ndarray, meta_offset: np.ndarray, meta_scale: np.ndarray) -> np.ndarray:
    """Input pixels -> image pixels as the reference: x = (x + offset_x) / scale_x (float32
    array, float64 meta). Reference quirk 7: joints not found (0, 0) land at offset / scale.

    Args:
        poses: (M, J, >=2) float32 people in input pixels.
        meta_offset: (2,) float64 (-pad_left, -pad_top) in input pixels.
        meta_scale: (2,) float64 ((target_w - 1) / (w - 1), (target_h - 1) / (h - 1)).

    Returns:
        (M, J, >=2) float32 copy in image pixels.
    """
    out = np.array(poses, dtype=np.float32, copy=True)
    offset = np.asarray(meta_offset, np.float64).reshape(2)
    scale = np.asarray(meta_scale, np.float64).reshape(2)
    for axis in (0, 1):
        out[..., axis] += offset[axis]
        out[..., axis] /= scale[axis]
    return out


def limb_flip_index(
    skeleton: Sequence[tuple[int, int]], keypoint_flip: Sequence[int]
) -> tuple[list[int], list[int]]:
    """Limb index of each limb's mirror image, and the limbs whose mirror is the reversed limb
    (reference ``config.offset_hflip``; e.g. l_eye -> r_eye).

    Returns:
        (flip (L,), reversed limbs) where limb l of a flipped image's output corresponds to limb
        flip[l] of the original.
    """
    mirrored = [(keypoint_flip[a], keypoint_flip[b]) for a, b in skeleton]
    flip, reverse = list(range(len(skeleton))), []
    for limb, (a, b) in enumerate(skeleton):
        if (a, b) in mirrored:
            flip[limb] = mirrored.index((a, b))
        if (b, a) in mirrored:
            flip[limb] = mirrored.index((b, a))
            reverse.append(limb)
    return flip, reverse
