"""Peak finding for the associative-embedding decoders: input checks, max-pool NMS and top-k.

The official HeatmapParser (HigherHRNet ``lib/core/group.py``, mmpose 0.x) keeps the pixels that
equal the maximum of their ``kernel x kernel`` neighbourhood (padding never wins), then takes the
``top_k`` largest values per joint channel with ``torch.topk``; only those above the detection
threshold are ever used. ``find_peaks`` computes exactly those: the NMS runs only inside tiles
whose maximum is above the threshold, and peaks are ordered by value. When two peaks of a joint
type have bit-identical values within the top k, the order ``torch.topk`` gives them depends on
the whole map, so for that joint type ``find_peaks`` falls back to the full official
computation (``top_k_dense``) to reproduce it.

torch is never imported here: the decoders must run without it (a torch-free onnxruntime path).
When torch is loaded (``"torch" in sys.modules``, as on every path that runs a torch model),
``top_k_dense`` uses ``torch.topk`` exactly as the official code; otherwise ``top_k_rows_numpy``,
whose order of bit-identical values (ascending flat index) may differ from torch's. Without
such ties both give the same peaks.

Row index y of a peak is the exact integer division of its flat index by the map width (the
official HigherHRNet code computes it as float32 ``ind / w`` then truncates, which is identical
for maps under 2**24 pixels and wrong above).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from bupose.decoders.pooling import torch_loaded
from bupose.decoders.tiles import MapTiles
from bupose.errors import DataError


@dataclass(frozen=True)
class Peaks:
    """Top-k NMS peaks of one image, per joint type.

    Attributes:
        vals: (K, M) float32 heatmap values, descending per joint (torch.topk order; without
            torch, bit-identical values by ascending flat index: ``top_k_dense``).
        locs: (K, M, 2) int64 (x, y) map pixels.
        tags: (K, M, L) float32 tag vectors at those pixels.
        Entries at or below the detection threshold never matter; ``find_peaks`` leaves them 0.
    """

    vals: np.ndarray
    locs: np.ndarray
    tags: np.ndarray

    @property
    def num_joints(self) -> int:
        return int(self.vals.shape[0])

    @property
    def tag_dim(self) -> int:
        return int(self.tags.shape[2])

    def candidates(self, joint: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """The peaks of one joint type with value above ``threshold``, in top-k order.

        Returns:
            joints: (N, 3 + L) float64 rows [x, y, val, tags...] (the official row layout).
            tags: (N, L) float32 tag vectors of those rows.
        """
        keep = self.vals[joint] > threshold
        tags = self.tags[joint][keep]
        rows = np.concatenate(
            [self.locs[joint][keep], self.vals[joint][keep][:, None], tags], axis=1
        ).astype(np.float64)
        return rows, tags


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """x (numpy, torch tensor or nested sequence) as a C-contiguous float32 array; a torch
    tensor is recognised without importing torch (it can only exist if torch is loaded)."""
    if torch_loaded() and isinstance(x, sys.modules["torch"].Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise DataError(f"{name}: expected a real-valued array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def as_maps(heatmaps: Any, tags: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert one image's decoder inputs (numpy or torch, any float dtype).

    Args:
        heatmaps: (K, h, w) aggregated heatmaps.
        tags: (K, h, w, L) tag maps (L = 2 with the flip test), or (K, h, w) for L = 1.

    Returns:
        (heatmaps (K, h, w) float32, tags (K, h, w, L) float32), C-contiguous.

    Raises:
        DataError: wrong shapes. (NaN/inf are caught by ``MapTiles`` and ``find_peaks``.)
    """
    heat = _to_numpy(heatmaps, "heatmaps")
    tag = _to_numpy(tags, "tags")
    if heat.ndim != 3:
        raise DataError(f"heatmaps: expected shape (K, h, w), got {heat.shape}")
    if tag.ndim == 3:
        tag = tag[..., None]
    if tag.ndim != 4 or tag.shape[:3] != heat.shape:
        raise DataError(
            f"tags: expected shape (K, h, w, L) matching heatmaps {heat.shape}, got {tag.shape}"
        )
    if min(heat.shape) == 0 or tag.shape[3] == 0:
        raise DataError(f"heatmaps/tags are empty: {heat.shape}, {tag.shape}")
    return heat, tag


