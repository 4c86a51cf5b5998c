"""Tile geometry for ``imagetile`` (and its old name ``multiscale2d``): which voxels a tile shows.

A tile is addressed ``tile/{plane}/{scale}/{tx_ty_tz}``. Two in-plane
coordinates are tile indices; the third is a **scale-0 voxel coordinate**
of the slice, at every scale (DVID's ``GetTileExtents`` and its generator both
use it unscaled):

====== ================== ====================
plane  tile coordinate    image axes (w, h)
====== ================== ====================
xy     (tileX, tileY, z)  x right, y down
xz     (tileX, y, tileZ)  x right, z down
yz     (x, tileY, tileZ)  y right, z down
====== ================== ====================

At scale ``s`` a tile of ``T`` pixels covers ``T * 2**s`` scale-0 voxels along
each in-plane axis (DVID's ``computeVoxelBounds`` doubles per level whatever
the level resolutions say). Its pixels are made by DVID's generator from the
scale ``s - 1`` slice image with ``downsample.downres_2d`` (truncating 2x2
box mean), i.e. one slice is reduced ``s`` times; z (for xy) is never averaged.

Two addressings (``origin_xyz``):

- **DVID absolute** (``origin_xyz=None``): tile space starts at voxel 0. Tile
  ``(tx, ty)`` at scale s of an xy slice covers x ``tx*T*2**s .. (tx+1)*T*2**s - 1``.
- **Source-relative** (``origin_xyz`` = the source's minimum point, the old
  ``multiscale2d`` addressing): the same, plus the origin on every axis, the
  fixed axis included, so ``z = 0`` is the source's first slice.

Example, a 250^3 source at offset (100, 100, 2600), ``TileSize`` 128:

- relative ``xy/0/0_0_0``: x 100..227, y 100..227, z 2600 (upper-left quadrant
  of the first slice); ``xy/0/1_0_0``: x 228..355 (upper right, 122 voxels of
  data); ``xy/1/0_0_0``: x, y 100..355, z 2600 (the whole 250 x 250 slice at
  half size in one 128 x 128 tile). ``num_tile_scales((250, 250, 250), (128,) * 3)``
  is 2: at scale 1 one tile covers the source.
- absolute ``xy/0/0_0_2600``: x 0..127, y 0..127 (data only from 100);
  ``xy/1/0_0_2600``: x, y 0..255, so the slice (100..349) spans tiles 0 and 1.

How many scales: DVID's default spec (``DefaultTileSpec``) takes, per axis,
1 scale if the extent fits one tile, else ``ceil(log2(extent / T)) + 1``, and
the maximum over x, y and z; the extent is the source box grown to whole
512-voxel tiles first (``dvid_tiled_extent``), so with DVID's defaults the
250^3 source above needs a single scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from cas_dvid.errors import InvalidInputError

Plane = Literal["xy", "xz", "yz"]
XYZ = tuple[int, int, int]
DEFAULT_TILE_SIZE = 512
_SHAPES: dict[str, str] = {
    "xy": "xy",
    "xz": "xz",
    "yz": "yz",
    "0_1": "xy",
    "0_2": "xz",
    "1_2": "yz",
    "0,1": "xy",
    "0,2": "xz",
    "1,2": "yz",
    "vol": "vol",
    "arb": "arb",
    "0_1_2": "vol",
    "0,1,2": "vol",
}
_AXES: dict[str, tuple[int, int, int]] = {"xy": (0, 1, 2), "xz": (0, 2, 1), "yz": (1, 2, 0)}


def parse_plane(text: str) -> Plane:
    """Parse a tile plane from DVID's shape strings (``xy``, ``0_2``, ``1,2``, any case).

    Raises:
        InvalidInputError: ``Unknown data shape specification (...)`` as DVID
            words it, or a shape that is not a plane (``vol``, ``arb``).

    """
    shape = _SHAPES.get(text.lower())
    if shape is None:
        raise InvalidInputError(f"Unknown data shape specification ({text})")
    if shape not in _AXES:
        raise InvalidInputError(f"can't compute extents for unknown tile shape {text}")
    return shape  # type: ignore[return-value]


def plane_axes(plane: Plane) -> tuple[int, int, int]:
    """``(image x axis, image y axis, fixed axis)`` as indices into ``x, y, z``."""
    return _AXES[plane]


def tile_pixel_shape(plane: Plane, tile_size_xyz: Sequence[int]) -> tuple[int, int]:
    """``(height, width)`` of a full tile image of this plane."""
    a, b, _ = plane_axes(plane)
    return int(tile_size_xyz[b]), int(tile_size_xyz[a])


def _check(scale: int, tile_size_xyz: Sequence[int]) -> None:
    if not 0 <= scale <= 255:
        raise InvalidInputError(f"expected a tile scale in 0..255, got {scale}")
    if len(tile_size_xyz) != 3 or any(int(t) < 1 for t in tile_size_xyz):
        raise InvalidInputError(f"expected a tile size of 3 positive ints, got {tile_size_xyz}")


def tile_voxel_box(
    plane: Plane,
    scale: int,
    tile_xyz: Sequence[int],
    tile_size_xyz: Sequence[int],
    *,
    origin_xyz: Sequence[int] | None = None,
) -> tuple[XYZ, XYZ]:
    """First and last scale-0 voxel (``x, y, z``, inclusive) a tile covers.

    Args:
        plane: ``xy``, ``xz`` or ``yz``.
        scale: tile level; a tile covers ``tile_size * 2**scale`` voxels in-plane.
        tile_xyz: the URL's coordinate (two tile indices and one voxel slice).
        tile_size_xyz: the level's ``TileSize`` (x, y, z).
        origin_xyz: the source's minimum point for source-relative addressing;
            ``None`` for DVID's absolute addressing.

    """
    _check(scale, tile_size_xyz)
    origin = tuple(int(o) for o in origin_xyz) if origin_xyz is not None else (0, 0, 0)
    a, b, fixed = plane_axes(plane)
    lo, hi = [0, 0, 0], [0, 0, 0]
    for axis in (a, b):
        span = int(tile_size_xyz[axis]) << scale
        lo[axis] = origin[axis] + int(tile_xyz[axis]) * span
        hi[axis] = lo[axis] + span - 1
    lo[fixed] = hi[fixed] = origin[fixed] + int(tile_xyz[fixed])
    return (lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2])


def tile_for_voxel(
    plane: Plane,
    scale: int,
    voxel_xyz: Sequence[int],
    tile_size_xyz: Sequence[int],
    *,
    origin_xyz: Sequence[int] | None = None,
) -> XYZ:
    """Find the tile coordinate whose box (``tile_voxel_box``) holds a scale-0 voxel."""
    _check(scale, tile_size_xyz)
    origin = tuple(int(o) for o in origin_xyz) if origin_xyz is not None else (0, 0, 0)
    a, b, fixed = plane_axes(plane)
    out = [0, 0, 0]
    for axis in (a, b):
        out[axis] = (int(voxel_xyz[axis]) - origin[axis]) // (int(tile_size_xyz[axis]) << scale)
    out[fixed] = int(voxel_xyz[fixed]) - origin[fixed]
    return out[0], out[1], out[2]


def tiles_for_box(
    plane: Plane,
    scale: int,
    box_min_xyz: Sequence[int],
    box_max_xyz: Sequence[int],
    tile_size_xyz: Sequence[int],
    *,
    origin_xyz: Sequence[int] | None = None,
) -> tuple[XYZ, XYZ]:
    """First and last tile coordinate (inclusive) touching a scale-0 voxel box (inclusive)."""
    first = tile_for_voxel(plane, scale, box_min_xyz, tile_size_xyz, origin_xyz=origin_xyz)
    last = tile_for_voxel(plane, scale, box_max_xyz, tile_size_xyz, origin_xyz=origin_xyz)
    return first, last


def num_tile_scales(size_xyz: Sequence[int], tile_size_xyz: Sequence[int]) -> int:
    """Scales DVID's ``DefaultTileSpec`` makes so one tile covers ``size`` on every axis.

    Per axis: 1 if ``size <= tile``, else ``ceil(log2(size / tile)) + 1``, i.e.
    the least ``n`` with ``tile * 2**(n - 1) >= size``; the result is the max
    over the three axes.
    """
    _check(0, tile_size_xyz)
    best = 0
    for n, t in zip(size_xyz, tile_size_xyz, strict=True):
        scales, covered = 1, int(t)
        while covered < int(n):
            scales, covered = scales + 1, covered * 2
        best = max(best, scales)
    return best


def dvid_tiled_extent(
    min_point_xyz: Sequence[int], max_point_xyz: Sequence[int], tile: int = DEFAULT_TILE_SIZE
) -> XYZ:
    """Measure as ``DefaultTileSpec`` does: the source box grown to whole ``tile``-voxel tiles."""
    out = []
    for lo, hi in zip(min_point_xyz, max_point_xyz, strict=True):
        out.append((int(hi) // tile + 1) * tile - (int(lo) // tile) * tile)
    return out[0], out[1], out[2]


def level_magnifications(resolutions: Sequence[Sequence[float]]) -> list[XYZ]:
    """Per-level magnification to the next level, as DVID's ``parseTileSpec`` derives it.

    ``resolutions[s]`` is level s's ``Resolution`` (x, y, z). For each axis,
    ``mag = int(lo / hi + 0.5)``. DVID rejects a pair whose IEEE remainder
    (``math.remainder``, nearest quotient) is > 0.001, so a ratio just *under*
    an integer (29 / 10) passes and rounds (to 3), while 25 / 10 fails.

    Raises:
        InvalidInputError: DVID's messages for non-integral or shrinking steps.

    """
    mags: list[XYZ] = []
    for s in range(len(resolutions) - 1):
        mag = [0, 0, 0]
        for i, (hires, lores) in enumerate(zip(resolutions[s], resolutions[s + 1], strict=True)):
            hi, lo = float(hires), float(lores)
            if math.remainder(lo, hi) > 0.001:
                raise InvalidInputError(
                    f"Resolutions between scale {s} and {s + 1} aren't integral magnifications!"
                )
            if lo / hi < 0.99:
                raise InvalidInputError(
                    f"A resolution between scale {s} and {s + 1} actually increases!"
                )
            mag[i] = int(lo / hi + 0.5)
        mags.append((mag[0], mag[1], mag[2]))
    return mags
