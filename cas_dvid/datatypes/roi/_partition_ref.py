"""Plain twin of ``partition``: ``roi.go``'s Partition and SimplePartition, statement by statement.

Spans are lists ``[z, y, x0, x1]`` in DVID's stored order; subvolumes are the
dicts DVID's JSON encoder would write. Kept deliberately close to the Go
(names, loop shapes, the quirks) so it can be read side by side with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Span = Sequence[int]


class _Panic(Exception):
    """Go's index-out-of-range panic in addSubvolumes (no subvolume yet to extend)."""


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _go_rem(a: int, b: int) -> int:
    return a - b * _go_div(a, b)


class _Result:
    def __init__(self, min_z: int, max_z: int) -> None:
        self.total = 0
        self.active = 0
        self.min_chunk = [0, 0, min_z]
        self.max_chunk = [0, 0, max_z]
        self.subvolumes: list[dict[str, Any]] = []

    def extend_dim(self, dim: int, val: int) -> None:
        self.min_chunk[dim] = min(self.min_chunk[dim], val)
        self.max_chunk[dim] = max(self.max_chunk[dim], val)

    def as_dict(self) -> dict[str, Any]:
        return {
            "NumTotalBlocks": self.total,
            "NumActiveBlocks": self.active,
            "NumSubvolumes": len(self.subvolumes),
            "ROI": {"MinChunk": self.min_chunk, "MaxChunk": self.max_chunk},
            "Subvolumes": self.subvolumes,
        }


def _y_range(blocks: list[Span]) -> tuple[int, int, bool]:
    if not blocks:
        return 0, 0, False
    return min(b[1] for b in blocks), max(b[1] for b in blocks), True


def _x_range(blocks: list[Span], min_y: int, max_y: int) -> tuple[int, int, list[Span]]:
    actives = [b for b in blocks if min_y <= b[1] <= max_y]
    min_x = min((b[2] for b in actives), default=(1 << 31) - 1)
    max_x = max((b[3] for b in actives), default=-(1 << 31))
    return min_x, max_x, actives


def _find_actives(blocks: list[Span], min_x: int, max_x: int) -> int:
    n = 0
    for b in blocks:
        if b[2] > max_x or b[3] < min_x:
            continue
        n += min(max_x, b[3]) - max(min_x, b[2]) + 1
    return n


def _find_x_holes(blocks: list[Span], min_x: int, max_x: int) -> tuple[int, int, bool]:
    used = [False] * (max_x - min_x + 1)
    for b in blocks:
        if b[2] > max_x or b[3] < min_x:
            continue
        for x in range(max(min_x, b[2]), min(max_x, b[3]) + 1):
            used[x - min_x] = True
    best_beg = best_end = hole_beg = hole_end = 0
    hole_size = best_size = 0
    in_hole = False
    for x in range(min_x, max_x + 1):
        if not used[x - min_x]:
            if in_hole:
                hole_end = x
                hole_size += 1
            else:
                in_hole, hole_beg, hole_end, hole_size = True, x, x, 1
        else:
            in_hole = False
        if hole_size > best_size:
            best_size, best_beg, best_end = hole_size, hole_beg, hole_end
    return best_beg, best_end, best_size > 0


def _total(mn: Sequence[int], mx: Sequence[int]) -> int:
    return (mx[0] - mn[0] + 1) * (mx[1] - mn[1] + 1) * (mx[2] - mn[2] + 1)


def _subvolume(
    mn: list[int], mx: list[int], bs: Sequence[int], total: int, active: int
) -> dict[str, Any]:
    return {
        "MinPoint": [mn[i] * bs[i] for i in range(3)],
        "MaxPoint": [(mx[i] + 1) * bs[i] - 1 for i in range(3)],
        "MinChunk": mn,
        "MaxChunk": mx,
        "TotalBlocks": total,
        "ActiveBlocks": active,
    }


