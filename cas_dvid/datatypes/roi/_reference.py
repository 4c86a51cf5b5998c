"""Plain Python twins of the ROI kernels: line-by-line ports of DVID's Go, for tests and benches.

Each function follows ``roi.go`` / ``dvid/point.go`` statement by statement,
with lists of ints and no numpy tricks, so a reader can check it against
the Go. The fast kernels in ``spans`` and ``query`` are tested against these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

Span = list[int]


def _go_div(a: int, b: int) -> int:
    """Go's ``/`` on ints: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def chunk(p: int, size: int) -> int:
    """``Point3d.Chunk`` on one axis: Go's negative-aware block index."""
    return _go_div(p - size + 1, size) if p < 0 else _go_div(p, size)


def normalize(spans: Sequence[Sequence[int]]) -> list[Span]:
    """``dvid.Spans.Normalize``: sort, then merge adjacent or overlapping spans of a row."""
    if not spans:
        return []
    norm = sorted([list(s) for s in spans])
    n = 0
    for o in range(1, len(norm)):
        cur, nxt = norm[n], norm[o]
        if cur[0] != nxt[0] or cur[1] != nxt[1] or cur[3] + 1 < nxt[2]:
            n += 1
            norm[n] = list(nxt)
        elif nxt[3] > cur[3]:
            cur[3] = nxt[3]
    return norm[: n + 1]


def _less_chunk(span: Span, block: tuple[int, int, int]) -> bool:
    """``Span.LessChunkPoint3d``; ``block`` is (x, y, z)."""
    if span[0] != block[2]:
        return span[0] < block[2]
    if span[1] != block[1]:
        return span[1] < block[1]
    return span[3] < block[0]


def _includes(span: Span, block: tuple[int, int, int]) -> bool:
    return span[0] == block[2] and span[1] == block[1] and span[2] <= block[0] <= span[3]


def point_query(
    spans: Sequence[Sequence[int]], points_xyz: Sequence[Sequence[int]], block_size: Sequence[int]
) -> list[bool]:
    """``Data.PointQuery``: sort the points' blocks by z, y, x and walk the sorted spans once."""
    stored = sorted({tuple(s) for s in spans})
    blocks = [tuple(chunk(int(p[a]), int(block_size[a])) for a in range(3)) for p in points_xyz]
    order = sorted(range(len(blocks)), key=lambda i: (blocks[i][2], blocks[i][1], blocks[i][0]))
    out = [False] * len(blocks)
    cur = 0
    for i in order:
        pt = blocks[i]
        while cur < len(stored) and _less_chunk(list(stored[cur]), (pt[0], pt[1], pt[2])):
            cur += 1
        out[i] = cur < len(stored) and _includes(list(stored[cur]), (pt[0], pt[1], pt[2]))
    return out


def _voxel_range(bs: int, beg_block: int, end_block: int, beg: int, end: int) -> tuple[int, int]:
    v0 = max(beg_block * bs, beg)
    v1 = min((end_block + 1) * bs - 1, end)
    return v0 - beg, v1 - beg


def get_mask(
    spans: Sequence[Sequence[int]],
    block_size: Sequence[int],
    offset: Sequence[int],
    size: Sequence[int],
) -> npt.NDArray[np.uint8]:
    """``Data.GetMask``, truncating division and all; the box is ``offset``/``size`` in x, y, z."""
    pt0 = [int(v) for v in offset]
    pt1 = [int(o) + int(n) - 1 for o, n in zip(offset, size, strict=True)]
    bs = [int(b) for b in block_size]
    mn = [_go_div(pt0[a], bs[a]) for a in range(3)]
    mx = [_go_div(pt1[a], bs[a]) for a in range(3)]
    data = np.zeros((int(size[2]), int(size[1]), int(size[0])), dtype=np.uint8)
    for z, y, x0, x1 in sorted({tuple(s) for s in spans}):
        if z < mn[2]:
            continue
        if z > mx[2]:
            break
        if y < mn[1] or y > mx[1] or x1 < mn[0] or x0 > mx[0]:
            continue
        vx0, vx1 = _voxel_range(bs[0], x0, x1, pt0[0], pt1[0])
        vy0, vy1 = _voxel_range(bs[1], y, y, pt0[1], pt1[1])
        vz0, vz1 = _voxel_range(bs[2], z, z, pt0[2], pt1[2])
        if vx0 <= vx1 and vy0 <= vy1 and vz0 <= vz1:
            data[vz0 : vz1 + 1, vy0 : vy1 + 1, vx0 : vx1 + 1] = 1
    return data
