"""Square-tile summaries of one image's maps, shared by the peak finder and the refine search.

Tiles are S x S pixels (S = 8) in raster order. Per tile:

* the heatmap maximum (at construction: one pooled pass over the heatmaps);
* per column, the tag box in the bound frame over each band of S rows (one pooled pass over
  the tag maps, when first needed), and from those the boxes of cells of CELL x CELL tiles
  and (for the tiles asked for, cached) of tiles;
* for the tiles asked for (read through a strided view of the maps, cached): the first
  raster-order maximum pixel and the boxes of two halves of the tile's tags, split at the
  middle of the widest axis of its box.

Bound frame: for L = 2 (flip test) the rotated coordinates (t0 + t1, t1 - t0), in which the
tags of a person (both components nearly equal) and the boundary between two people are thin
boxes; squared tag distances are ``frame_metric`` (1/2) times squared frame distances. For
other L the frame is the tags themselves. Frame boxes of float32 sums are widened by 2**-22
relative.

Ids: tile t of joint k has the global id ``k * T + t`` (T tiles per joint); pixel (y, x) of
joint k has the global id ``k * h * w + y * w + x``. Maps whose sides are not multiples of
PAD * S are edge-padded (repeated pixels change no minimum, maximum or first maximum: the
original comes first in raster order within its tile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bupose.decoders.pooling import frame_bands, one_thread, pad_edge, pool_cols, pool_rows, widened
from bupose.errors import DataError

TILE = 8
CELL = 2  # tiles per cell side: cells are the unit of the pooled tag boxes
PAD = 8  # tiles: the maps are edge-padded to multiples of PAD * TILE pixels


@dataclass(frozen=True)
class Boxes:
    """Boxes ``lo[j][i] <= coordinate_j <= hi[j][i]`` for every pixel tag of item i.

    Attributes:
        lo, hi: float64 arrays (N,), one per coordinate; metric: factor from squared
            coordinate distances to squared tag distances.
    """

    lo: tuple[np.ndarray, ...]
    hi: tuple[np.ndarray, ...]
    metric: float = 1.0

    def take(self, idx: np.ndarray) -> Boxes:
        return Boxes(tuple(a[idx] for a in self.lo), tuple(a[idx] for a in self.hi), self.metric)


def frame_metric(dim: int) -> float:
    """Squared tag distance per squared bound-frame distance."""
    return 0.5 if dim == 2 else 1.0


def to_frame(cols: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Tag coordinates (float64 columns) -> bound-frame coordinates."""
    if len(cols) == 2:
        return cols[0] + cols[1], cols[1] - cols[0]
    return cols


