"""Square-tile maxima of one image's heatmaps, shared by the peak finder and the refine search.

Tiles are S x S pixels (S = 8) in raster order; tile t of joint k has the global id
``k * T + t`` (T tiles per joint). The maxima come from one pooled pass over the heatmaps,
edge-padded to multiples of S (repeated pixels change no maximum), in torch when it is loaded
and in numpy otherwise (``pooling.pool_grid``: the same values). ``cache`` holds per-image
structures of the users (the refine search's tag boxes).
"""

from __future__ import annotations

import numpy as np

from bupose.decoders.pooling import pad_edge, pool_grid
from bupose.errors import DataError

TILE = 8


class MapTiles:
    """Tile maxima of one image's (K, h, w) heatmaps, with its (K, h, w, L) tags.

    Attributes:
        heatmaps: (K, h, w) float32; tagmaps: (K, h, w, L) float32 (the inputs).
        max: (K, T) float32 tile maxima.
        grid: (tile rows, tile columns); size: S; dim: L; cache: per-image structures of
            the users.

    Raises:
        DataError: NaN or +inf in the heatmaps (seen through the tile maxima).
    """

    def __init__(self, heatmaps: np.ndarray, tags: np.ndarray, size: int = TILE) -> None:
        k, self.h, self.w = heatmaps.shape
        self.size, self.dim = size, tags.shape[3]
        self.heatmaps, self.tagmaps = heatmaps, tags
        self.grid = (-(-self.h // size), -(-self.w // size))
        th, tw = self.grid
        heat_p = pad_edge(heatmaps, th * size, tw * size)
        pooled = pool_grid(heat_p, th, tw, 1, largest=True)
        self.max = np.ascontiguousarray(pooled[..., 0]).reshape(k, th * tw)
        if np.isnan(self.max).any() or np.isposinf(self.max).any():
            raise DataError("heatmaps contain NaN/inf values; cannot decode")
        self.cache: dict[str, object] = {}
