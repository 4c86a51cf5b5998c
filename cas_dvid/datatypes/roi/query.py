"""ROI voxel queries: DVID's ``POST ptquery`` and ``GET mask/0_1_2/{size}/{offset}``.

Both take spans in block coordinates and a block size in voxels, ``x, y, z``
order as DVID's ``BlockSize`` setting. Plain twins live in ``_reference``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.roi import _gojson
from cas_dvid.datatypes.roi._gojson import BytesLike
from cas_dvid.datatypes.roi.spans import as_spans, merge_spans
from cas_dvid.errors import InvalidInputError

_BIAS = 1 << 31


def check_block_size(block_size_xyz: Sequence[int]) -> tuple[int, int, int]:
    """``(bx, by, bz)`` as ints; ``InvalidInputError`` unless three positive sizes."""
    if len(block_size_xyz) != 3 or any(int(b) < 1 for b in block_size_xyz):
        raise InvalidInputError(f"expected a block size of 3 positive ints, got {block_size_xyz}")
    bx, by, bz = (int(b) for b in block_size_xyz)
    return bx, by, bz


def parse_points_json(body: BytesLike | str) -> npt.NDArray[np.int64]:
    """Points of a ptquery body ``[[x, y, z], ...]`` as an ``(n, 3)`` int64 array, ``x, y, z``.

    Errors use Go's unmarshal wording with no prefix, as DVID's ptquery does.
    """
    return _gojson.int32_tuples(_gojson.loads(body), 3, "dvid.Point3d", "point [x, y, z]")


def inclusions_json(inside: npt.ArrayLike) -> bytes:
    """DVID's ptquery answer: ``[true,false,...]`` (``[]`` when there are no points)."""
    return json.dumps(np.asarray(inside, dtype=bool).tolist(), separators=(",", ":")).encode()


def points_in_roi(
    spans: npt.ArrayLike, points_xyz: npt.ArrayLike, block_size_xyz: Sequence[int]
) -> npt.NDArray[np.bool_]:
    """Whether each voxel point lies in a block of the ROI; one bool per point, in order.

    A point's block is ``floor(p / block_size)`` per axis (negatives included),
    as DVID's ``Point3d.Chunk``. Vectorised: two ``searchsorted`` passes over
    the merged spans, so cost is O((n + m) log m) for n points and m spans.
    """
    size = np.asarray(check_block_size(block_size_xyz), dtype=np.int64)
    pts = np.asarray(points_xyz, dtype=np.int64).reshape(-1, 3)
    blocks = pts // size
    in_i32 = np.asarray(((blocks >= -_BIAS) & (blocks < _BIAS)).all(axis=1), dtype=np.bool_)
    blocks = np.where(in_i32[:, None], blocks, 0)
    merged = merge_spans(spans)
    if len(merged) == 0 or len(pts) == 0:
        return np.zeros(len(pts), dtype=bool)
    span_rows = _row_key(merged[:, 0], merged[:, 1])
    rows, row_of_span = np.unique(span_rows, return_inverse=True)
    span_keys = (row_of_span.astype(np.int64) << 33) + (merged[:, 2] + _BIAS)
    pt_rows = _row_key(blocks[:, 2], blocks[:, 1])
    r = np.minimum(np.searchsorted(rows, pt_rows), len(rows) - 1)
    row_hit = rows[r] == pt_rows
    pt_keys = (r.astype(np.int64) << 33) + (blocks[:, 0] + _BIAS)
    i = np.searchsorted(span_keys, pt_keys, side="right") - 1
    i_ok = np.maximum(i, 0)
    same_row = row_of_span[i_ok] == r
    inside: npt.NDArray[np.bool_] = in_i32 & row_hit & (i >= 0) & same_row
    inside &= blocks[:, 0] <= merged[i_ok, 3]
    return inside