def _fresh(done: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Sorted unique ``ids`` whose ``done`` flag is False (a mark array, no sorting)."""
    mark = np.zeros(len(done), bool)
    mark[ids] = True
    mark &= ~done
    return np.flatnonzero(mark)


class MapTiles:
    """Tile summaries of one image's (K, h, w) heatmaps and (K, h, w, L) tags.

    Attributes:
        heat: (K, h*w) float32 view; tags: (K, h*w, L) float32 view; heat_flat (K*h*w,) and
            tags_flat (K*h*w, L): the same, indexed by global pixel ids.
        max: (K, T) float32 tile maxima; max_flat: (K*T,) the same by global tile id.
        grid: (tile rows, tile columns); size: S; dim: L; cache: per-image structures of the
            users (e.g. the refine search's index).

    Raises:
        DataError: NaN or +inf in the heatmaps (seen through the tile maxima); NaN or inf in
            the tags (seen through the block boxes, when first needed).
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray, size: int = TILE) -> None:
        k, self.h, self.w = heatmaps.shape
        self.size, self.dim = size, tags.shape[3]
        self.grid = (-(-self.h // size), -(-self.w // size))
        th, tw = self.grid
        self.tiles_per_joint = th * tw
        self.heat = heatmaps.reshape(k, -1)
        self.tags = tags.reshape(k, self.h * self.w, self.dim)
        self.heat_flat = self.heat.reshape(-1)
        self.tags_flat = self.tags.reshape(-1, self.dim)
        side = PAD * size
        hp, wp = -(-self.h // side) * side, -(-self.w // side) * side
        heat_p = pad_edge(heatmaps, hp, wp)
        self._tags_p = np.ascontiguousarray(pad_edge(tags, hp, wp))
        self._rows = hp // size
        self._heat_view = heat_p.reshape(k * self._rows, size, wp // size, size)
        self._tags_view = self._tags_p.reshape(k * self._rows, size, wp // size, size * self.dim)
        with one_thread():
            bands = pool_rows(torch.from_numpy(heat_p), self._rows, largest=True)
            pooled = pool_cols(bands, wp // size, 1, largest=True).numpy()
        self.max = np.ascontiguousarray(pooled[:, :th, :tw, 0]).reshape(k, th * tw)
        if np.isnan(self.max).any() or np.isposinf(self.max).any():
            raise DataError("heatmaps contain NaN/inf values; cannot decode")
        self.max_flat = self.max.reshape(-1)
        self._rep = np.full(self.max_flat.shape, -1, np.int64)
        self._kept: np.ndarray | None = None
        self._kept_heat = self._kept_tags = np.zeros(0, np.float32)
        self._pooled: dict[str, object] = {}
        self._store: dict[str, np.ndarray] = {}
        self.cache: dict[str, object] = {}

    # ---- geometry -------------------------------------------------------------------------
    def coords(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n,) local tile ids -> y, x (n, S*S) pixel coordinates (unclamped) and validity."""
        ty, tx = np.divmod(tiles, self.grid[1])
        offsets = np.divmod(np.arange(self.size * self.size), self.size)
        y = ty[:, None] * self.size + offsets[0]
        x = tx[:, None] * self.size + offsets[1]
        return y, x, (y < self.h) & (x < self.w)

    def pixel_id(self, gids: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Global pixel id of position ``pos`` (raster order in the tile) of tiles ``gids``,
        clamped into the map."""
        joint, tile = np.divmod(gids, self.tiles_per_joint)
        ty, tx = np.divmod(tile, self.grid[1])
        dy, dx = np.divmod(pos, self.size)
        y = np.minimum(ty * self.size + dy, self.h - 1)
        x = np.minimum(tx * self.size + dx, self.w - 1)
        return joint * (self.h * self.w) + y * self.w + x

    def values(self, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Heatmap (n, S*S) and tags (n, S*S, L) float32 of tiles ``gids``, raster order."""
        if self._kept is not None:
            rows = self._kept[gids]
            if len(rows) and rows.min() >= 0:
                return self._kept_heat[rows], self._kept_tags[rows]
        joint, tile = np.divmod(gids, self.tiles_per_joint)
        ty, tx = np.divmod(tile, self.grid[1])
        n, area, width = len(gids), self.size * self.size, self._heat_view.shape[2] * self.size
        start = ((joint * self._rows + ty) * self.size) * width + tx * self.size
        index = start[:, None] + self._offsets(width)
        heat = np.take(self._heat_view.reshape(-1), index)
        tags = self._tags_view.reshape(-1, self.dim)
        if self.dim == 2:  # one 8-byte element per pixel
            pairs = np.take(tags.view(np.int64).reshape(-1), index)
            return heat, pairs.view(np.float32).reshape(n, area, 2)
        return heat, np.take(tags, index, axis=0)

    def _offsets(self, width: int) -> np.ndarray:
        """(S*S,) flat offsets of a tile's pixels in raster order, rows ``width`` apart."""
        rows, cols = np.divmod(np.arange(self.size * self.size), self.size)
        return rows * width + cols

    def keep(self, gids: np.ndarray) -> None:
        """Copy the pixels of tiles ``gids`` (unique) into a tile-major store read by later
        ``values`` calls, and compute their first maxima at once."""
        self._kept = None
        heat, tags = self.values(gids)
        self._kept = np.full(len(self.max_flat), -1, np.int64)
        self._kept[gids] = np.arange(len(gids))
        self._kept_heat, self._kept_tags = heat, tags
        self._rep[gids] = self.pixel_id(gids, np.argmax(heat, axis=1))

    def witness(self, gids: np.ndarray) -> np.ndarray:
        """Global pixel id of each tile's centre pixel (a cheap sample)."""
        return self.pixel_id(gids, np.full(len(gids), (self.size // 2) * (self.size + 1)))

    def reps(self, gids: np.ndarray) -> np.ndarray:
        """(n,) global tile ids -> global pixel id of each tile's first raster maximum."""
        need = _fresh(self._rep >= 0, gids)
        if len(need):
            heat = self.values(need)[0]
            self._rep[need] = self.pixel_id(need, np.argmax(heat, axis=1))
        return self._rep[gids]

    # ---- tag boxes ------------------------------------------------------------------------
    def _arrays(self) -> dict[str, np.ndarray]:
        """Per-tile caches (global ids) of the boxes and halves, with their 'done' flags."""
        if not self._store:
            n, dim = len(self.max_flat), self.dim
            self._store.update(boxed=np.zeros(n, bool), split=np.zeros(n, bool),
                               lo=np.zeros((dim, n)), hi=np.zeros((dim, n)),
                               lo_half=np.zeros((n, 2, dim)), hi_half=np.zeros((n, 2, dim)),
                               vmax_half=np.zeros((n, 2), np.float32))
        return self._store

    def _bands(self) -> tuple[np.ndarray, np.ndarray]:
        """Frame boxes (float32) of every column over each band of S rows of the padded maps,
        (K, rows, W, L) each, computed once (one pass over the tag maps; NaN or inf anywhere
        in the tags is caught through the cell boxes made with it).

        Raises:
            DataError: NaN or inf in the tags.
        """
        if "bands" not in self._pooled:
            lo, hi, cell_lo, cell_hi = frame_bands(
                self._tags_p, self._tags_p.shape[1] // self.size, CELL)
            self._pooled["bands"] = (lo, hi)
            self._pooled["cells"] = self._cells(cell_lo, cell_hi)
        return self._pooled["bands"]  # type: ignore[return-value]

    def boxes(self, gids: np.ndarray) -> Boxes:
        """Bound-frame tag boxes (float64) of tiles ``gids`` (from the bands, cached)."""
        store = self._arrays()
        need = _fresh(store["boxed"], gids)
        if len(need):
            lo, hi = self._bands()
            joint, tile = np.divmod(need, self.tiles_per_joint)
            ty, tx = np.divmod(tile, self.grid[1])
            shape = (-1, lo.shape[2] // self.size, self.size, self.dim)
            row = joint * self._rows + ty
            with one_thread():
                box_lo = torch.from_numpy(lo.reshape(shape)[row, tx]).amin(dim=1).numpy()
                box_hi = torch.from_numpy(hi.reshape(shape)[row, tx]).amax(dim=1).numpy()
            box_lo, box_hi = widened(box_lo, box_hi, self.dim == 2)
            store["lo"][:, need], store["hi"][:, need] = box_lo.T, box_hi.T
            store["boxed"][need] = True
        return Boxes(tuple(a[gids] for a in store["lo"]), tuple(a[gids] for a in store["hi"]),
                     frame_metric(self.dim))

    def halves(self, gids: np.ndarray) -> tuple[Boxes, Boxes, np.ndarray]:
        """Frame boxes of the two halves of each tile's tags (split at the middle of the
        widest axis of its box) and (n, 2) float32 heatmap maxima of the halves (-inf for an
        empty half)."""
        store = self._arrays()
        need = _fresh(store["split"], gids)
        if len(need):
            self._split(need, store)
            store["split"][need] = True
        lo, hi = store["lo_half"][gids], store["hi_half"][gids]
        metric = frame_metric(self.dim)
        return (Boxes(tuple(lo[:, 0].T), tuple(hi[:, 0].T), metric),
                Boxes(tuple(lo[:, 1].T), tuple(hi[:, 1].T), metric), store["vmax_half"][gids])

    def _split(self, gids: np.ndarray, store: dict[str, np.ndarray]) -> None:
        """Halves of tiles ``gids``: the pixels at most / above the middle of the widest axis
        of the box, each with its own box (a tile across the boundary between two people:
        two thin boxes) and maximum value."""
        box = self.boxes(gids)
        heat, tags = self.values(gids)
        lo, hi = np.stack(box.lo, axis=1), np.stack(box.hi, axis=1)
        axis = np.argmax(hi - lo, axis=1)
        rows = np.arange(len(gids))
        mid = torch.from_numpy(((lo[rows, axis] + hi[rows, axis]) / 2).astype(np.float32))
        frame = [torch.from_numpy(plane) for plane in self._frame_pixels(tags)]
        with one_thread():
            coord = frame[0]
            for j in range(1, len(frame)):
                coord = torch.where(torch.from_numpy(axis == j)[:, None], frame[j], coord)
            upper = coord > mid[:, None]
            heat_t = torch.from_numpy(heat)
            for half, outside in enumerate((upper, ~upper)):
                for j, plane in enumerate(frame):
                    low = plane.masked_fill(outside, np.inf).amin(dim=1).numpy()
                    high = plane.masked_fill(outside, -np.inf).amax(dim=1).numpy()
                    low, high = widened(low, high, self.dim == 2)
                    store["lo_half"][gids, half, j], store["hi_half"][gids, half, j] = low, high
                vmax = heat_t.masked_fill(outside, -np.inf).amax(dim=1)
                store["vmax_half"][gids, half] = vmax.numpy()

    def _frame_pixels(self, tags: np.ndarray) -> list[np.ndarray]:
        """(n, S*S, L) float32 tags -> bound-frame planes, L arrays (n, S*S) float32."""
        if self.dim == 2:
            return [tags[..., 0] + tags[..., 1], tags[..., 1] - tags[..., 0]]
        return [np.ascontiguousarray(tags[..., j]) for j in range(self.dim)]

    # ---- dead blocks ----------------------------------------------------------------------
    def _cells(self, lo: np.ndarray, hi: np.ndarray) -> Boxes:
        """Cell boxes (K, CH, CW, L) float32 -> Boxes (K * CH * CW,).

        Raises:
            DataError: NaN or inf in the tags.
        """
        lo, hi = lo.reshape(-1, self.dim), hi.reshape(-1, self.dim)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise DataError("tags contain NaN/inf values; cannot decode")
        box_lo, box_hi = widened(lo, hi, self.dim == 2)
        return Boxes(tuple(box_lo.T), tuple(box_hi.T), frame_metric(self.dim))

    def cell_boxes(self) -> Boxes:
        """Frame boxes (K * CH * CW,) of the cells of CELL x CELL tiles of the padded maps
        (``cell_grid`` gives (CH, CW)), computed once with the bands.

        Raises:
            DataError: NaN or inf in the tags.
        """
        self._bands()
        return self._pooled["cells"]  # type: ignore[return-value]

    @property
    def cell_grid(self) -> tuple[int, int]:
        side = CELL * self.size
        return self._tags_p.shape[1] // side, self._tags_p.shape[2] // side