def nms(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """Zero every pixel that is not the maximum of its ``kernel x kernel`` window.

    Args:
        heatmaps: (K, h, w) float32.
        kernel: odd window side (5 in the official settings).

    Returns:
        (K, h, w) float32: ``heatmaps * (pooled == heatmaps)``, as the official code, where
        pooled is the max over the window clipped to the map (the official max-pool pads with
        -inf), computed as two separable passes of shifted maxima.
    """
    pooled = heatmaps.copy()
    for axis in (2, 1):
        src = pooled.copy()
        n = src.shape[axis]
        for d in range(1, kernel // 2 + 1):
            if d >= n:
                break
            head = [slice(None)] * 3
            tail = [slice(None)] * 3
            head[axis], tail[axis] = slice(0, n - d), slice(d, n)
            np.maximum(pooled[tuple(head)], src[tuple(tail)], out=pooled[tuple(head)])
            np.maximum(pooled[tuple(tail)], src[tuple(head)], out=pooled[tuple(tail)])
    return heatmaps * (pooled == heatmaps)


def top_k_rows_numpy(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest values of each row of x (R, n), descending; bit-identical values in
    ascending index order (a stable sort). ``torch.topk`` gives the same values, and the same
    indices unless a row has bit-identical values (its order of those depends on the row).

    Per row: the k-th largest value v by ``np.partition`` (O(n)), a stable sort of the values
    above v, then the first pixels equal to v (on a suppressed map v is often 0 on most pixels).

    Args:
        x: (R, n) float32 without NaN; k: 1 <= k <= n.

    Returns:
        vals (R, k) of x's dtype, indices (R, k) int64.
    """
    ind = np.empty((len(x), k), np.int64)
    for r, row in enumerate(x):
        kth = -np.partition(-row, k - 1)[k - 1]  # (faster than row's (n - k)-th on plateaus)
        above = np.flatnonzero(row > kth)
        at = np.flatnonzero(row == kth)[: k - len(above)]
        if len(above) + len(at) < k:  # a NaN at the cut (not a valid input): no crash
            ind[r] = np.argsort(-row, kind="stable")[:k]
            continue
        ind[r, : len(above)] = above[np.argsort(-row[above], kind="stable")]
        ind[r, len(above) :] = at
    return np.take_along_axis(x, ind, axis=1), ind


def top_k_rows(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``torch.topk(x, k, dim=1)`` when torch is loaded (the official order), else
    ``top_k_rows_numpy`` (ties by ascending index). x: (R, n); returns (R, k) vals, indices."""
    if not torch_loaded():
        return top_k_rows_numpy(x, k)
    import torch

    vals, ind = torch.from_numpy(x).topk(k, dim=1)
    return vals.numpy(), ind.numpy()


def top_k_dense(heatmaps: np.ndarray, tags: np.ndarray, k: int, kernel: int) -> Peaks:
    """The official full-map computation: NMS, then the ``k`` largest values per joint.

    With torch loaded this is ``torch.topk`` as in the official code; without it, numpy, whose
    order of bit-identical values (ascending flat index) may differ from torch's
    (``top_k_rows``).

    Args:
        heatmaps: (K, h, w) float32 (checked by ``as_maps``).
        tags: (K, h, w, L) float32.
        k: peaks per joint (capped at h * w).
        kernel: NMS window side.
    """
    num_joints, h, w = heatmaps.shape
    suppressed = nms(heatmaps, kernel).reshape(num_joints, h * w)
    vals, ind = top_k_rows(suppressed, min(k, h * w))
    locs = np.stack([ind % w, ind // w], axis=2).astype(np.int64)
    flat_tags = tags.reshape(num_joints, h * w, tags.shape[3])
    peak_tags = np.take_along_axis(flat_tags, ind[:, :, None], axis=1)
    return Peaks(vals, locs, np.ascontiguousarray(peak_tags))


@numba.njit(cache=True, nogil=True)
def _hot_maxima(heat, tmax, tw, size, r, threshold):  # noqa: ANN001, ANN202
    """Pixels above ``threshold`` in the tiles whose maximum is above it that no pixel of
    their (2r + 1)-square window (clipped to the map) exceeds: joint, flat index, value."""
    k_, h, w = heat.shape
    hot = np.argwhere(tmax > threshold)
    joint = np.empty(len(hot) * size * size, np.int64)
    flat = np.empty(len(hot) * size * size, np.int64)
    val = np.empty(len(hot) * size * size, np.float32)
    n = 0
    for i in range(len(hot)):
        k, t = hot[i, 0], hot[i, 1]
        for y in range((t // tw) * size, min((t // tw) * size + size, h)):
            for x in range((t % tw) * size, min((t % tw) * size + size, w)):
                v = heat[k, y, x]
                if not v > threshold:
                    continue
                if ((x > 0 and heat[k, y, x - 1] > v) or (x + 1 < w and heat[k, y, x + 1] > v)
                        or (y > 0 and heat[k, y - 1, x] > v)
                        or (y + 1 < h and heat[k, y + 1, x] > v)):
                    continue  # the usual case on a slope, decided by a 4-neighbour
                peak = True
                for yy in range(max(y - r, 0), min(y + r + 1, h)):
                    for xx in range(max(x - r, 0), min(x + r + 1, w)):
                        if heat[k, yy, xx] > v:
                            peak = False
                            break
                    if not peak:
                        break
                if peak:
                    joint[n], flat[n], val[n] = k, y * w + x, v
                    n += 1
    return joint[:n], flat[:n], val[:n]


def find_peaks(
    heatmaps: np.ndarray, tags: np.ndarray, tiles: MapTiles, k: int, kernel: int,
    threshold: float,
) -> Peaks:
    """The official top-k peaks above ``threshold`` per joint, found from the hot tiles only.

    Args:
        heatmaps: (K, h, w) float32; tags: (K, h, w, L) float32.
        tiles: ``MapTiles`` of these maps.
        k: peaks per joint; kernel: NMS window side; threshold: detection threshold.

    Returns:
        Peaks whose entries above ``threshold`` equal the official ``top_k`` ones.

    Raises:
        DataError: NaN/inf in the tags at a peak.
    """
    num_joints, h, w = heatmaps.shape
    joint, flat, val = _hot_maxima(heatmaps, tiles.max, tiles.grid[1], tiles.size, kernel // 2,
                                   np.float32(threshold))
    order = np.lexsort((flat, -val, joint))
    joint, flat, val = joint[order], flat[order], val[order]
    starts = np.searchsorted(joint, np.arange(num_joints))
    rank = np.arange(len(joint)) - starts[joint]
    tied = (joint[1:] == joint[:-1]) & (val[1:] == val[:-1]) & (rank[:-1] < k)
    tied_joints = np.unique(joint[1:][tied])
    keep = (rank < k) & ~np.isin(joint, tied_joints)
    joint, flat, val, rank = joint[keep], flat[keep], val[keep], rank[keep]
    width = min(k, h * w)
    vals = np.zeros((num_joints, width), np.float32)
    locs = np.zeros((num_joints, width, 2), np.int64)
    peak_tags = np.zeros((num_joints, width, tags.shape[3]), np.float32)
    vals[joint, rank] = val
    locs[joint, rank] = np.stack([flat % w, flat // w], axis=1)
    peak_tags[joint, rank] = tags.reshape(num_joints, h * w, -1)[joint, flat]
    for j in tied_joints:
        # torch.topk orders equal values by the whole row: use the official computation
        # (without torch: numpy, ties by ascending flat index; see top_k_dense)
        dense = top_k_dense(heatmaps[j : j + 1], tags[j : j + 1], k, kernel)
        vals[j], locs[j], peak_tags[j] = dense.vals[0], dense.locs[0], dense.tags[0]
    _check_tags(peak_tags[vals > threshold])
    return Peaks(vals, locs, peak_tags)


def _check_tags(tags: np.ndarray) -> None:
    if not np.isfinite(tags).all():
        raise DataError("tags contain NaN/inf values at heatmap peaks; cannot decode")
