"""Which blocks a sparse volume covers, and the block-level sparsevol formats.

DVID's rules (labelmap/labelidx.go, labels/index.go, dvid/volumes.go), mirrored here:

- Blocks of a body come from its label index; at ``scale=N`` each block coordinate is
  shifted right by N (floor, so -1 stays -1), duplicates merged.
- ``minx..maxz`` are voxel bounds at the requested scale, inclusive. Blocks are first
  screened by the bounds divided by the block size with Go's integer division, which
  truncates toward zero (minx=-1 gives block bound 0, so block -1 is left out, as in
  DVID). With ``exact`` (the default) the voxel runs are then clipped to the bounds;
  ``exact=false`` returns whole blocks.
- Blocks are visited in (z, y, x) order, the order of DVID's block keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cas_dvid.datatypes.labelmap import _sparse_kernels as sk
from cas_dvid.errors import InvalidInputError

BlockCoord = tuple[int, int, int]  # (bx, by, bz)
LabelBlock = tuple[BlockCoord, NDArray[np.uint64]]  # block coordinate, (z, y, x) labels
Members = Iterable[int] | NDArray[np.integer]  # a body's supervoxel ids
_INT32 = re.compile(r"[+-]?[0-9]+")
_AXES = ("minx", "maxx", "miny", "maxy", "minz", "maxz")


@dataclass(frozen=True, slots=True)
class Bounds:
    """Optional inclusive bounds per axis (DVID's OptionalBounds); None = unbounded."""

    minx: int | None = None
    maxx: int | None = None
    miny: int | None = None
    maxy: int | None = None
    minz: int | None = None
    maxz: int | None = None

    def is_set(self) -> bool:
        """Tell whether at least one bound is given."""
        return any(getattr(self, a) is not None for a in _AXES)

    def divide(self, block_shape: tuple[int, int, int]) -> Bounds:
        """Bounds in block coordinates: each voxel bound truncated toward zero, as Go."""
        size = {"x": block_shape[2], "y": block_shape[1], "z": block_shape[0]}
        out = {}
        for a in _AXES:
            v = getattr(self, a)
            out[a] = None if v is None else _trunc_div(v, size[a[-1]])
        return Bounds(**out)

    def clip(self, lo: BlockCoord, hi: BlockCoord) -> tuple[BlockCoord, BlockCoord]:
        """Cut the (x, y, z) box lo..hi (inclusive) to these bounds; may come out empty."""
        mins = (self.minx, self.miny, self.minz)
        maxs = (self.maxx, self.maxy, self.maxz)
        new_lo = tuple(v if m is None else max(v, m) for v, m in zip(lo, mins, strict=True))
        new_hi = tuple(v if m is None else min(v, m) for v, m in zip(hi, maxs, strict=True))
        return new_lo, new_hi  # type: ignore[return-value]


def _trunc_div(v: int, n: int) -> int:
    return -(-v // n) if v < 0 else v // n


def parse_bounds(params: Mapping[str, str]) -> Bounds:
    """Bounds from query parameters ``minx`` ... ``maxz`` (absent or "" = unbounded).

    Each value must be a base-10 int32, as Go's ``strconv.ParseInt(s, 10, 32)``.
    """
    vals: dict[str, int | None] = {}
    for a in _AXES:
        s = params.get(a, "")
        if s == "":
            vals[a] = None
            continue
        if not _INT32.fullmatch(s) or not -(2**31) <= int(s) < 2**31:
            raise InvalidInputError(
                f"error parsing bounds from query string: {a}={s!r} is not an int32"
            )
        vals[a] = int(s)
    return Bounds(**vals)


def as_block_coords(coords: ArrayLike) -> NDArray[np.int64]:
    """(n, 3) int64 (x, y, z) block coordinates from any (n, 3) integer array-like."""
    arr = np.asarray(coords)
    if arr.size == 0:
        return np.empty((0, 3), np.int64)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.dtype.kind not in "iu":
        raise InvalidInputError(
            f"block coordinates must be an (n, 3) integer array of x, y, z; got "
            f"shape {arr.shape} of {arr.dtype}"
        )
    return arr.astype(np.int64)


def sort_blocks(coords: ArrayLike) -> NDArray[np.int64]:
    """Distinct block coordinates in (z, y, x) order, the order of DVID's block keys."""
    arr = np.unique(as_block_coords(coords), axis=0)
    return arr[np.lexsort((arr[:, 0], arr[:, 1], arr[:, 2]))]


def scale_blocks(coords: ArrayLike, scale: int) -> NDArray[np.int64]:
    """Map scale-0 blocks to those at ``scale``: coord >> scale, distinct, sorted."""
    if not 0 <= scale < 32:
        raise InvalidInputError(f"scale must be 0 to 31; got {scale}")
    return sort_blocks(as_block_coords(coords) >> scale)


def fit_blocks(coords: ArrayLike, block_bounds: Bounds) -> NDArray[np.int64]:
    """Keep the coordinates inside ``block_bounds`` (already divided), in order."""
    arr = as_block_coords(coords)
    keep = np.ones(len(arr), bool)
    for axis, (lo, hi) in enumerate(
        (
            (block_bounds.minx, block_bounds.maxx),
            (block_bounds.miny, block_bounds.maxy),
            (block_bounds.minz, block_bounds.maxz),
        )
    ):
        if lo is not None:
            keep &= arr[:, axis] >= lo
        if hi is not None:
            keep &= arr[:, axis] <= hi
    return arr[keep]


def block_spans(coords: ArrayLike) -> NDArray[np.int32]:
    """(n, 4) int32 x, y, z, length runs of X-consecutive blocks, in (z, y, x) order.

    DVID's IZYXSlice.WriteSerializedRLEs over the sorted blocks.
    """
    arr = sort_blocks(coords)
    if len(arr) == 0:
        return np.empty((0, 4), np.int32)
    brk = np.ones(len(arr), bool)
    brk[1:] = (
        (arr[1:, 0] != arr[:-1, 0] + 1) | (arr[1:, 1] != arr[:-1, 1]) | (arr[1:, 2] != arr[:-1, 2])
    )
    starts = np.flatnonzero(brk)
    lengths = np.diff(np.append(starts, len(arr)))
    return np.column_stack((arr[starts], lengths)).astype(np.int32)


def rle_header(nspans: int) -> bytes:
    """DVID's 12-byte sparse volume header: u8 0, u8 3 dims, u8 run dim 0, u8 0, u32 0, u32 n."""
    return bytes((0, 3, 0, 0)) + (0).to_bytes(4, "little") + int(nspans).to_bytes(4, "little")


def encode_sparsevol_coarse(coords: ArrayLike) -> bytes:
    """GET sparsevol-coarse body: header, then block-coordinate spans (12 bytes if none)."""
    spans = block_spans(coords)
    return rle_header(len(spans)) + spans.astype("<i4").tobytes()


def encode_sparsevols_coarse_entry(label: int, coords: ArrayLike) -> bytes:
    """One record of GET sparsevols-coarse: u64 label, int32 nspans, spans."""
    spans = block_spans(coords)
    return (
        int(label).to_bytes(8, "little")
        + len(spans).to_bytes(4, "little", signed=True)
        + spans.astype("<i4").tobytes()
    )


def block_voxel_extent(
    coords: ArrayLike, block_shape: tuple[int, int, int]
) -> tuple[BlockCoord, BlockCoord]:
    """(min voxel, max voxel), (x, y, z), of the blocks: sparsevol-size's block-granular bounds."""
    arr = as_block_coords(coords)
    if len(arr) == 0:
        raise InvalidInputError("no blocks to bound")
    size = np.array(block_shape[::-1], np.int64)
    lo = arr.min(axis=0) * size
    hi = (arr.max(axis=0) + 1) * size - 1
    return (int(lo[0]), int(lo[1]), int(lo[2])), (int(hi[0]), int(hi[1]), int(hi[2]))


def as_members(supervoxels: Members) -> NDArray[np.uint64]:
    """Sorted distinct uint64 ids from an integer array or any iterable of Python ints."""
    if isinstance(supervoxels, np.ndarray):
        arr = supervoxels.reshape(-1)
        if arr.dtype.kind not in "iu":
            raise InvalidInputError(f"supervoxel ids must be integers; got {arr.dtype}")
        if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
            raise InvalidInputError(f"supervoxel ids must be non-negative; got {int(arr.min())}")
        return np.unique(arr.astype(np.uint64))
    vals = [int(v) for v in supervoxels]
    if any(not 0 <= v < 1 << 64 for v in vals):
        raise InvalidInputError("supervoxel ids must be integers from 0 to 2^64-1")
    return np.unique(np.array(vals, np.uint64))


def block_mask(vol: NDArray[np.uint64], members: NDArray[np.uint64]) -> NDArray[np.uint8]:
    """(z, y, x) uint8 mask of the voxels whose label is in ``members`` (sorted)."""
    if not isinstance(vol, np.ndarray) or vol.dtype.kind != "u" or vol.dtype.itemsize != 8:
        raise InvalidInputError("label block must be a uint64 numpy array")
    if vol.ndim != 3 or any(n % 8 or n == 0 for n in vol.shape):
        raise InvalidInputError(f"label block sides must be multiples of 8; got {vol.shape}")
    flat = np.ascontiguousarray(vol, dtype=np.uint64).reshape(-1)
    return sk.member_mask(flat, members).reshape(vol.shape)


def checked_blocks(blocks: Iterable[LabelBlock]) -> Iterator[tuple[BlockCoord, NDArray[np.uint64]]]:
    """Pass blocks on, checking strictly increasing (z, y, x) order and one shape."""
    prev: tuple[int, int, int] | None = None
    shape: tuple[int, ...] | None = None
    for coord, vol in blocks:
        bx, by, bz = (int(c) for c in coord)
        key = (bz, by, bx)
        if prev is not None and key <= prev:
            raise InvalidInputError(
                f"blocks must come in increasing z, y, x order: ({bx}, {by}, {bz}) after "
                f"({prev[2]}, {prev[1]}, {prev[0]})"
            )
        if shape is not None and vol.shape != shape:
            raise InvalidInputError(
                f"block ({bx}, {by}, {bz}) has shape {vol.shape}; expected {shape}"
            )
        prev, shape = key, vol.shape
        yield (bx, by, bz), vol


def _subblock_masks(mask: NDArray[np.uint8]) -> bytes:
    """Encode each sub-block: a flag byte and, when mixed, its 64-byte LSB-first mask."""
    dz, dy, dx = mask.shape
    gz, gy, gx = dz // 8, dy // 8, dx // 8
    sub = mask.reshape(gz, 8, gy, 8, gx, 8).transpose(0, 2, 4, 1, 3, 5).reshape(-1, 512)
    filled = sub.sum(axis=1, dtype=np.int64)
    flags = np.where(filled == 0, 0, np.where(filled == 512, 1, 2)).astype(np.uint8)
    mixed = flags == 2
    sizes = 1 + 64 * mixed.astype(np.int64)
    offsets = np.cumsum(sizes) - sizes
    out = np.empty(int(sizes.sum()), np.uint8)
    out[offsets] = flags
    packed = np.packbits(sub[mixed].astype(bool), axis=1, bitorder="little")
    out[offsets[mixed][:, None] + 1 + np.arange(64)] = packed
    return out.tobytes()


def encode_binary_blocks(
    blocks: Iterable[LabelBlock], label: int, supervoxels: Members
) -> Iterator[bytes]:
    """GET sparsevol ``format=blocks`` body as a stream of byte chunks.

    Layout (labels.WriteBinaryBlocks): ``u32 gx, gy, gz; u64 label`` once, before the
    first block holding the body, then per such block ``int32 x, y, z`` (its first
    voxel), a u8 flag (1 = every voxel in the body, 2 = mixed) and, when mixed, per
    8x8x8 sub-block in (z, y, x) order a u8 flag (0 none, 1 all, 2 mixed) followed for
    2 by a 64-byte mask, voxel i (z, y, x order) at bit i % 8 of byte i // 8. Blocks
    without the body are left out; no block at all gives no bytes. DVID applies no
    voxel bounds to this format, only the block screening.
    """
    members = as_members(supervoxels)
    started = False
    for coord, vol in checked_blocks(blocks):
        mask = block_mask(vol, members)
        if not mask.any():
            continue
        dz, dy, dx = vol.shape
        offset = np.array([coord[0] * dx, coord[1] * dy, coord[2] * dz], np.int64)
        if (offset < -(2**31)).any() or (offset + np.array([dx, dy, dz]) - 1 >= 2**31).any():
            raise InvalidInputError(f"block {coord} lies outside int32 voxel coordinates")
        if not started:
            started = True
            head = np.array([dx // 8, dy // 8, dz // 8], "<u4").tobytes()
            yield head + int(label).to_bytes(8, "little")
        head = offset.astype("<i4").tobytes()
        if mask.all():
            yield head + b"\x01"
        else:
            yield head + b"\x02" + _subblock_masks(mask)
