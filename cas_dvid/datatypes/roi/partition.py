"""DVID's ``GET partition?batchsize=N[&optimized=true]``: cut a ROI into subvolumes of blocks.

Same control flow as ``roi.go`` (``SimplePartition``/``addSubvolumesGrid`` by
default, ``Partition``/``addSubvolumes`` when optimized), with the per-span
scans done by numpy. ``_partition_ref`` is the statement-by-statement twin.

The algorithm as DVID runs it, spans in stored order (``sort_unique_spans``;
overlapping spans are *not* merged, so their blocks count twice):

- Z layers of ``batchsize`` blocks. Simple: the first layer starts at
  ``MinZ - (dz % b) // 2`` (dz = MaxZ - MinZ + 1). Optimized: it starts at
  ``MinZ`` and each later layer is one block taller while ``dz % b`` lasts.
  A span whose z is past the current layer closes it and opens the next one,
  **one layer per span**: after a z gap wider than a layer, spans land in a
  layer whose z range does not contain them, and layers drift from there.
- Simple, per layer: y rows of ``b`` blocks centred on the layer's y extent
  (padded by ``dy % b`` split low/high), and per row x cells of ``b`` centred
  the same way on the row's x extent. A cell with active blocks becomes a
  ``b``-cube subvolume; every cell's blocks count in ``NumTotalBlocks``,
  empty cells included.
- Optimized, per layer: y rows start at the layer's min y, the first
  ``dy % b`` rows one block taller; x cells likewise from the row's min x. A
  cell with any x column that no active span of the row covers is not emitted:
  the part before its first-longest hole is added to the *previous*
  subvolume (its ``MaxChunk`` becomes that part's end, and its ``MaxPoint``
  becomes that block's *min* voxel, a DVID bug kept here), and the next cell
  starts after the hole. If there is no previous subvolume DVID panics
  (index out of range) and answers 500: ``PartitionPanicError``.
- ``ROI.MinChunk``/``MaxChunk`` x and y start at 0 and grow to the extents
  seen, so they include 0; z is the instance's ``MinZ``/``MaxZ`` (2147483647 /
  -2147483648 for an ROI never written).

NOTE: ``MinZ``/``MaxZ`` are instance properties in DVID, set by the last POST
at any version; pass them as ``z_range`` to match DVID when partitioning an
older version. By default they are the spans' own z extent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.roi.query import check_block_size
from cas_dvid.datatypes.roi.spans import check_spans, sort_unique_spans
from cas_dvid.errors import CasDvidError, InvalidInputError

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_ATOI = re.compile(r"[+-]?[0-9]+")
I64 = npt.NDArray[np.int64]


class PartitionPanicError(CasDvidError):
    """DVID's optimized partition panics (HTTP 500) on this ROI; see the module notes."""

    http_status = "500 Internal Server Error"


