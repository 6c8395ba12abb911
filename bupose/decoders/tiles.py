"""Square-tile summaries of one image's maps, shared by the peak finder and the refine search.

Tiles are S x S pixels (S = 8) in raster order; blocks group B x B tiles (B = 8). The heatmaps
are read in full once (``max_pool2d``: each tile's maximum and a pixel holding it) and the tag
maps once when the refine search first needs bounds (axis-aligned tag box of every tile);
everything else reads only the tiles it needs. Tiles at the right and bottom borders are
partial; their pixel lists repeat the last row / column (harmless for minima, maxima and first
raster indices).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bupose.errors import DataError

TILE = 8
BLOCK = 8


def tag_distance_bound(
    lo: np.ndarray, hi: np.ndarray, centres: np.ndarray, metric: float = 1.0
) -> np.ndarray:
    """(E,) lower bounds of the distance from centres (E, B) float64 to boxes [lo, hi] (E, B)."""
    gap = np.maximum(np.maximum(lo - centres, centres - hi), 0.0)
    return np.sqrt(row_sum_sq(gap) * metric)


def row_sum_sq(x: np.ndarray) -> np.ndarray:
    """(E, B) -> (E,) sum of squares over the short last axis (column loop: far faster than
    a numpy reduction over a length-2 axis)."""
    total = x[:, 0] * x[:, 0]
    for j in range(1, x.shape[1]):
        total = total + x[:, j] * x[:, j]
    return total


def bound_frame(tags: np.ndarray) -> np.ndarray:
    """(..., L) tags -> (..., L) float64 coordinates in which tag boxes are taken.

    For L = 2 (flip test) the rotated (t0 + t1, t0 - t1): both tags of a person are nearly
    equal, so a tile's tags lie near the diagonal and a box in this frame is much tighter than
    an axis-aligned one. Squared distances in this frame are ``1 / frame_metric`` times the tag
    ones. Other L: the tags themselves.
    """
    t = tags.astype(np.float64)
    if t.shape[-1] == 2:
        return np.stack([t[..., 0] + t[..., 1], t[..., 0] - t[..., 1]], axis=-1)
    return t


def frame_metric(dim: int) -> float:
    """Factor from squared bound-frame distances to squared tag distances."""
    return 0.5 if dim == 2 else 1.0


@dataclass(frozen=True)
class Blocks:
    """Block summaries of the tiles of one subset (live: tile max > 0, or dead: <= 0).

    Attributes:
        max: (K, NB) float32 max over the block's tiles in the subset (-inf when none).
        rep: (K, NB) int64 pixel holding it.
        lo, hi: (K, NB, L) float64 bound-frame tag box over all the block's tiles.
        members: (NB, B*B) int64 tile ids of each block, -1 outside the tile grid.
    """

    max: np.ndarray
    rep: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    members: np.ndarray


class MapTiles:
    """Tile maxima of the heatmaps, tag boxes and block summaries, computed on demand.

    Attributes:
        heat: (K, h*w) float32 view of the heatmaps; tags: (K, h*w, L) float32 view.
        max: (K, T) float32 tile maxima; rep: (K, T) int64 flat index of a pixel holding it.

    Raises:
        DataError: NaN or +inf in the heatmaps (seen through the tile maxima); NaN or inf in
            the tags (seen through the tile boxes).
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray, size: int = TILE) -> None:
        k, self.h, self.w = heatmaps.shape
        self.size, self.dim = size, tags.shape[3]
        self.heat = heatmaps.reshape(k, -1)
        self.tags = tags.reshape(k, self.h * self.w, self.dim)
        vmax, idx = torch.nn.functional.max_pool2d(
            torch.from_numpy(heatmaps), size, size, return_indices=True, ceil_mode=True
        )
        self.grid = (vmax.shape[1], vmax.shape[2])
        self.max = vmax.reshape(k, -1).numpy()
        self.rep = idx.reshape(k, -1).numpy()
        if np.isnan(self.max).any() or np.isposinf(self.max).any():
            raise DataError("heatmaps contain NaN/inf values; cannot decode")
        self._offsets = np.divmod(np.arange(size * size), size)
        shape = (k, self.max.shape[1], self.dim)
        self._box = (np.zeros(shape), np.zeros(shape), np.zeros(self.max.shape, bool))
        self._blocks: dict[bool, Blocks] = {}
        self._block_boxes: tuple[np.ndarray, np.ndarray] | None = None
        self._tight: tuple[np.ndarray, np.ndarray] | None = None
        self._planes: list[np.ndarray] | None = None
        halves = (k, self.max.shape[1], 2)
        self._split = (np.zeros((*halves, self.dim)), np.zeros((*halves, self.dim)),
                       np.zeros(halves, np.float32), np.zeros(self.max.shape, bool))

    def coords(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n,) tile ids -> y, x (n, S*S) pixel coordinates (unclamped) and validity mask."""
        ty, tx = np.divmod(tiles, self.grid[1])
        y = ty[:, None] * self.size + self._offsets[0]
        x = tx[:, None] * self.size + self._offsets[1]
        return y, x, (y < self.h) & (x < self.w)

    def pixels(self, tiles: np.ndarray) -> np.ndarray:
        """(n,) tile ids -> (n, S*S) flat pixel indices, clamped into the map."""
        y, x, _ = self.coords(tiles)
        return np.minimum(y, self.h - 1) * self.w + np.minimum(x, self.w - 1)

    def witness(self, tiles: np.ndarray) -> np.ndarray:
        """(n,) tile ids -> flat index of each tile's centre pixel (a cheap second sample)."""
        ty, tx = np.divmod(tiles, self.grid[1])
        y = np.minimum(ty * self.size + self.size // 2, self.h - 1)
        return y * self.w + np.minimum(tx * self.size + self.size // 2, self.w - 1)

    def tile_boxes(self, k: int, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi), each (E, L) float64: bound-frame tag boxes of joint k's ``tiles``."""
        self._gather_boxes(k, tiles)
        lo, hi, _ = self._box
        return lo[k][tiles], hi[k][tiles]

    def distance_bound(self, k: int, tiles: np.ndarray, centres: np.ndarray) -> np.ndarray:
        """(E,) lower bounds of the tag distance from centres (E, L) to the tags of ``tiles``."""
        lo, hi = self.tile_boxes(k, tiles)
        return tag_distance_bound(lo, hi, bound_frame(centres), frame_metric(self.dim))

    def _gather_boxes(self, k: int, tiles: np.ndarray) -> None:
        """Compute (once) the tag boxes of ``tiles``; of every tile of joint k when many."""
        have = self._box[2][k]
        need = tiles[~have[tiles]]
        if len(need) == 0:
            return
        need = np.unique(need)
        if len(need) > len(have) // 8:
            if self._planes is not None:
                planes = [plane[k : k + 1] for plane in self._planes]
            else:
                planes = _frame_planes(self.tags[k].reshape(1, self.h, self.w, self.dim))
            lo, hi = _pool_planes(planes, self.grid[0], self.grid[1], self.size)
            self._box[0][k], self._box[1][k], have[:] = lo[0], hi[0], True
            return
        frame = bound_frame(self.tags[k][self.pixels(need)])
        lo, hi = _halving(np.minimum, frame, axis=1), _halving(np.maximum, frame, axis=1)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise DataError("tags contain NaN/inf values; cannot decode")
        self._box[0][k][need], self._box[1][k][need] = lo, hi
        have[need] = True

    def split_bound(self, k: int, tiles: np.ndarray, centres: np.ndarray,
                    penalty: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """(E,) upper bounds of the scores in ``tiles`` from their two tag halves.

        A tile straddling a boundary between people has a wide tag box; splitting its pixels
        at the middle of the box's widest axis gives two tight boxes. Bound = max over the
        halves of (half max value - penalty(distance lower bound to the half's box)).
        """
        lo, hi, vmax, have = self._split
        need = tiles[~have[k][tiles]]
        if len(need):
            need = np.unique(need)
            tags = self.tags[k][self.pixels(need)]  # (n, S*S, L)
            heat = self.heat[k][self.pixels(need)]
            t_lo, t_hi = _halving(np.minimum, tags, 1), _halving(np.maximum, tags, 1)
            axis = np.argmax(t_hi - t_lo, axis=1)
            coord = np.take_along_axis(tags, axis[:, None, None], axis=2)[..., 0]
            mid = np.take_along_axis((t_lo + t_hi) / 2, axis[:, None], axis=1)
            upper_half = coord > mid
            for half, mask in enumerate((~upper_half, upper_half)):
                m = mask[..., None]
                lo[k][need, half] = _halving(np.minimum, np.where(m, tags, np.inf), 1)
                hi[k][need, half] = _halving(np.maximum, np.where(m, tags, -np.inf), 1)
                vmax[k][need, half] = _halving(np.maximum, np.where(mask, heat, -np.inf), 1)
            have[k][need] = True
        c = centres.astype(np.float64)
        bounds = [
            vmax[k][tiles, h] - penalty(tag_distance_bound(lo[k][tiles, h], hi[k][tiles, h], c))
            for h in range(2)
        ]
        return np.maximum(bounds[0], bounds[1])

    def tight_block_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Block tag boxes pooled from the bound-frame planes (tighter than ``Blocks.lo/hi``
        for L = 2, at the cost of building the planes): (K, NB, L) each."""
        if self._tight is None:
            th, tw = self.grid
            rows, cols = -(-th // BLOCK), -(-tw // BLOCK)
            self._planes = _frame_planes(self.tags.reshape(-1, self.h, self.w, self.dim))
            self._tight = _pool_planes(self._planes, rows, cols, self.size * BLOCK)
        return self._tight

    def blocks(self, live: bool) -> Blocks:
        """Block summaries of the live (tile max > 0) or dead tiles."""
        if live not in self._blocks:
            self._blocks[live] = self._make_blocks(live)
        return self._blocks[live]

    def _make_blocks(self, live: bool) -> Blocks:
        th, tw = self.grid
        bh, bw = -(-th // BLOCK), -(-tw // BLOCK)
        ids = np.full((bh * BLOCK, bw * BLOCK), -1, np.int64)
        ids[:th, :tw] = np.arange(th * tw).reshape(th, tw)
        members = ids.reshape(bh, BLOCK, bw, BLOCK).transpose(0, 2, 1, 3).reshape(bh * bw, -1)
        inside = members >= 0
        safe = np.where(inside, members, 0)
        tile_max = self.max[:, safe]  # (K, NB, B*B)
        in_subset = inside & ((tile_max > 0) == live)
        masked = np.where(in_subset, tile_max, -np.inf).astype(np.float32)
        best = masked.argmax(axis=2)
        block_max = np.take_along_axis(masked, best[..., None], axis=2)[..., 0]
        rep = np.take_along_axis(self.rep[:, safe], best[..., None], axis=2)[..., 0]
        if self._block_boxes is None:
            self._block_boxes = _pool_block_boxes(self.tags.reshape(-1, self.h, self.w, self.dim),
                                                  bh, bw, self.size * BLOCK)
        return Blocks(block_max, rep, *self._block_boxes, members)


def _frame_planes(tags: np.ndarray) -> list[np.ndarray]:
    """(N, h, w, L) float32 tags -> L float32 (N, h, w) bound-frame planes."""
    if tags.shape[3] == 2:
        return [tags[..., 0] + tags[..., 1], tags[..., 0] - tags[..., 1]]
    return [np.ascontiguousarray(tags[..., i]) for i in range(tags.shape[3])]


def _pool_block_boxes(
    tags: np.ndarray, rows: int, cols: int, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bound-frame boxes of big cells, from axis-aligned boxes pooled on the interleaved tags
    (one pass, no planes): for L = 2, t0 + t1 lies in [lo0 + lo1, hi0 + hi1] and t0 - t1 in
    [lo0 - hi1, hi0 - lo1].

    Returns:
        lo, hi: (N, rows * cols, L) float64.
    """
    n, h, w, dim = tags.shape
    hp, wp = rows * side, cols * side
    if (hp, wp) != (h, w):
        tags = np.pad(tags, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    bands = tags.reshape(n, rows, side, wp * dim)
    shape = (n, rows * cols, side, dim)
    lo = _halving(np.minimum, np.minimum.reduce(bands, axis=2).reshape(shape), 2)
    hi = _halving(np.maximum, np.maximum.reduce(bands, axis=2).reshape(shape), 2)
    lo, hi = lo.astype(np.float64), hi.astype(np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise DataError("tags contain NaN/inf values; cannot decode")
    if dim == 2:
        lo, hi = (np.stack([lo[..., 0] + lo[..., 1], lo[..., 0] - hi[..., 1]], axis=-1),
                  np.stack([hi[..., 0] + hi[..., 1], hi[..., 0] - lo[..., 1]], axis=-1))
    return lo, hi


def _pool_planes(
    planes: list[np.ndarray], rows: int, cols: int, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell min and max of (N, h, w) float32 planes over a rows x cols grid of cells.

    Returns:
        lo, hi: (N, rows * cols, len(planes)) float64, widened by 2**-22 relative (the planes
        of L = 2 are float32 sums).

    Raises:
        DataError: NaN or inf in the planes.
    """
    los, his = [], []
    for plane in planes:
        n, h, w = plane.shape
        hp, wp = rows * side, cols * side
        if (hp, wp) != (h, w):
            plane = np.pad(plane, ((0, 0), (0, hp - h), (0, wp - w)), mode="edge")
        bands = plane.reshape(n, rows, side, wp)
        shape = (n, rows * cols, side)
        lo = _halving(np.minimum, np.minimum.reduce(bands, axis=2).reshape(shape), 2)
        hi = _halving(np.maximum, np.maximum.reduce(bands, axis=2).reshape(shape), 2)
        los.append(lo)
        his.append(hi)
    lo = np.stack(los, axis=-1).astype(np.float64)
    hi = np.stack(his, axis=-1).astype(np.float64)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise DataError("tags contain NaN/inf values; cannot decode")
    slack = np.maximum(np.abs(lo), np.abs(hi)) * 2.0**-22
    return lo - slack, hi + slack


def _halving(op: np.ufunc, x: np.ndarray, axis: int = 2) -> np.ndarray:
    """Reduce ``axis`` (a power-of-two length) by pairwise halving: much faster than
    ``op.reduce`` over a short, strided axis."""
    x = np.moveaxis(x, axis, 0)
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        x = op(x[:half], x[half:])
    return x[0]
