"""Do dead tiles (max <= 0) beat the best live answer of a refine query?

``argmax.penalised_argmax`` first finds the best score B over the live tiles (max > 0). Pixels
of dead tiles score at most their value <= 0, so they matter only when B <= 0 (and only when
the answer so far has a value > 0: otherwise refine ignores it anyway). The official answer is
a dead pixel when one scores higher than B, or equal with a smaller raster index; it then has a
value <= 0 and is not used by refine, so ``dead_beats`` only tells "beaten or not".

The search descends a pyramid over the dead tiles: blocks of BLOCK x BLOCK cells, cells of
CELL x CELL tiles (``tiles.cell_boxes``), tiles; a (query, item) pair survives a level when the
item's largest dead value minus the penalty bound of its tag box reaches the query's best.
Exact scores at a few pixels spread over each surviving block come first (a dead region whose
tags are close to c settles its query there), then at each surviving tile's centre pixel, then
at every pixel of the tiles left (dead tiles reaching this far are seldom shared by queries:
evaluating them costs less than tighter bounds would).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bupose.decoders.bounds import groups, penalised_scores, ragged, tile_best, upper_score
from bupose.decoders.tiles import CELL, PAD, Boxes, MapTiles

if TYPE_CHECKING:
    from bupose.decoders.livesearch import Queries

BLOCK = PAD // CELL  # cells per block side
CHUNK = 1 << 18


@dataclass(frozen=True)
class Pyramid:
    """Summaries of the dead tiles (every joint).

    Attributes:
        block_max: (K * NB,) float32 largest dead-tile max per block (-inf: none);
        block_boxes: frame tag boxes of the blocks; block_cells: (NB, BLOCK**2) local cell ids;
        samples: (NB, 9) local pixel ids (y * w + x) spread over each block.
        cell_max: (K * NC,) float32; cell_boxes: frame boxes of the cells; cell_tiles:
            (NC, CELL**2) local tile ids, -1 outside the tile grid.
        member: (K * T,) bool, the dead tiles.
    """

    block_max: np.ndarray
    block_boxes: Boxes
    block_cells: np.ndarray
    samples: np.ndarray
    cell_max: np.ndarray
    cell_boxes: Boxes
    cell_tiles: np.ndarray
    member: np.ndarray


def _groups_of(rows: int, cols: int, side: int) -> np.ndarray:
    """(rows/side * cols/side, side**2) ids of a rows x cols grid, grouped by side x side."""
    ids = np.arange(rows * cols).reshape(rows // side, side, cols // side, side)
    return ids.transpose(0, 2, 1, 3).reshape(-1, side * side)


def _reduce(boxes: Boxes, members: np.ndarray, k: int, count: int) -> Boxes:
    """Boxes of groups of items: members (G, m) local ids, items per joint ``count``."""
    gid = members[None] + (np.arange(k) * count)[:, None, None]
    lo = tuple(a[gid].min(axis=2).ravel() for a in boxes.lo)
    hi = tuple(a[gid].max(axis=2).ravel() for a in boxes.hi)
    return Boxes(lo, hi, boxes.metric)


def _samples(tiles: MapTiles, blocks: int, cols: int) -> np.ndarray:
    """(blocks, 9) local pixel ids on a 3 x 3 grid inside each block."""
    side = PAD * tiles.size
    by, bx = np.divmod(np.arange(blocks), cols)
    offsets = np.array([side // 6, side // 2, side - 1 - side // 6])
    y = np.minimum((by * side)[:, None, None] + offsets[None, :, None], tiles.h - 1)
    x = np.minimum((bx * side)[:, None, None] + offsets[None, None, :], tiles.w - 1)
    return (y * tiles.w + x).reshape(blocks, -1)


def pyramid(tiles: MapTiles) -> Pyramid:
    """The Pyramid of the dead tiles (built once per MapTiles)."""
    cached = tiles.cache.get("dead_pyramid")
    if isinstance(cached, Pyramid):
        return cached
    (th, tw), (ch, cw), k = tiles.grid, tiles.cell_grid, tiles.max.shape[0]
    member = tiles.max_flat <= 0
    tile_max = np.full((k, ch * CELL, cw * CELL), -np.inf, np.float32)
    tile_max[:, :th, :tw] = np.where(member, tiles.max_flat, -np.inf).reshape(k, th, tw)
    local = np.full((ch * CELL, cw * CELL), -1, np.int64)
    local[:th, :tw] = np.arange(th * tw).reshape(th, tw)
    grouped = _groups_of(ch * CELL, cw * CELL, CELL)
    cell_max = tile_max.reshape(k, -1)[:, grouped].max(axis=2)
    block_cells = _groups_of(ch, cw, BLOCK)
    cell_boxes = tiles.cell_boxes()
    result = Pyramid(
        cell_max[:, block_cells].max(axis=2).ravel(),
        _reduce(cell_boxes, block_cells, k, ch * cw), block_cells,
        _samples(tiles, len(block_cells), cw // BLOCK), cell_max.ravel(), cell_boxes,
        local.ravel()[grouped], member,
    )
    tiles.cache["dead_pyramid"] = result
    return result


def _keep(qs: Queries, q: np.ndarray, vmax: np.ndarray, boxes: Boxes) -> np.ndarray:
    """(E,) bound of (query, item) pairs reaches the query's best score."""
    return upper_score(vmax, boxes, tuple(c[q] for c in qs.frame)) >= qs.best[q]


