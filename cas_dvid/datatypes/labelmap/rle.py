"""Run-length sparse volumes: GET sparsevol ``rles`` / ``srles``, and parsing POSTed RLEs.

A run is four little-endian int32: x, y, z of its first voxel and its length along X.
``rles`` (the default format) is DVID's legacy sparse volume: a 12-byte header (u8
payload 0, u8 ndims 3, u8 run dimension 0, u8 reserved 0, u32 0, u32 number of runs)
then the runs; ``srles`` is the runs alone.

Runs are what DVID's labels.WriteRLEs makes: blocks are scanned in (z, y, x) order,
rows in (z, y) order, and a run reaching a block's last X continues into the next
block when that is the X+1 neighbour, so every run is maximal along X (within the
bounds). Runs come out as they end; runs cut by a gap in the block sequence come out,
ordered by (z, y), when the gap is seen (DVID leaves that order to Go's map order).

Two DVID defects are not copied: DVID (1) extends a run to the end of a one-label
8x8x8 sub-block even past ``maxx`` and (2) computes sub-block positions with Go's ``%``,
which goes wrong at negative coordinates. Here runs are clipped exactly and negative
coordinates work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap import _sparse_kernels as sk
from cas_dvid.datatypes.labelmap.codec import Buffer
from cas_dvid.datatypes.labelmap.sparsevol import (
    BlockCoord,
    Bounds,
    LabelBlock,
    Members,
    as_members,
    block_mask,
    checked_blocks,
    rle_header,
)
from cas_dvid.errors import InvalidInputError, TooLargeError

_INT32_MAX = 2**31 - 1


class _RunState:
    """The runs waiting at the X end of the last block, per row of that block."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        rows = shape[0] * shape[1]
        self.dy = shape[1]
        self.start = np.zeros(rows, np.int64)
        self.length = np.zeros(rows, np.int64)
        self.origin: tuple[int, int, int] | None = None
        self.coord: BlockCoord | None = None

    def flush(self) -> NDArray[np.int32]:
        rows = np.flatnonzero(self.length)
        if self.origin is None or len(rows) == 0:
            return np.empty((0, 4), np.int32)
        ox, oy, oz = self.origin
        out = np.column_stack(
            (self.start[rows], oy + rows % self.dy, oz + rows // self.dy, self.length[rows])
        )
        self.length[:] = 0
        return out.astype(np.int32)


def _origin(coord: BlockCoord, shape: tuple[int, ...]) -> tuple[int, int, int]:
    ox, oy, oz = coord[0] * shape[2], coord[1] * shape[1], coord[2] * shape[0]
    for v, n in ((ox, shape[2]), (oy, shape[1]), (oz, shape[0])):
        if not (-(2**31) <= v and v + n - 1 <= _INT32_MAX):
            raise InvalidInputError(f"block {coord} lies outside int32 voxel coordinates")
    return ox, oy, oz


def _clip(
    origin: tuple[int, int, int], shape: tuple[int, ...], bounds: Bounds | None
) -> NDArray[np.int64]:
    dz, dy, dx = shape
    lo, hi = origin, (origin[0] + dx - 1, origin[1] + dy - 1, origin[2] + dz - 1)
    if bounds is not None:
        lo, hi = bounds.clip(lo, hi)
    return np.array(
        [
            lo[0] - origin[0],
            hi[0] - origin[0],
            lo[1] - origin[1],
            hi[1] - origin[1],
            lo[2] - origin[2],
            hi[2] - origin[2],
        ],
        np.int64,
    )


def sparsevol_runs(
    blocks: Iterable[LabelBlock], supervoxels: Members, bounds: Bounds | None = None
) -> Iterator[NDArray[np.int32]]:
    """Yield the runs of the voxels whose label is in ``supervoxels``, in (n, 4) chunks.

    Args:
        blocks: ((bx, by, bz), (z, y, x) uint64 array) pairs, all one shape, in strictly
            increasing (z, y, x) order, coordinates at the scale being served.
        supervoxels: the body's supervoxel ids (any collection of uint64s).
        bounds: voxel bounds to clip runs to (``exact=true``); None for whole blocks.
            Screening blocks by bounds is the caller's (sparsevol.fit_blocks).

    Yields:
        (n, 4) int32 arrays of x, y, z, length, in the order of the module docstring.

    """
    members = as_members(supervoxels)
    state: _RunState | None = None
    for coord, vol in checked_blocks(blocks):
        mask = block_mask(vol, members)
        if not mask.any():
            continue  # as DVID: a block without the body neither extends nor breaks runs
        if state is None:
            state = _RunState(vol.shape)
        elif state.coord != (coord[0] - 1, coord[1], coord[2]):
            flushed = state.flush()
            if len(flushed):
                yield flushed
        origin = _origin(coord, vol.shape)
        clip = _clip(origin, vol.shape, bounds)
        if (clip[0::2] <= clip[1::2]).all():
            out = np.empty((vol.shape[0] * vol.shape[1] * (vol.shape[2] // 2 + 1), 4), np.int32)
            n = sk.block_runs(
                mask.reshape(-1),
                np.array(vol.shape, np.int64),
                np.array(origin, np.int64),
                clip,
                state.start,
                state.length,
                out,
            )
            if n:
                yield out[:n]
        state.origin, state.coord = origin, coord
    if state is not None:
        flushed = state.flush()
        if len(flushed):
            yield flushed


def encode_rles(
    blocks: Iterable[LabelBlock], supervoxels: Members, bounds: Bounds | None = None
) -> bytes:
    """GET sparsevol ``format=rles`` body: header + runs; b"" when there is no run.

    DVID answers 200 with an empty body when a body exists but has no voxel in the
    bounds or at the scale asked for; the handler decides 404 before calling this.
    """
    runs = list(sparsevol_runs(blocks, supervoxels, bounds))
    n = sum(len(r) for r in runs)
    if n == 0:
        return b""
    return rle_header(n) + b"".join(r.astype("<i4", copy=False).tobytes() for r in runs)


def encode_srles(
    blocks: Iterable[LabelBlock], supervoxels: Members, bounds: Bounds | None = None
) -> Iterator[bytes]:
    """GET sparsevol ``format=srles`` body as a stream of byte chunks (no header)."""
    for runs in sparsevol_runs(blocks, supervoxels, bounds):
        yield runs.astype("<i4", copy=False).tobytes()


def parse_rles(data: Buffer) -> NDArray[np.int32]:
    """Parse a legacy RLE body (split-supervoxel POST) to (n, 4) int32 x, y, z, length.

    As DVID's ReadRLEs: 8 header bytes whose first (payload) must be 0, a u32 run
    count, then the runs; ndims and run dimension are not checked and bytes after
    the last run are ignored. Also rejected here: negative lengths and runs whose end
    passes int32.
    """
    buf = memoryview(data).cast("B")
    if len(buf) < 12:
        raise InvalidInputError(f"sparse volume needs a 12-byte header; got {len(buf)} bytes")
    if buf[0] != 0:
        raise InvalidInputError(
            f"sparse vol is not binary: payload descriptor {buf[0]}, expected 0"
        )
    n = int.from_bytes(buf[8:12], "little")
    if len(buf) < 12 + 16 * n:
        raise InvalidInputError(
            f"sparse volume truncated: header says {n} runs needing {12 + 16 * n} bytes; "
            f"got {len(buf)}"
        )
    runs = np.frombuffer(buf, "<i4", 4 * n, 12).reshape(n, 4).astype(np.int32)
    if n and int(runs[:, 3].min()) < 0:
        bad = int(np.argmax(runs[:, 3] < 0))
        raise InvalidInputError(f"run {bad} has negative length {int(runs[bad, 3])}")
    if n and int((runs[:, 0].astype(np.int64) + runs[:, 3]).max()) - 1 > _INT32_MAX:
        raise InvalidInputError("a run extends past the largest int32 x coordinate")
    return runs


MAX_PIECES = 1 << 22
"""Most (run, block) pieces one sparse volume may cut into (about 0.5 GB of work)."""


def partition_runs(
    runs: NDArray[np.int32], block_shape: tuple[int, int, int]
) -> dict[BlockCoord, NDArray[np.int32]]:
    """Cut runs at block boundaries and group them by block (DVID's RLEs.Partition).

    Zero-length runs are dropped. Block coordinates are floor(voxel / size).
    """
    dz, dy, dx = block_shape
    r = runs[runs[:, 3] > 0].astype(np.int64)
    if len(r) == 0:
        return {}
    bx0 = r[:, 0] // dx
    bx1 = (r[:, 0] + r[:, 3] - 1) // dx
    reps = bx1 - bx0 + 1
    if int(reps.sum()) > MAX_PIECES:
        # NOTE: one run of length 2**31 crosses 33 million blocks; cutting it took
        # minutes and gigabytes (found by tests/test_fuzz_binary.py).
        raise TooLargeError(
            f"runs cross {int(reps.sum())} block boundaries, over the {MAX_PIECES} limit"
        )
    src = np.repeat(np.arange(len(r)), reps)
    bx = bx0[src] + (np.arange(len(src)) - np.repeat(np.cumsum(reps) - reps, reps))
    x0 = np.maximum(r[src, 0], bx * dx)
    x1 = np.minimum(r[src, 0] + r[src, 3] - 1, bx * dx + dx - 1)
    pieces = np.column_stack((x0, r[src, 1], r[src, 2], x1 - x0 + 1))
    keys = np.column_stack((bx, r[src, 1] // dy, r[src, 2] // dz))
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    order = np.argsort(inverse.reshape(-1), kind="stable")
    bounds = np.searchsorted(inverse.reshape(-1)[order], np.arange(len(uniq) + 1))
    return {
        (int(u[0]), int(u[1]), int(u[2])): pieces[order[bounds[i] : bounds[i + 1]]].astype(np.int32)
        for i, u in enumerate(uniq)
    }


def runs_mask(
    runs: NDArray[np.int32], origin: tuple[int, int, int], shape: tuple[int, int, int]
) -> NDArray[np.bool_]:
    """Rasterise runs: the (z, y, x) bool mask of the box at voxel ``origin`` (x, y, z)."""
    dz, dy, dx = shape
    ox, oy, oz = origin
    r = runs.astype(np.int64)
    x0 = np.maximum(r[:, 0] - ox, 0)
    x1 = np.minimum(r[:, 0] + r[:, 3] - ox, dx)  # exclusive
    y, z = r[:, 1] - oy, r[:, 2] - oz
    keep = (x0 < x1) & (y >= 0) & (y < dy) & (z >= 0) & (z < dz)
    edges = np.zeros((dz, dy, dx + 1), np.int32)
    np.add.at(edges, (z[keep], y[keep], x0[keep]), 1)
    np.add.at(edges, (z[keep], y[keep], x1[keep]), -1)
    return np.cumsum(edges, axis=2)[:, :, :dx] > 0
