"""Box assembly: copy the part of a block that falls in a box into the box's array.

PERF: numpy's strided assignment ``out[dst] = block[src]`` calls its inner loop once
per x-row, and a 64^3 uint8 block has 4,096 rows of 64 bytes.  The numba kernel
copies the rows of one block in one compiled loop, with the GIL released so the
store's pool threads assemble in parallel: 3.9 ms against numpy's 5.6 ms for a
256^3 box from 125 blocks.  Its indices are unsigned on purpose: with signed ones
numba checks each for wraparound and the byte loop does not vectorize (26 ms).
``kernels._reference.copy_block`` is the plain numpy twin the tests compare it with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

F = TypeVar("F", bound=Callable[..., Any])
Array = npt.NDArray[Any]
Slices = tuple[slice, ...]


def _jit(fn: F) -> F:
    """Compile ``fn`` on first call (nopython, cached on disk, GIL released)."""
    return cast(F, njit(cache=True, nogil=True, boundscheck=False)(fn))


@_jit
def _copy_rows(
    out: Array,
    block: Array,
    out_rows: int,
    out_row: int,
    block_rows: int,
    block_row: int,
    o0: int,
    b0: int,
    nz: int,
    ny: int,
    nx: int,
) -> None:
    """Copy ``nz * ny`` rows of ``nx`` bytes between flat uint8 arrays (no bounds checks)."""
    for z in range(nz):
        for y in range(ny):
            do = np.uint64(o0 + (z * out_rows + y) * out_row)
            db = np.uint64(b0 + (z * block_rows + y) * block_row)
            for x in range(np.uint64(nx)):
                out[do + x] = block[db + x]


def copy_block(out: Array, dst: Slices, block: Array, src: Slices) -> None:
    """``out[dst] = block[src]`` for 3-D arrays of one dtype and regions of int slices, step 1.

    ``block`` may be read-only.  Anything else (other dtypes, non-contiguous arrays)
    is left to numpy.
    """
    if out.dtype != block.dtype or not (out.flags.c_contiguous and block.flags.c_contiguous):
        out[dst] = block[src]
        return
    oz, oy, ox = _starts(dst, out.shape)
    bz, by, bx = _starts(src, block.shape)
    nz, ny, nx = (s.stop - s.start for s in dst)
    if (nz, ny, nx) != tuple(s.stop - s.start for s in src):
        raise ValueError(f"copy_block: region {dst} of the box and {src} of the block differ")
    if nz <= 0 or ny <= 0 or nx <= 0:
        return
    k = out.dtype.itemsize
    _, oY, oX = out.shape
    _, bY, bX = block.shape
    _copy_rows(
        out.reshape(-1).view(np.uint8),
        block.reshape(-1).view(np.uint8),
        oY,
        oX * k,
        bY,
        bX * k,
        ((oz * oY + oy) * oX + ox) * k,
        ((bz * bY + by) * bX + bx) * k,
        nz,
        ny,
        nx * k,
    )


def _starts(region: Slices, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Return the starts of ``region``, checked inside ``shape`` (the kernel checks nothing)."""
    ok = len(region) == len(shape) == 3
    for s, n in zip(region, shape, strict=False):
        ok = ok and s.step in (None, 1) and 0 <= s.start <= s.stop <= n
    if not ok:
        raise ValueError(f"copy_block: {region} is not a region of an array of shape {shape}")
    return region[0].start, region[1].start, region[2].start
