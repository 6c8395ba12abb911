"""CAL decoding: the official top-down test path of "Low-resolution Human Pose Estimation"
(ALGORITHMS.md §6.6; reference ``core/function.py:validate``, ``core/evaluate.py``,
``core/inference.py``, ``utils/transforms.py``, ``nms/nms.py``, ``dataset/coco.py:evaluate``).

Per person box (N boxes, K joints, heatmaps h x w = the model's output, e.g. 16 x 12)::

    heatmaps (N,K,h,w), offsets (N,2K,h,w) [+ the raw maps of the flipped crops]
      -> fuse_flip: mean with the flipped-back maps (offsets: x channels negated; no 1-px shift)
      -> argmax_offset: first maximal cell (x0, y0) + LOCREF_STDEV * offset read at that cell
         = coords_hm (N,K,2) heatmap px, maxvals (N,K,1)
      -> back_project: x * S_w / (w - 1) + c_x - S_w / 2 (S = 200 * scale)  -> image px
      -> per image: rescore (box score x mean of joint maxvals > IN_VIS_THRE), hard OKS-NMS

``decode_cal`` (registered as ``"cal"`` in ``bupose.decoders.DECODERS``) runs all of it::

    decode_cal(heatmaps, offsets, center (N,2), scale (N,2), box_score (N,), image_id (N,),
               heatmaps_flip=None, offsets_flip=None, spec=COCO17, params=CalParams())
    -> CalDecoded (coords_hm, maxvals, keypoints in image px, rescored scores, NMS keeps,
                   ``results()`` = the official COCO result entries in the official order)

All arithmetic follows the reference's dtypes (float32 maps, float32 rescoring sums, float64
back-projection and OKS), so results and NMS decisions are those of the official code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bupose.errors import DataError
from bupose.structures.spec import KeypointSpec, get_spec

PIXEL_STD = 200.0  # the official unit of ``scale``


@dataclass(frozen=True)
class CalParams:
    """Test settings (official ``DATASET.LOCREF_STDEV``, ``TEST.IN_VIS_THRE``, ``TEST.OKS_THRE``);
    defaults are the W32-64x48 yaml's."""

    locref_stdev: float = 1.5
    in_vis_thre: float = 0.2
    oks_thre: float = 0.9
    readout: str = "offset"  # or a baseline: "argmax", "quarter", "dark" (decoders/cal_readout.py)


def flip_back(maps: np.ndarray, flip_index: Sequence[int]) -> np.ndarray:
    """Mirror maps of flipped crops along x and swap left/right channels (official ``flip_back``).

    Args:
        maps: (N, C, h, w) maps computed on horizontally flipped crops.
        flip_index: (C,) channel c of the result takes channel flip_index[c].

    Returns:
        (N, C, h, w) maps in the frame and channel order of the unflipped crops (no shift).
    """
    return np.ascontiguousarray(maps[:, list(flip_index), :, ::-1])