def parse_batchsize(value: str | None) -> int:
    """Read the ``batchsize`` query value as Go's ``strconv.Atoi`` reads it.

    Raises:
        InvalidInputError: DVID's ``Error reading batchsize query string: ...``
            for text Atoi rejects (a missing value reads as ``""``); and, where
            DVID would divide by zero, loop forever or wrap int32, for values
            outside 1..2147483647.

    """
    text = value or ""
    if not _ATOI.fullmatch(text):
        raise InvalidInputError(
            f'Error reading batchsize query string: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    n = int(text)
    if not -(1 << 63) <= n < (1 << 63):
        raise InvalidInputError(
            "Error reading batchsize query string: "
            f'strconv.Atoi: parsing "{text}": value out of range'
        )
    if not 1 <= n <= _I32_MAX:
        raise InvalidInputError(f"expected batchsize in 1..{_I32_MAX}, got {n}")
    return n


def is_optimized(value: str | None) -> bool:
    """DVID's test of the ``optimized`` query value: exactly ``true`` or ``on``."""
    return value in ("true", "on")


def partition_json(result: dict[str, Any]) -> bytes:
    """Encode as DVID writes it: ``json.MarshalIndent(v, "", "    ")``, no final newline."""
    return json.dumps(result, indent=4).encode()


def _go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _go_rem(a: int, b: int) -> int:
    return a - b * _go_div(a, b)


@dataclass(slots=True)
class _Result:
    min_chunk: list[int]
    max_chunk: list[int]
    total: int = 0
    active: int = 0
    subvolumes: list[dict[str, Any]] = field(default_factory=list)

    def extend_dim(self, dim: int, lo: int, hi: int) -> None:
        self.min_chunk[dim] = min(self.min_chunk[dim], lo)
        self.max_chunk[dim] = max(self.max_chunk[dim], hi)


@dataclass(frozen=True, slots=True)
class _Row:
    """The active spans of one y row of cells, as coverage counts over ``min_x..max_x``."""

    min_x: int
    max_x: int
    prefix: I64  # prefix[i] = blocks (with multiplicity) in min_x .. min_x + i - 1
    used: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, x0: I64, x1: I64) -> _Row:
        min_x, max_x = int(x0.min()), int(x1.max())
        n = max_x - min_x + 1
        diff = np.bincount(x0 - min_x, minlength=n + 1) - np.bincount(
            x1 - min_x + 1, minlength=n + 1
        )
        cover = np.cumsum(diff[:n])
        return cls(min_x, max_x, np.concatenate(([0], np.cumsum(cover))), cover > 0)

    def actives(self, a: I64, b: I64) -> I64:
        """``findActives`` for many x intervals ``a..b`` at once."""
        lo = np.clip(a, self.min_x, self.max_x + 1) - self.min_x
        hi = np.clip(b, self.min_x - 1, self.max_x) - self.min_x + 1
        return np.where(hi > lo, self.prefix[np.maximum(hi, 0)] - self.prefix[lo], 0)

    def first_longest_hole(self, a: int, b: int) -> tuple[int, int] | None:
        """``findXHoles``: the first longest run of uncovered x in ``a..b``, or None."""
        free = np.ones(b - a + 1, dtype=bool)
        lo, hi = max(a, self.min_x), min(b, self.max_x)
        if lo <= hi:
            free[lo - a : hi - a + 1] = ~self.used[lo - self.min_x : hi - self.min_x + 1]
        if not free.any():
            return None
        edges = np.diff(np.concatenate(([0], free.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        k = int(np.argmax(ends - starts))
        return a + int(starts[k]), a + int(ends[k]) - 1


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


def _volume(mn: Sequence[int], mx: Sequence[int]) -> int:
    return (mx[0] - mn[0] + 1) * (mx[1] - mn[1] + 1) * (mx[2] - mn[2] + 1)


def _row(layer: I64, y0: int, y1: int) -> _Row | None:
    sel = layer[(layer[:, 1] >= y0) & (layer[:, 1] <= y1)]
    return _Row.of(sel[:, 2], sel[:, 3]) if len(sel) else None


def _grid_layer(layer: I64, lz: tuple[int, int], res: _Result, b: int, bs: Sequence[int]) -> None:
    """``addSubvolumesGrid``."""
    min_y, max_y = int(layer[:, 1].min()), int(layer[:, 1].max())
    res.extend_dim(1, min_y, max_y)
    yleft = _go_rem(max_y - min_y + 1, b)
    for y0 in range(min_y - _go_div(yleft, 2), max_y + yleft - _go_div(yleft, 2) + 1, b):
        row = _row(layer, y0, y0 + b - 1)
        if row is None:
            continue
        res.extend_dim(0, row.min_x, row.max_x)
        xleft = _go_rem(row.max_x - row.min_x + 1, b)
        x0s = np.arange(row.min_x - _go_div(xleft, 2), row.max_x + xleft - _go_div(xleft, 2) + 1, b)
        actives = row.actives(x0s, x0s + b - 1)
        total = b * b * (lz[1] - lz[0] + 1)
        for x0, n in zip(x0s.tolist(), actives.tolist(), strict=True):
            if n > 0:
                mn, mx = [x0, y0, lz[0]], [x0 + b - 1, y0 + b - 1, lz[1]]
                res.subvolumes.append(_subvolume(mn, mx, bs, total, n))
        res.active += int(actives.sum())
        res.total += total * len(x0s)


def _optimized_layer(
    layer: I64, lz: tuple[int, int], res: _Result, b: int, bs: Sequence[int]
) -> None:
    """``addSubvolumes`` with merge on."""
    min_y, max_y = int(layer[:, 1].min()), int(layer[:, 1].max())
    res.extend_dim(1, min_y, max_y)
    yleft = _go_rem(max_y - min_y + 1, b)
    beg_y = min_y
    while beg_y <= max_y:
        end_y = beg_y + b - 1 + (1 if yleft > 0 else 0)
        yleft = max(yleft - 1, 0)
        row = _row(layer, beg_y, end_y)
        if row is not None:
            res.extend_dim(0, row.min_x, row.max_x)
            _optimized_row(row, (beg_y, end_y), lz, res, b, bs)
        beg_y = end_y + 1


def _optimized_row(
    row: _Row, ly: tuple[int, int], lz: tuple[int, int], res: _Result, b: int, bs: Sequence[int]
) -> None:
    xleft = _go_rem(row.max_x - row.min_x + 1, b)
    beg_x = row.min_x
    while beg_x <= row.max_x:
        end_x = beg_x + b - 1 + (1 if xleft > 0 else 0)
        xleft = max(xleft - 1, 0)
        mn = [beg_x, ly[0], lz[0]]
        hole = row.first_longest_hole(beg_x, end_x)
        if hole is None:
            mx = [end_x, ly[1], lz[1]]
            n_total, n_active = (
                _volume(mn, mx),
                int(row.actives(np.array([beg_x]), np.array([end_x]))[0]),
            )
            res.subvolumes.append(_subvolume(mn, mx, bs, n_total, n_active))
            beg_x = end_x + 1
        else:
            n_total = n_active = 0
            if hole[0] - 1 >= beg_x:
                if not res.subvolumes:
                    raise PartitionPanicError(
                        "DVID's optimized partition panics on this ROI (index out of range [-1]):"
                        f" cell starting at block x={beg_x}, y={ly[0]}, z={lz[0]} has a hole"
                        " and no subvolume precedes it"
                    )
                last = [hole[0] - 1, ly[1], lz[1]]
                n_total = _volume(mn, last)
                n_active = int(row.actives(np.array([beg_x]), np.array([hole[0] - 1]))[0])
                sv = res.subvolumes[-1]
                sv["MaxPoint"] = [last[i] * bs[i] for i in range(3)]  # sic: MinPoint of the block
                sv["MaxChunk"] = last
                sv["TotalBlocks"] += n_total
                sv["ActiveBlocks"] += n_active
            beg_x = hole[1] + 1
        res.active += n_active
        res.total += n_total


def _layers(
    z: I64, min_z: int, batch: int, optimized: bool, max_z: int
) -> list[tuple[int, int, int, int]]:
    """``(first span, end span, layer min z, layer max z)`` per layer, as DVID forms them."""
    zleft = _go_rem(max_z - min_z + 1, batch)
    beg = min_z if optimized else min_z - _go_div(zleft, 2)
    end = beg + batch - 1
    out: list[tuple[int, int, int, int]] = []
    start, n = 0, len(z)
    while True:
        # The first span past this layer closes it; each span opens at most one layer.
        nxt = max(start + 1 if out else start, int(np.searchsorted(z, end, side="right")))
        nxt = min(nxt, n)
        out.append((start, nxt, beg, end))
        if nxt >= n:
            return out
        start, beg, end = nxt, end + 1, end + batch
        if optimized and zleft > 0:
            end, zleft = end + 1, zleft - 1


def partition(
    spans: npt.ArrayLike,
    block_size_xyz: Sequence[int],
    batchsize: int,
    *,
    optimized: bool = False,
    z_range: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """DVID's partition of a ROI into subvolumes, as a dict ready for ``partition_json``.

    Args:
        spans: the ROI's spans (any order; DVID's stored order is used).
        block_size_xyz: the ROI's block size, for ``MinPoint``/``MaxPoint``.
        batchsize: cell edge in blocks (``parse_batchsize`` checks the query value).
        optimized: DVID's ``optimized=true|on`` algorithm instead of the simple grid.
        z_range: DVID's instance ``(MinZ, MaxZ)``; default the spans' own z extent.

    Returns:
        ``{"NumTotalBlocks", "NumActiveBlocks", "NumSubvolumes", "ROI": {"MinChunk",
        "MaxChunk"}, "Subvolumes": [{"MinPoint", "MaxPoint", "MinChunk", "MaxChunk",
        "TotalBlocks", "ActiveBlocks"}, ...]}`` with points and chunks as ``[x, y, z]``.

    Raises:
        InvalidInputError: bad spans, block size or batchsize (< 1).
        PartitionPanicError: where DVID's optimized partition panics.

    """
    if batchsize < 1:
        raise InvalidInputError(f"expected batchsize >= 1, got {batchsize}")
    bs = check_block_size(block_size_xyz)
    stored = sort_unique_spans(check_spans(spans))
    if z_range is None:
        z_range = (
            (int(stored[:, 0].min()), int(stored[:, 0].max()))
            if len(stored)
            else (_I32_MAX, _I32_MIN)
        )
    min_z, max_z = z_range
    res = _Result([0, 0, min_z], [0, 0, max_z])
    if len(stored):
        add = _optimized_layer if optimized else _grid_layer
        for first, end, lz0, lz1 in _layers(stored[:, 0], min_z, batchsize, optimized, max_z):
            if end > first:
                add(stored[first:end], (lz0, lz1), res, batchsize, bs)
    return {
        "NumTotalBlocks": res.total,
        "NumActiveBlocks": res.active,
        "NumSubvolumes": len(res.subvolumes),
        "ROI": {"MinChunk": res.min_chunk, "MaxChunk": res.max_chunk},
        "Subvolumes": res.subvolumes,
    }
