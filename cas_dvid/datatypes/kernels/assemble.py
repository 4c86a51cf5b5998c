"""Box assembly: fill a box's array from the blocks it overlaps.

PERF: ``assemble_box`` fills a whole box (or a z-range of it) from its grid of blocks
in one compiled call, output row by output row: each row is a few ``memcpy`` pieces
(one per block it crosses), so the output is written in order and no Python runs per
block.  2.4 ms single-threaded for a 256^3 box of 125 cached 64^3 blocks, against 4.3
ms for the kernel it replaced, which copied one block at a time (3.6 in the kernel,
the rest its Python per block), and numpy's 5.6 ms, ``tools/bench_table.py`` row 1.
Its twin is ``kernels._reference.assemble_box``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit
from numba import types as _types
from numba.core import cgutils as _cgutils
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])
types: Any = _types
cgutils: Any = _cgutils
Array = npt.NDArray[Any]


def _jit(fn: F) -> F:
    """Compile ``fn`` on first call (nopython, cached on disk, GIL released)."""
    return cast(F, njit(cache=True, nogil=True, boundscheck=False)(fn))


def _memcpy_typed(typingctx: Any, dst: Any, src: Any, n: Any) -> Any:
    """``memcpy(dst, src, n)`` on integer addresses (LLVM's intrinsic, so the kernel caches)."""
    sig = types.void(types.uint64, types.uint64, types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        ptr = context.get_value_type(types.CPointer(types.uint8))
        d, s = (builder.inttoptr(a, ptr) for a in args[:2])
        cgutils.raw_memcpy(builder, d, s, args[2], 1)

    return sig, codegen


def _memzero_typed(typingctx: Any, dst: Any, n: Any) -> Any:
    """``memset(dst, 0, n)`` on an integer address."""
    sig = types.void(types.uint64, types.uint64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> None:
        ptr = context.get_value_type(types.CPointer(types.uint8))
        cgutils.memset(builder, builder.inttoptr(args[0], ptr), args[1], 0)

    return sig, codegen


_memcpy: Any = intrinsic(_memcpy_typed)
_memzero: Any = intrinsic(_memzero_typed)


@_jit
def _assemble_rows(
    out: Array,
    ptrs: Array,
    grid: Array,
    origin: Array,
    block: Array,
    size: Array,
    z0: int,
    z1: int,
) -> None:
    """Fill output z-planes [z0, z1) of a box, in bytes (x sizes already times the itemsize).

    ``ptrs`` are the addresses of the grid's blocks in z, y, x order (0: not stored,
    zeros); ``origin`` is where the box starts in the first block, ``block`` a block's
    shape, ``size`` the box's, ``grid`` the blocks per axis.  Nothing is checked here.
    """
    u = np.uint64
    base = u(out.ctypes.data)
    bz, by, bx = u(block[0]), u(block[1]), u(block[2])
    ny, nx = u(size[1]), u(size[2])
    gy, gx = u(grid[1]), u(grid[2])
    oz, oy, ox = u(origin[0]), u(origin[1]), u(origin[2])
    # The pieces of a row are the same in every row: (block column, offset in it, length).
    cols = np.empty(u(grid[2]), dtype=np.uint64)
    offs = np.empty(u(grid[2]), dtype=np.uint64)
    lens = np.empty(u(grid[2]), dtype=np.uint64)
    pieces = 0
    x = u(0)
    while x < nx:
        wx = ox + x
        kx = wx // bx
        ix = wx - kx * bx
        n = min(bx - ix, nx - x)
        cols[pieces], offs[pieces], lens[pieces] = kx, ix, n
        pieces += 1
        x += n
    for z in range(u(z0), u(z1)):
        wz = oz + z
        kz = wz // bz
        iz = wz - kz * bz
        ky = oy // by
        iy = oy - ky * by
        for y in range(ny):
            row = (kz * gy + ky) * gx
            inner = (iz * by + iy) * bx
            dst = base + (z * ny + y) * nx
            for i in range(pieces):
                p = u(ptrs[row + cols[i]])
                n = lens[i]
                if p == 0:
                    _memzero(dst, n)
                elif n == 64:  # a whole 64-byte row: two vector moves, no call
                    _memcpy(dst, p + inner + offs[i], u(64))
                else:
                    _memcpy(dst, p + inner + offs[i], n)
                dst += n
            iy += u(1)
            if iy == by:
                iy = u(0)
                ky += u(1)


def assemble_box(
    out: Array,
    blocks: Sequence[Array | None],
    block_shape: tuple[int, int, int],
    origin: tuple[int, int, int],
    z_range: tuple[int, int] | None = None,
) -> None:
    """Fill ``out`` (a ZYX box) from the grid of ``block_shape`` blocks that covers it.

    ``blocks`` are the grid's blocks in z, y, x order (None: not stored, its part of the
    box is zero); ``origin`` is where the box starts inside the first block (ZYX), so
    the grid is the blocks from there to the box's end.  ``z_range`` fills only those
    output z-planes (threads can share a box).  ``out`` and the blocks must be
    C-contiguous and of one dtype; everything is checked before the kernel runs, as it
    checks nothing.
    """
    grid = tuple(-(-(o + n) // b) for o, n, b in zip(origin, out.shape, block_shape, strict=True))
    z0, z1 = z_range if z_range is not None else (0, out.shape[0])
    _check_grid(out, blocks, block_shape, grid, origin, (z0, z1))
    if z1 <= z0 or not out.size:
        return
    ptrs = np.array([0 if b is None else b.ctypes.data for b in blocks], dtype=np.uint64)
    k = out.dtype.itemsize
    bz, by, bx = block_shape
    _assemble_rows(
        out.reshape(-1).view(np.uint8),
        ptrs,
        np.array(grid, dtype=np.int64),
        np.array((origin[0], origin[1], origin[2] * k), dtype=np.int64),
        np.array((bz, by, bx * k), dtype=np.int64),
        np.array((out.shape[0], out.shape[1], out.shape[2] * k), dtype=np.int64),
        z0,
        z1,
    )


def _check_grid(
    out: Array,
    blocks: Sequence[Array | None],
    shape: tuple[int, ...],
    grid: tuple[int, ...],
    origin: tuple[int, ...],
    z_range: tuple[int, int],
) -> None:
    """Refuse (ValueError) any geometry or layout the kernel would read or write outside of."""
    problems = []
    if out.ndim != 3 or not out.flags.c_contiguous or not out.flags.writeable:
        problems.append("out is not a writable C-contiguous 3-D array")
    if len(shape) != 3 or len(origin) != 3 or min(shape) < 1:
        problems.append(f"block shape {shape} and origin {origin} must be 3-D")
    elif not all(0 <= o < b for o, b in zip(origin, shape, strict=True)):
        problems.append(f"origin {origin} is not inside a {shape} block")
    if len(blocks) != int(np.prod(grid)):
        problems.append(f"{len(blocks)} blocks for a grid of {grid}")
    for b in blocks:
        if b is not None and (
            b.shape != tuple(shape) or b.dtype != out.dtype or not b.flags.c_contiguous
        ):
            problems.append(f"a block of shape {b.shape}, {b.dtype} is not a {shape} {out.dtype}")
            break
    z0, z1 = z_range
    if not 0 <= z0 <= z1 <= out.shape[0]:
        problems.append(f"z range {z_range} is outside the box")
    if problems:
        raise ValueError("assemble_box: " + "; ".join(problems))
