"""Plain loop twins of the view kernels, for tests: slow, literal, easy to check by eye."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt


def mean_2x2x2(volume: npt.NDArray[np.generic]) -> npt.NDArray[np.generic]:
    """Round-half-up mean of each (possibly partial) 2x2x2 cell, one output voxel at a time."""
    nz, ny, nx = volume.shape
    out = np.zeros(((nz + 1) // 2, (ny + 1) // 2, (nx + 1) // 2), dtype=volume.dtype)
    for z in range(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                cell = volume[2 * z : 2 * z + 2, 2 * y : 2 * y + 2, 2 * x : 2 * x + 2]
                total, n = int(cell.astype(np.int64).sum()), cell.size
                out[z, y, x] = (total + n // 2) // n
    return out


def interpolate_gray(
    src: npt.NDArray[np.generic], dst_w: int, dst_h: int
) -> npt.NDArray[np.generic]:
    """Go's ``interpolate1x8`` (and ``1x16``), loop for loop."""
    src_h, src_w = src.shape
    ww, hh, dx, dy = dst_w, dst_h, src_w, src_h
    n = dx * dy
    total = [0] * (dst_w * dst_h)
    for y in range(src_h):
        for x in range(src_w):
            val = int(src[y, x])
            py = y * hh
            remy = hh
            while remy > 0:
                qy = min(dy - (py % dy), remy)
                px = x * ww
                index = (py // dy) * ww + (px // dx)
                remx = ww
                while remx > 0:
                    qx = min(dx - (px % dx), remx)
                    total[index] += val * qx * qy
                    index += 1
                    px += qx
                    remx -= qx
                py += qy
                remy -= qy
    out = np.array([t // n for t in total], dtype=src.dtype)
    return out.reshape(dst_h, dst_w)


def arb_points(
    top_left: Sequence[float], top_right: Sequence[float], bottom_left: Sequence[float], res: float
) -> tuple[int, int, list[list[tuple[float, float, float]]]]:
    """``NewArbSlice`` + the ``GetArbitraryImage`` walk: width, height and each pixel's point."""
    tl, tr, bl = (tuple(float(v) for v in p) for p in (top_left, top_right, bottom_left))

    def dist(a: tuple[float, ...], b: tuple[float, ...]) -> float:
        d = [b[i] - a[i] for i in range(3)]
        return math.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])

    nx, ny = math.floor(dist(tl, tr) / res), math.floor(dist(tl, bl) / res)
    incr_x = [(tr[i] - tl[i]) / nx if nx else 0.0 for i in range(3)]
    incr_y = [(bl[i] - tl[i]) / ny if ny else 0.0 for i in range(3)]
    rows = []
    left = list(tl)
    for _ in range(ny + 1):
        cur = list(left)
        row = []
        for _ in range(nx + 1):
            row.append((cur[0], cur[1], cur[2]))
            for i in range(3):
                cur[i] += incr_x[i]
        rows.append(row)
        for i in range(3):
            left[i] += incr_y[i]
    return nx + 1, ny + 1, rows


def arb_value(
    point: tuple[float, float, float],
    voxel_size: Sequence[float],
    read: Callable[[int, int, int], int],
    interpolate: bool,
) -> int:
    """``neighborhood`` + ``nearestNeighborUint8`` / ``trilinearInterpUint8`` for one point.

    ``read`` is a callable ``(x, y, z) -> int`` giving one voxel.
    """
    res = [float(np.float32(v)) for v in voxel_size]
    lo, hi, d = [], [], []
    for i in range(3):
        v = point[i] / res[i]
        f, c = math.floor(v), math.ceil(v)
        lo.append(f)
        hi.append(c)
        d.append((point[i] - f * res[i]) / (c * res[i] - f * res[i]) if f != c else 0.0)
    vals = [
        float(read(x, y, z)) for z in (lo[2], hi[2]) for y in (lo[1], hi[1]) for x in (lo[0], hi[0])
    ]
    xd, yd, zd = d
    if not interpolate:
        return int(vals[(4 if zd > 0.5 else 0) + (2 if yd > 0.5 else 0) + (1 if xd > 0.5 else 0)])
    c00 = vals[0] * (1.0 - xd) + vals[1] * xd
    c10 = vals[2] * (1.0 - xd) + vals[3] * xd
    c01 = vals[4] * (1.0 - xd) + vals[5] * xd
    c11 = vals[6] * (1.0 - xd) + vals[7] * xd
    c0 = c00 * (1.0 - yd) + c10 * yd
    c1 = c01 * (1.0 - yd) + c11 * yd
    c = math.floor(c0 * (1 - zd) + c1 * zd + 0.5)
    return 255 if c > 255 else max(int(c), 0)


def assemble_box(
    out: npt.NDArray[np.generic],
    blocks: Sequence[npt.NDArray[np.generic] | None],
    block_shape: tuple[int, int, int],
    origin: tuple[int, int, int],
    z_range: tuple[int, int] | None = None,
) -> None:
    """``kernels.assemble.assemble_box`` block by block, each a numpy strided assignment."""
    nz, ny, nx = out.shape
    z0, z1 = z_range if z_range is not None else (0, nz)
    grid = [-(-(o + n) // b) for o, n, b in zip(origin, out.shape, block_shape, strict=True)]
    i = 0
    for kz in range(grid[0]):
        for ky in range(grid[1]):
            for kx in range(grid[2]):
                block, i = blocks[i], i + 1
                dst, src = [], []
                for k, o, b, lo, hi in (
                    (kz, origin[0], block_shape[0], z0, z1),
                    (ky, origin[1], block_shape[1], 0, ny),
                    (kx, origin[2], block_shape[2], 0, nx),
                ):
                    a, e = max(lo, k * b - o), min(hi, (k + 1) * b - o)
                    dst.append(slice(a, max(a, e)))
                    src.append(slice(a + o - k * b, max(a, e) + o - k * b))
                if block is None:
                    out[tuple(dst)] = 0
                else:
                    out[tuple(dst)] = block[tuple(src)]