def _add_subvolumes(
    blocks: list[Span], lz: tuple[int, int], res: _Result, batch: int, bs: Sequence[int]
) -> None:
    min_y, max_y, found = _y_range(blocks)
    if not found:
        return
    res.extend_dim(1, min_y)
    res.extend_dim(1, max_y)
    yleft = _go_rem(max_y - min_y + 1, batch)
    beg_y = min_y
    while beg_y <= max_y:
        end_y = beg_y + batch - 1
        if yleft > 0:
            end_y, yleft = end_y + 1, yleft - 1
        min_x, max_x, actives = _x_range(blocks, beg_y, end_y)
        if actives:
            res.extend_dim(0, min_x)
            res.extend_dim(0, max_x)
            xleft = _go_rem(max_x - min_x + 1, batch)
            beg_x = min_x
            while beg_x <= max_x:
                end_x = beg_x + batch - 1
                if xleft > 0:
                    end_x, xleft = end_x + 1, xleft - 1
                mn, mx = [beg_x, beg_y, lz[0]], [end_x, end_y, lz[1]]
                hole_beg, hole_end, hole = _find_x_holes(actives, beg_x, end_x)
                n_active = n_total = 0
                if hole:
                    if hole_beg - 1 >= beg_x:
                        if not res.subvolumes:
                            raise _Panic
                        sv = res.subvolumes[-1]
                        last = [hole_beg - 1, end_y, lz[1]]
                        sv["MaxPoint"] = [last[i] * bs[i] for i in range(3)]
                        sv["MaxChunk"] = last
                        n_total = _total(mn, last)
                        n_active = _find_actives(actives, beg_x, hole_beg - 1)
                        sv["TotalBlocks"] += n_total
                        sv["ActiveBlocks"] += n_active
                    beg_x = hole_end + 1
                else:
                    n_total = _total(mn, mx)
                    n_active = _find_actives(actives, beg_x, end_x)
                    res.subvolumes.append(_subvolume(mn, mx, bs, n_total, n_active))
                    beg_x = end_x + 1
                res.active += n_active
                res.total += n_total
        beg_y = end_y + 1


def _add_subvolumes_grid(
    blocks: list[Span], lz: tuple[int, int], res: _Result, batch: int, bs: Sequence[int]
) -> None:
    min_y, max_y, found = _y_range(blocks)
    if not found:
        return
    res.extend_dim(1, min_y)
    res.extend_dim(1, max_y)
    yleft = _go_rem(max_y - min_y + 1, batch)
    beg_y = min_y - _go_div(yleft, 2)
    end_y = max_y + (yleft - _go_div(yleft, 2))
    for y0 in range(beg_y, end_y + 1, batch):
        y1 = y0 + batch - 1
        min_x, max_x, actives = _x_range(blocks, y0, y1)
        if not actives:
            continue
        res.extend_dim(0, min_x)
        res.extend_dim(0, max_x)
        xleft = _go_rem(max_x - min_x + 1, batch)
        beg_x = min_x - _go_div(xleft, 2)
        end_x = max_x + (xleft - _go_div(xleft, 2))
        for x0 in range(beg_x, end_x + 1, batch):
            mn, mx = [x0, y0, lz[0]], [x0 + batch - 1, y1, lz[1]]
            n_total = _total(mn, mx)
            n_active = _find_actives(actives, x0, x0 + batch - 1)
            if n_active > 0:
                res.subvolumes.append(_subvolume(mn, mx, bs, n_total, n_active))
            res.active += n_active
            res.total += n_total


def partition(
    spans: Sequence[Span],
    block_size: Sequence[int],
    batch: int,
    optimized: bool,
    min_z: int,
    max_z: int,
) -> dict[str, Any]:
    """``Data.Partition`` (optimized) or ``Data.SimplePartition``; ``_Panic`` where Go panics."""
    stored = sorted({tuple(s) for s in spans})
    zleft = _go_rem(max_z - min_z + 1, batch)
    beg_z = min_z if optimized else min_z - _go_div(zleft, 2)
    end_z = beg_z + batch - 1
    add = _add_subvolumes if optimized else _add_subvolumes_grid
    res = _Result(min_z, max_z)
    layer: list[Span] = []
    for span in stored:
        if span[0] > end_z:
            add(layer, (beg_z, end_z), res, batch, block_size)
            beg_z, end_z = end_z + 1, end_z + batch
            if optimized and zleft > 0:
                end_z, zleft = end_z + 1, zleft - 1
            layer = []
        layer.append(span)
    if layer:
        add(layer, (beg_z, end_z), res, batch, block_size)
    return res.as_dict()