def _expand(q: np.ndarray, parent: np.ndarray, members: np.ndarray, child_count: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """(query, parent) pairs -> (query, child) pairs. Global ids: parent = joint * len(members)
    + local; child = joint * child_count + members[local] (-1 members dropped)."""
    count = len(members)
    child = members[parent % count]
    gid = (child + ((parent // count) * child_count)[:, None]).ravel()
    valid = child.ravel() >= 0
    return np.repeat(q, members.shape[1])[valid], gid[valid]


Visit = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _descend(tiles: MapTiles, qs: Queries, pyr: Pyramid, check: np.ndarray, on_samples: Visit,
             on_tiles: Callable[[np.ndarray, np.ndarray], None]) -> None:
    """Walk blocks -> cells -> tiles for the queries ``check``: the exact scores at the
    samples of each surviving block go to ``on_samples(q, pix, scores)`` (which returns the
    pairs to go on with), then the surviving (query, dead tile) pairs to ``on_tiles``."""
    nb = len(pyr.block_cells)
    ch, cw = tiles.cell_grid
    for sel in groups(np.full(len(check), nb), CHUNK):
        i, gb = ragged(qs.joints[check[sel]] * nb, np.full(len(sel), nb))
        q = check[sel[i]]
        keep = _keep(qs, q, pyr.block_max[gb], pyr.block_boxes.take(gb))
        q, gb = q[keep], gb[keep]
        pix = pyr.samples[gb % nb] + ((gb // nb) * (tiles.h * tiles.w))[:, None]
        scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[q][:, None])
        keep = on_samples(q, pix, scores)
        q, gb = q[keep], gb[keep]
        step = max(1, CHUNK // (BLOCK * BLOCK * CELL * CELL))
        for s in range(0, len(q), step):
            qc, gc = _expand(q[s : s + step], gb[s : s + step], pyr.block_cells, ch * cw)
            keep = _keep(qs, qc, pyr.cell_max[gc], pyr.cell_boxes.take(gc))
            qt, gid = _expand(qc[keep], gc[keep], pyr.cell_tiles, tiles.tiles_per_joint)
            vmax = tiles.max_flat[gid]
            keep = pyr.member[gid] & (vmax >= qs.best[qt])
            on_tiles(qt[keep], gid[keep])


def _beats(scores: np.ndarray, pix: np.ndarray, best: np.ndarray, flat: np.ndarray
           ) -> np.ndarray:
    """Elementwise: the pixel is the better official answer (higher, or equal and earlier)."""
    return (scores > best) | ((scores == best) & (pix < flat))


def dead_beats(tiles: MapTiles, qs: Queries, check: np.ndarray) -> np.ndarray:
    """(D,) bool: which of the queries ``check`` have a dead-tile pixel the official argmax
    would pick instead of their answer (``qs.best`` / ``qs.flat``, left unchanged)."""
    beaten = np.zeros(len(qs.joints), bool)

    def on_samples(q: np.ndarray, pix: np.ndarray, scores: np.ndarray) -> np.ndarray:
        hit = _beats(scores, pix, qs.best[q][:, None], qs.flat[q][:, None]).any(axis=1)
        beaten[q[hit]] = True
        return ~beaten[q]

    def on_tiles(q: np.ndarray, gid: np.ndarray) -> None:
        keep = ~beaten[q]
        q, gid = q[keep], gid[keep]
        pix = tiles.witness(gid)
        scores = penalised_scores(tiles.heat_flat[pix], tiles.tags_flat[pix], qs.c32[q])
        beaten[q[_beats(scores, pix, qs.best[q], qs.flat[q])]] = True
        keep = ~beaten[q]
        q, gid = q[keep], gid[keep]
        step = max(1, CHUNK // tiles.size**2)
        for s in range(0, len(q), step):
            qq = q[s : s + step]
            scores, pix = tile_best(tiles, gid[s : s + step], qs.c32[qq])
            beaten[qq[_beats(scores, pix, qs.best[qq], qs.flat[qq])]] = True

    _descend(tiles, qs, pyramid(tiles), check, on_samples, on_tiles)
    return beaten[check]