def _row_key(z: npt.NDArray[np.int64], y: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """One sortable uint64 per (z, y) row of int32 block coordinates."""
    zz = (z + _BIAS).astype(np.uint64)
    yy = (y + _BIAS).astype(np.uint64)
    return (zz << np.uint64(32)) | yy


def mask_block_range(
    offset_xyz: Sequence[int],
    size_xyz: Sequence[int],
    block_size_xyz: Sequence[int],
    *,
    dvid_truncation: bool = True,
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """First and last block (``x, y, z``, inclusive) whose spans a mask request draws.

    DVID's ``GetMask`` divides with Go's ``/``, which truncates toward zero, so
    for a box starting at a negative, unaligned voxel it skips the box's first
    block layer on that axis (those voxels read 0 though inside the ROI).
    ``dvid_truncation=False`` uses floor division instead (the true block).
    """
    bs = check_block_size(block_size_xyz)
    first = []
    last = []
    for v, n, b in zip(offset_xyz, size_xyz, bs, strict=True):
        end = int(v) + int(n) - 1
        first.append(_trunc_div(int(v), b) if dvid_truncation else int(v) // b)
        last.append(_trunc_div(end, b) if dvid_truncation else end // b)
    return (first[0], first[1], first[2]), (last[0], last[1], last[2])


def _trunc_div(a: int, b: int) -> int:
    """Go's integer ``/``: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def roi_mask(
    spans: npt.ArrayLike,
    block_size_xyz: Sequence[int],
    offset_xyz: Sequence[int],
    size_xyz: Sequence[int],
    *,
    dvid_truncation: bool = True,
) -> npt.NDArray[np.uint8]:
    """Make the ``mask/0_1_2`` volume: uint8 ZYX, 1 for voxels in ROI blocks, 0 elsewhere.

    Args:
        spans: the ROI (any order; overlaps fine).
        block_size_xyz: the ROI's block size.
        offset_xyz: first voxel of the box.
        size_xyz: box size in voxels (0 on an axis gives an empty array).
        dvid_truncation: reproduce DVID's truncating division (see ``mask_block_range``).

    Raises:
        InvalidInputError: a negative size or a bad block size.

    """
    if len(size_xyz) != 3 or any(int(n) < 0 for n in size_xyz):
        raise InvalidInputError(f"expected a size of 3 non-negative ints, got {size_xyz}")
    bs = np.asarray(check_block_size(block_size_xyz), dtype=np.int64)
    nx, ny, nz = (int(n) for n in size_xyz)
    if nx * ny * nz == 0:
        return np.zeros((nz, ny, nx), dtype=np.uint8)
    (fx, fy, fz), (lx, ly, lz) = mask_block_range(
        offset_xyz, size_xyz, block_size_xyz, dvid_truncation=dvid_truncation
    )
    off = np.asarray(offset_xyz, dtype=np.int64)
    lo = off // bs
    hi = (off + np.array([nx, ny, nz]) - 1) // bs
    # DVID draws a span whole (clipped to the box) when it meets its block range, so
    # a span reaching past a skipped first x block still draws that block's voxels;
    # skipped first y and z layers are whole rows, which no drawn span reaches.
    arr = as_spans(spans)
    z, y, x0, x1 = arr.T
    drawn = (z >= fz) & (z <= lz) & (y >= fy) & (y <= ly) & (x1 >= fx) & (x0 <= lx)
    occ = _occupancy(arr[drawn], lo, hi)
    # PERF: expand blocks to voxels by repeating x, then y, on the small per-z-block
    # grid, and only then z, so the big copy is whole planes.
    reps = [_voxels_per_block(int(off[a]), n, int(bs[a])) for a, n in enumerate((nx, ny, nz))]
    plane = np.repeat(np.repeat(occ, reps[1], axis=1), reps[0], axis=2)
    mask: npt.NDArray[np.uint8] = np.repeat(plane.view(np.uint8), reps[2], axis=0)
    return mask


def _voxels_per_block(start: int, n: int, b: int) -> npt.NDArray[np.int64]:
    """How many of the voxels ``start .. start + n - 1`` fall in each block they touch."""
    first, last = start // b, (start + n - 1) // b
    edges = np.arange(first, last + 2, dtype=np.int64) * b
    clipped = np.clip(edges, start, start + n)
    counts: npt.NDArray[np.int64] = clipped[1:] - clipped[:-1]
    return counts


def _occupancy(
    spans: npt.NDArray[np.int64], lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """Bool ZYX grid of the blocks ``lo..hi`` (x, y, z, inclusive) that some span covers."""
    z, y, x0, x1 = spans.T
    keep = (z >= lo[2]) & (z <= hi[2]) & (y >= lo[1]) & (y <= hi[1])
    keep &= (x1 >= lo[0]) & (x0 <= hi[0])
    z, y = z[keep] - lo[2], y[keep] - lo[1]
    a = np.maximum(x0[keep], lo[0]) - lo[0]
    b = np.minimum(x1[keep], hi[0]) - lo[0] + 1
    shape = (int(hi[2] - lo[2] + 1), int(hi[1] - lo[1] + 1), int(hi[0] - lo[0] + 2))
    diff = np.zeros(shape, dtype=np.int32)
    np.add.at(diff, (z, y, a), 1)
    np.add.at(diff, (z, y, b), -1)
    return np.cumsum(diff, axis=2)[:, :, :-1] > 0