def flip_back_offsets(offsets: np.ndarray, flip_index: Sequence[int]) -> np.ndarray:
    """Flip back offset maps (N, 2K, h, w) ordered x_0, y_0, x_1, ...: x channels are negated,
    both components mirrored and their joints swapped; y channels are not negated."""
    n, c, h, w = offsets.shape
    per_joint = offsets.reshape(n, c // 2, 2, h, w).copy()
    per_joint[:, :, 0] = -per_joint[:, :, 0]
    back = per_joint[:, list(flip_index), :, :, ::-1]
    return np.ascontiguousarray(back.reshape(n, c, h, w))


def fuse_flip(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    heatmaps_flip: np.ndarray,
    offsets_flip: np.ndarray,
    flip_index: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """Flip test: ``(maps + flip_back(maps of the flipped crop)) * 0.5`` in float32.

    Args:
        heatmaps: (N, K, h, w), offsets: (N, 2K, h, w): the model on the crops.
        heatmaps_flip, offsets_flip: the model's raw outputs on the flipped crops.
        flip_index: (K,) the spec's flip index.

    Returns:
        fused heatmaps (N, K, h, w) and offsets (N, 2K, h, w), float32.
    """
    hm = np.asarray(heatmaps, np.float32)
    off = np.asarray(offsets, np.float32)
    hm_back = flip_back(np.asarray(heatmaps_flip, np.float32), flip_index)
    off_back = flip_back_offsets(np.asarray(offsets_flip, np.float32), flip_index)
    return (hm + hm_back) * np.float32(0.5), (off + off_back) * np.float32(0.5)


def argmax_offset(
    heatmaps: np.ndarray, offsets: np.ndarray, locref_stdev: float
) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax + offset read-out (official ``get_max_preds`` + ``get_offset``).

    The first maximal cell in row-major (y, x) order; a heatmap whose maximum is <= 0 gives
    (0, 0) (reference quirk, kept) and its offset is then read at cell (0, 0).

    Args:
        heatmaps: (N, K, h, w) float32; offsets: (N, 2K, h, w) in LOCREF_STDEV units.
        locref_stdev: offset unit in heatmap cells.

    Returns:
        coords_hm (N, K, 2) float32 (x, y) heatmap px = cell + locref_stdev * offset,
        maxvals (N, K, 1) float32.
    """
    hm = np.asarray(heatmaps, np.float32)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = np.argmax(flat, axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)
    positive = maxvals[..., 0] > 0.0
    xs = np.where(positive, idx % w, 0)
    ys = np.where(positive, idx // w, 0)
    off = np.asarray(offsets, np.float32).reshape(n, k, 2, h, w)
    b, j = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    read = off[b, j, :, ys, xs]  # (N, K, 2)
    cells = np.stack([xs, ys], axis=-1).astype(np.float32)
    coords = cells + read * np.float32(locref_stdev)
    return coords.astype(np.float32), maxvals.astype(np.float32)


def back_project(
    coords_hm: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_wh: Sequence[int]
) -> np.ndarray:
    """Heatmap px -> image px, the unbiased inverse (official ``transform_preds``).

    ``x_img = x * S_w / (w - 1) + c_x - S_w / 2`` with ``S = 200 * scale`` (float32, as the
    reference), the rest in float64; the same for y.

    Args:
        coords_hm: (N, K, 2) heatmap px; center: (N, 2) px; scale: (N, 2) 200-px units.
        heatmap_wh: (w, h) of the heatmaps.

    Returns:
        (N, K, 2) float32 image px (not clipped to the image: reference quirk 12).
    """
    side = np.asarray(scale, np.float32) * np.float32(PIXEL_STD)  # (N, 2) float32
    unit = side.astype(np.float64) / (np.asarray(heatmap_wh, np.float64) - 1.0)
    half = (side * np.float32(0.5)).astype(np.float64)
    c = np.asarray(center, np.float32).astype(np.float64)
    out = np.asarray(coords_hm, np.float32) * unit[:, None, :] + c[:, None, :] - half[:, None, :]
    return out.astype(np.float32)


def rescore(maxvals: np.ndarray, box_scores: np.ndarray, in_vis_thre: float) -> np.ndarray:
    """Person score = box score x mean of the joint maxvals above ``in_vis_thre`` (0 if none).

    Float32 sums in joint order and a float32 mean, times the float64 box score, as the
    official ``evaluate`` loop computes them.

    Args:
        maxvals: (N, K) or (N, K, 1) float32; box_scores: (N,).

    Returns:
        (N,) float64 scores.
    """
    vals = np.asarray(maxvals, np.float32)
    vals = vals[..., 0] if vals.ndim == 3 else vals
    total = np.zeros(len(vals), np.float32)
    count = np.zeros(len(vals), np.int64)
    for k in range(vals.shape[1]):
        above = vals[:, k] > in_vis_thre  # compared in float32, as the reference's scalars
        total = np.where(above, total + vals[:, k], total)
        count += above
    mean = np.zeros(len(vals), np.float32)
    np.divide(total, count.astype(np.float32), out=mean, where=count > 0)
    return mean.astype(np.float64) * np.asarray(box_scores, np.float64).reshape(-1)


def oks_iou(
    kept: np.ndarray, others: np.ndarray, area_kept: float, areas: np.ndarray,
    sigmas: np.ndarray,
) -> np.ndarray:
    """OKS of one pose against others (official ``oks_iou``, no visibility filter).

    ``mean_k exp(-d_k^2 / (2σ_k)^2 / ((a_1 + a_2) / 2 + eps) / 2)`` over all K joints.

    Args:
        kept: (K, 3) float32; others: (M, K, 3) float32 [x, y, maxval] image px.
        area_kept, areas: box areas (prod(200 * scale)) of the pose and of the others (M,).
        sigmas: (K,) OKS sigmas (COCO: the /10 values).

    Returns:
        (M,) float64 OKS.
    """
    variances = (np.asarray(sigmas, np.float64) * 2) ** 2
    dx = others[:, :, 0] - kept[None, :, 0]
    dy = others[:, :, 1] - kept[None, :, 1]
    scale = (area_kept + np.asarray(areas, np.float64)) / 2 + np.spacing(1)
    e = (dx**2 + dy**2) / variances / scale[:, None] / 2
    return np.sum(np.exp(-e), axis=1) / e.shape[1]


def oks_nms(
    keypoints: np.ndarray, scores: np.ndarray, areas: np.ndarray, thresh: float,
    sigmas: np.ndarray,
) -> list[int]:
    """Hard OKS-NMS of one image's poses (official ``oks_nms``).

    Candidates are visited in ``np.argsort(scores)[::-1]`` order (ties as numpy orders them);
    each kept pose removes the remaining ones with OKS > ``thresh``.

    Returns:
        indices of the kept poses, in keep order.
    """
    kps = np.asarray(keypoints, np.float32)
    areas = np.asarray(areas, np.float64)
    order = np.asarray(scores, np.float64).argsort()[::-1]
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        overlap = oks_iou(kps[i], kps[order[1:]], float(areas[i]), areas[order[1:]], sigmas)
        order = order[np.where(overlap <= thresh)[0] + 1]
    return keep


@dataclass
class CalDecoded:
    """Decoded person boxes (N) and the official per-image rescoring / NMS outcome.

    Attributes:
        coords_hm: (N, K, 2) float32 heatmap px; maxvals: (N, K, 1) float32.
        keypoints: (N, K, 3) float32 [x, y, maxval] image px.
        scores: (N,) float64 rescored person scores; box_score: (N,) float64 input box scores.
        center, scale: (N, 2) float32 boxes; areas: (N,) float64 ``prod(200 * scale)``.
        image_id: (N,) int64.
        nms: per image, in order of first appearance: (image_id, box indices of the image
            (global), keep (indices into those boxes, in keep order)).
    """

    coords_hm: np.ndarray
    maxvals: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
    box_score: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    areas: np.ndarray
    image_id: np.ndarray
    nms: list[tuple[int, np.ndarray, list[int]]] = field(default_factory=list)

    @property
    def kept(self) -> np.ndarray:
        """(M,) global box indices of the results, in the official results order."""
        parts = [boxes[keep] for _, boxes, keep in self.nms]
        return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

    def results(self, category_id: int = 1) -> list[dict[str, Any]]:
        """Official COCO result entries: ``image_id``, ``category_id``, ``keypoints`` (K*3 image
        px + maxval), rescored ``score``, ``center``, ``scale``; images in order of first
        appearance, per image the NMS keep order."""
        return [
            {
                "image_id": int(self.image_id[i]),
                "category_id": int(category_id),
                "keypoints": self.keypoints[i].astype(np.float64).reshape(-1).tolist(),
                "score": float(self.scores[i]),
                "center": self.center[i].astype(np.float64).tolist(),
                "scale": self.scale[i].astype(np.float64).tolist(),
            }
            for i in self.kept
        ]


def decode_cal(
    heatmaps: np.ndarray,
    offsets: np.ndarray,
    center: np.ndarray,
    scale: np.ndarray,
    box_score: np.ndarray,
    image_id: np.ndarray,
    heatmaps_flip: np.ndarray | None = None,
    offsets_flip: np.ndarray | None = None,
    spec: KeypointSpec | None = None,
    params: CalParams | None = None,
) -> CalDecoded:
    """The whole official decoding of N person boxes (module docstring).

    Args:
        heatmaps: (N, K, h, w); offsets: (N, 2K, h, w) (x_0, y_0, ... in LOCREF_STDEV units).
        center, scale: (N, 2) boxes (px; 200-px units, aspect-fixed and x1.25).
        box_score: (N,) detector scores (1 for ground-truth boxes); image_id: (N,).
        heatmaps_flip, offsets_flip: the raw outputs on the flipped crops (flip test), or None.
        spec: keypoint spec (flip index, OKS sigmas); default coco17.
        params: CalParams (default: the W32-64x48 yaml's).

    Returns:
        CalDecoded.

    Raises:
        DataError: NaN or inf in the maps.
    """
    spec = spec or get_spec("coco17")
    params = params or CalParams()
    hm = np.asarray(heatmaps, np.float32)
    off = np.asarray(offsets, np.float32)
    for name, maps in (("heatmaps", hm), ("offsets", off), ("flipped heatmaps", heatmaps_flip),
                       ("flipped offsets", offsets_flip)):
        if maps is not None and not np.isfinite(maps).all():
            raise DataError(f"{name} are not finite (NaN or inf); cannot decode")
    if (heatmaps_flip is None) != (offsets_flip is None):
        raise ValueError("heatmaps_flip and offsets_flip go together")
    if heatmaps_flip is not None and offsets_flip is not None:
        hm, off = fuse_flip(hm, off, heatmaps_flip, offsets_flip, spec.flip_index)
    if params.readout == "offset":
        coords, maxvals = argmax_offset(hm, off, params.locref_stdev)
    else:
        from bupose.decoders.cal_readout import read_out

        coords, maxvals = read_out(hm, off, params.readout, params.locref_stdev)
    center32 = np.asarray(center, np.float32).reshape(-1, 2)
    scale32 = np.asarray(scale, np.float32).reshape(-1, 2)
    xy = back_project(coords, center32, scale32, (hm.shape[3], hm.shape[2]))
    keypoints = np.concatenate([xy, maxvals], axis=2)
    boxes = np.asarray(box_score, np.float64).reshape(-1)
    scores = rescore(maxvals, boxes, params.in_vis_thre)
    areas = np.prod(scale32 * np.float32(PIXEL_STD), axis=1).astype(np.float64)
    ids = np.asarray(image_id, np.int64).reshape(-1)
    out = CalDecoded(coords, maxvals, keypoints, scores, boxes, center32, scale32, areas, ids)
    out.nms = nms_per_image(out, params.oks_thre, np.asarray(spec.sigmas, np.float64))
    return out


def nms_per_image(
    decoded: CalDecoded, thresh: float, sigmas: np.ndarray
) -> list[tuple[int, np.ndarray, list[int]]]:
    """OKS-NMS of each image's boxes, images in order of first appearance (``CalDecoded.nms``)."""
    out = []
    for img in dict.fromkeys(decoded.image_id.tolist()):
        members = np.flatnonzero(decoded.image_id == img)
        keep = oks_nms(decoded.keypoints[members], decoded.scores[members],
                       decoded.areas[members], thresh, sigmas)
        out.append((int(img), members, keep))
    return out
