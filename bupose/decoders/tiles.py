"""Square-tile summaries of one image's maps, shared by the peak finder and the refine search.

Tiles are S x S pixels (S = 8) in raster order; blocks group B x B tiles (B = 8). Per tile:
the heatmap maximum (computed at construction: one pooled pass over the heatmaps), the
axis-aligned tag box (lazily, for every tile at once: one pooled pass over the tag maps), the
first raster-order pixel holding the maximum and the boxes of two tag halves (lazily, for the
tiles asked for, by gathering their pixels). Maps whose sides are not multiples of S are
edge-padded for pooling (repeated pixels change no minimum, maximum or first maximum).

Ids: tile t of joint k has the global id ``k * T + t`` (T tiles per joint); pixel (y, x) of
joint k has the global id ``k * h * w + y * w + x``. Boxes are float64 columns (one array per
tag component), so bounds are computed without reductions over the short tag axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bupose.errors import DataError

TILE = 8
BLOCK = 8


@dataclass(frozen=True)
class Boxes:
    """Axis-aligned tag boxes: ``lo[j][i] <= tag_j <= hi[j][i]`` for every pixel of item i.

    Attributes:
        lo, hi: L float64 arrays (N,) each.
    """

    lo: tuple[np.ndarray, ...]
    hi: tuple[np.ndarray, ...]

    def take(self, idx: np.ndarray) -> Boxes:
        return Boxes(tuple(a[idx] for a in self.lo), tuple(a[idx] for a in self.hi))


@dataclass(frozen=True)
class DeadBlocks:
    """Block summaries of the dead tiles (tile max <= 0), for every joint.

    Attributes:
        max: (K * NB,) float32 max over the block's dead tiles (-inf when none).
        boxes: tag boxes over the block's dead tiles, (K * NB,) per component.
        members: (NB, B * B) int64 local tile ids of each block, -1 outside the grid.
    """

    max: np.ndarray
    boxes: Boxes
    members: np.ndarray


def _pad_edge(x: np.ndarray, hp: int, wp: int) -> np.ndarray:
    """Edge-pad axes 1 and 2 of x (K, h, w, ...) to (hp, wp)."""
    if x.shape[1:3] == (hp, wp):
        return x
    pad = [(0, 0), (0, hp - x.shape[1]), (0, wp - x.shape[2])] + [(0, 0)] * (x.ndim - 3)
    return np.pad(x, pad, mode="edge")


def _pool(x: np.ndarray, rows: int, cols: int, side: int, largest: bool) -> np.ndarray:
    """Max (or min) of x (K, rows*side, cols*side, C) over side x side cells: (K, rows, cols, C).

    Two strided reductions (rows of a band, then columns of a cell); torch's are several
    times faster than numpy's on these layouts.
    """
    k, c = x.shape[0], x.shape[3]
    t = torch.from_numpy(x)
    reduce = torch.amax if largest else torch.amin
    band = reduce(t.view(k, rows, side, cols * side * c), dim=2)
    return reduce(band.view(k, rows, cols, side, c), dim=3).numpy()


class MapTiles:
    """Tile summaries of one image's (K, h, w) heatmaps and (K, h, w, L) tags.

    Attributes:
        heat: (K, h*w) float32 view; tags: (K, h*w, L) float32 view; heat_flat (K*h*w,) and
            tags_flat (K*h*w, L): the same, indexed by global pixel ids.
        max: (K, T) float32 tile maxima; max_flat: (K*T,) the same by global tile id.
        grid: (tile rows, tile columns); size: S; cache: per-image structures of the users
            (e.g. the refine search's index).

    Raises:
        DataError: NaN or +inf in the heatmaps (seen through the tile maxima); NaN or inf in
            the tags (seen through the tag boxes, when first needed).
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray, size: int = TILE) -> None:
        k, self.h, self.w = heatmaps.shape
        self.size, self.dim = size, tags.shape[3]
        self.grid = (-(-self.h // size), -(-self.w // size))
        self.heat = heatmaps.reshape(k, -1)
        self.tags = tags.reshape(k, self.h * self.w, self.dim)
        self.heat_flat = self.heat.reshape(-1)
        self.tags_flat = self.tags.reshape(-1, self.dim)
        self._maps = (heatmaps, tags)
        th, tw = self.grid
        padded = _pad_edge(heatmaps, th * size, tw * size)[..., None]
        self.max = _pool(padded, th, tw, size, largest=True).reshape(k, th * tw)
        if np.isnan(self.max).any() or np.isposinf(self.max).any():
            raise DataError("heatmaps contain NaN/inf values; cannot decode")
        self.max_flat = self.max.reshape(-1)
        self.tiles_per_joint = th * tw
        self._offsets = np.divmod(np.arange(size * size), size)
        self._rep = np.full(self.max_flat.shape, -1, np.int64)
        self._boxes: Boxes | None = None
        self._dead: DeadBlocks | None = None
        self._halves: tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray] | None
        self._halves = None
        self.cache: dict[str, object] = {}

    def coords(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n,) local tile ids -> y, x (n, S*S) pixel coordinates (unclamped) and validity."""
        ty, tx = np.divmod(tiles, self.grid[1])
        y = ty[:, None] * self.size + self._offsets[0]
        x = tx[:, None] * self.size + self._offsets[1]
        return y, x, (y < self.h) & (x < self.w)

    def pixels(self, gids: np.ndarray) -> np.ndarray:
        """(n,) global tile ids -> (n, S*S) global pixel ids, raster order, clamped into the
        map (clamped entries repeat a pixel listed earlier in the same tile)."""
        joint, tile = np.divmod(gids, self.tiles_per_joint)
        y, x, _ = self.coords(tile)
        flat = np.minimum(y, self.h - 1) * self.w + np.minimum(x, self.w - 1)
        return flat + (joint * (self.h * self.w))[:, None]

    def witness(self, gids: np.ndarray) -> np.ndarray:
        """(n,) global tile ids -> global pixel id of each tile's centre pixel."""
        joint, tile = np.divmod(gids, self.tiles_per_joint)
        ty, tx = np.divmod(tile, self.grid[1])
        y = np.minimum(ty * self.size + self.size // 2, self.h - 1)
        x = np.minimum(tx * self.size + self.size // 2, self.w - 1)
        return joint * (self.h * self.w) + y * self.w + x

    def reps(self, gids: np.ndarray) -> np.ndarray:
        """(n,) global tile ids -> global pixel id of each tile's first raster maximum."""
        need = gids[self._rep[gids] < 0]
        if len(need):
            need = np.unique(need)
            pix = self.pixels(need)
            first = np.argmax(self.heat_flat[pix], axis=1)
            self._rep[need] = pix[np.arange(len(need)), first]
        return self._rep[gids]

    def boxes(self) -> Boxes:
        """Tag boxes of every tile (global ids), computed once."""
        if self._boxes is None:
            tags = self._maps[1]
            th, tw = self.grid
            padded = _pad_edge(tags, th * self.size, tw * self.size)
            lo = _pool(padded, th, tw, self.size, largest=False).reshape(-1, self.dim)
            hi = _pool(padded, th, tw, self.size, largest=True).reshape(-1, self.dim)
            if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
                raise DataError("tags contain NaN/inf values; cannot decode")
            self._boxes = Boxes(
                tuple(lo[:, j].astype(np.float64) for j in range(self.dim)),
                tuple(hi[:, j].astype(np.float64) for j in range(self.dim)),
            )
        return self._boxes

    def halves(self, gids: np.ndarray) -> tuple[Boxes, Boxes, np.ndarray]:
        """Split each tile's pixels at the middle of its box's widest tag axis.

        Returns:
            boxes of the lower and upper half (n,) each, and (n, 2) float32 heatmap maxima of
            the two halves (-inf for an empty half).
        """
        if self._halves is None:
            n, dim = len(self.max_flat), self.dim
            self._halves = ([np.zeros((n, 2)) for _ in range(dim)],
                            [np.zeros((n, 2)) for _ in range(dim)],
                            np.zeros((n, 2), np.float32), np.zeros(n, bool))
        lo, hi, vmax, have = self._halves
        need = gids[~have[gids]]
        if len(need):
            need = np.unique(need)
            self._split(need)
            have[need] = True
        return (Boxes(tuple(a[gids, 0] for a in lo), tuple(a[gids, 0] for a in hi)),
                Boxes(tuple(a[gids, 1] for a in lo), tuple(a[gids, 1] for a in hi)),
                vmax[gids])

    def _split(self, gids: np.ndarray) -> None:
        lo, hi, vmax, _ = self._halves  # type: ignore[misc]
        pix = self.pixels(gids)
        tags = self.tags_flat[pix].astype(np.float64)  # (n, S*S, L)
        heat = self.heat_flat[pix]
        t_lo, t_hi = tags.min(axis=1), tags.max(axis=1)
        axis = np.argmax(t_hi - t_lo, axis=1)
        coord = np.take_along_axis(tags, axis[:, None, None], axis=2)[..., 0]
        mid = np.take_along_axis((t_lo + t_hi) / 2, axis[:, None], axis=1)
        upper = coord > mid
        for half, mask in enumerate((~upper, upper)):
            for j in range(self.dim):
                lo[j][gids, half] = np.where(mask, tags[..., j], np.inf).min(axis=1)
                hi[j][gids, half] = np.where(mask, tags[..., j], -np.inf).max(axis=1)
            vmax[gids, half] = np.where(mask, heat, -np.inf).max(axis=1)

    def dead_blocks(self) -> DeadBlocks:
        """Block summaries of the dead tiles, computed once."""
        if self._dead is None:
            self._dead = self._make_dead_blocks()
        return self._dead

    def _make_dead_blocks(self) -> DeadBlocks:
        th, tw = self.grid
        bh, bw = -(-th // BLOCK), -(-tw // BLOCK)
        ids = np.full((bh * BLOCK, bw * BLOCK), -1, np.int64)
        ids[:th, :tw] = np.arange(th * tw).reshape(th, tw)
        members = ids.reshape(bh, BLOCK, bw, BLOCK).transpose(0, 2, 1, 3).reshape(bh * bw, -1)
        k = self.max.shape[0]
        gid = np.maximum(members, 0)[None] + (np.arange(k) * self.tiles_per_joint)[:, None, None]
        tile_max = self.max_flat[gid]  # (K, NB, B*B)
        dead = (members >= 0)[None] & (tile_max <= 0)
        block_max = np.where(dead, tile_max, -np.inf).max(axis=2).astype(np.float32)
        boxes = self.boxes()
        lo = tuple(np.where(dead, a[gid], np.inf).min(axis=2).ravel() for a in boxes.lo)
        hi = tuple(np.where(dead, a[gid], -np.inf).max(axis=2).ravel() for a in boxes.hi)
        return DeadBlocks(block_max.ravel(), Boxes(lo, hi), members)
