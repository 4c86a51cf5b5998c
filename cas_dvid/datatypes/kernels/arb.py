"""Arbitrarily oriented slices: DVID's ``GET arb/{top left}/{top right}/{bottom left}/{res}``.

What DVID does (``imageblk/arb_image.go``), reproduced here bit for bit:

- Points are in world units (voxel index times ``VoxelSize``, a float32
  setting, e.g. nm); ``res`` is the pixel spacing in the same units.
- Size: ``nx = floor(|tr - tl| / res)``, ``ny = floor(|bl - tl| / res)``; the
  image is ``(nx + 1) x (ny + 1)`` pixels, so both end points are sampled.
  Steps: ``incr_x = (tr - tl) / nx``, ``incr_y = (bl - tl) / ny``.
- Pixel points are reached by repeated float64 addition, not multiplication:
  row starts are ``tl``, ``tl + incr_y``, ``(tl + incr_y) + incr_y`` ..., and
  along a row ``incr_x`` is added once per pixel. (``np.cumsum`` adds in that
  same order, so the float rounding is DVID's.)
- Each point is divided by the voxel size; its 8 lattice neighbours are
  ``floor`` and ``ceil`` per axis, with fraction ``(p - f*r) / (c*r - f*r)``
  (0 where floor == ceil). Interpolable data (uint8blk, rgba8blk: all DVID
  allows here) is **trilinear**, rounded half up (``floor(v + 0.5)``, capped at
  255); non-interpolable data takes the **nearest** neighbour, where a fraction
  of exactly 0.5 goes to the lower voxel. Blocks that are not stored read as
  the instance's ``Background`` value.

Use: ``plan_arb`` fixes the geometry; ``ArbPlan.blocks`` lists the blocks the
plane touches, so the datatype reads only those; ``sample_blocks`` (or, for a
dense cut-out, ``sample_volume``) makes the image.

Degenerate requests raise ``InvalidInputError``: non-finite numbers, a
resolution that is not > 0, and collinear corner points (including a corner
repeated). NOTE: DVID itself only rejects an image of <= 0 pixels; for
``tl == tr`` it returns a 1-pixel-wide image.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError, TooLargeError
from cas_dvid.strconv import parse_float

Vec3 = tuple[float, float, float]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_I32_MAX = (1 << 31) - 1


def parse_vector3(text: str, sep: str = "_") -> Vec3:
    """``dvid.StringToVector3d``: three floats joined by ``sep`` (each may have spaces around)."""
    parts = text.split(sep)
    if len(parts) != 3:
        raise InvalidInputError(f"can't convert string '{text}' (length {len(parts)}) to Vector3d")
    x, y, z = (parse_float(p.strip()) for p in parts)
    return x, y, z


def parse_arb_request(tl: str, tr: str, bl: str, res: str) -> tuple[Vec3, Vec3, Vec3, float]:
    """Parse the four path parts of an ``arb`` request as ``NewArbSliceFromStrings`` does."""
    return parse_vector3(tl), parse_vector3(tr), parse_vector3(bl), parse_float(res)


@dataclass(frozen=True, slots=True)
class ArbPlan:
    """Where each pixel of an arbitrary slice samples the volume.

    Attributes:
        width: pixels per row (DVID's ``nx + 1``).
        height: rows (``ny + 1``).
        lo: ``(height, width, 3)`` floor voxel coordinates, ``x, y, z``.
        hi: same shape, ceil voxel coordinates (equal to ``lo`` on integral axes).
        frac: same shape, DVID's ``xd, yd, zd`` fractions in ``[0, 1]``.

    """

    width: int
    height: int
    lo: I64
    hi: I64
    frac: F64

    @property
    def box(self) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """First and last voxel (``x, y, z``, inclusive) any pixel reads."""
        mn = self.lo.reshape(-1, 3).min(axis=0)
        mx = self.hi.reshape(-1, 3).max(axis=0)
        return (int(mn[0]), int(mn[1]), int(mn[2])), (int(mx[0]), int(mx[1]), int(mx[2]))

    def blocks(self, block_size_xyz: Sequence[int]) -> I64:
        """Sorted unique ``(n, 3)`` ``z, y, x`` coordinates of the blocks any pixel reads."""
        bs = np.asarray(block_size_xyz, dtype=np.int64)
        blo, bhi = self.lo.reshape(-1, 3) // bs, self.hi.reshape(-1, 3) // bs
        base = blo.min(axis=0)
        ext = bhi.max(axis=0) - base + 1
        # PERF: mark touched blocks in a table over the plane's block bounding box
        # (small: a plane crosses few blocks) instead of sorting 8 corners per pixel.
        seen = np.zeros(int(ext.prod()), dtype=bool)
        for pick in range(8):
            c = [(bhi if (pick >> a) & 1 else blo)[:, a] - base[a] for a in range(3)]
            seen[(c[2] * ext[1] + c[1]) * ext[0] + c[0]] = True
        u = np.flatnonzero(seen)
        x, rest = u % ext[0], u // ext[0]
        return np.column_stack((rest // ext[1] + base[2], rest % ext[1] + base[1], x + base[0]))


def arb_pixel_limit(ctx: Any) -> int:
    """Most pixels one ``arb`` request may have: its plan takes ~100 bytes a pixel."""
    return int(ctx.max_voxel_bytes) // 128


def _vec(p: Sequence[float], name: str) -> F64:
    v = np.asarray([float(c) for c in p], dtype=np.float64)
    if v.shape != (3,) or not np.isfinite(v).all():
        raise InvalidInputError(f"expected {name} as 3 finite numbers, got {list(p)}")
    return v


def arb_size(
    top_left: Sequence[float], top_right: Sequence[float], bottom_left: Sequence[float], res: float
) -> tuple[int, int]:
    """``(width, height)`` of the image DVID makes; validates the request.

    Raises:
        InvalidInputError: non-finite input, ``res <= 0``, collinear points, or
            more than 2**31 - 1 pixels (DVID's int32 pixel count).

    """
    tl, tr, bl = (
        _vec(top_left, "top left"),
        _vec(top_right, "top right"),
        _vec(bottom_left, "bottom left"),
    )
    if not math.isfinite(res) or res <= 0:
        raise InvalidInputError(f"expected a resolution > 0 for an arbitrary image, got {res}")
    ax, ay = tr - tl, bl - tl
    na, nb = math.sqrt(float(ax @ ax)), math.sqrt(float(ay @ ay))
    cross = np.cross(ax, ay)
    if na == 0 or nb == 0 or math.sqrt(float(cross @ cross)) <= 1e-12 * na * nb:
        raise InvalidInputError(
            "degenerate arbitrary image: top left, top right and bottom left points "
            f"{tl.tolist()}, {tr.tolist()}, {bl.tolist()} are collinear"
        )
    nx, ny = math.floor(_distance(tl, tr) / res), math.floor(_distance(tl, bl) / res)
    if (nx + 1) * (ny + 1) > _I32_MAX:
        raise InvalidInputError(f"Bad arbitrary image size requested: {nx + 1} x {ny + 1} pixels")
    return nx + 1, ny + 1


def _distance(a: F64, b: F64) -> float:
    """``Vector3d.Distance``, same operation order."""
    d = b - a
    return math.sqrt(float(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))


def arb_points(
    top_left: Sequence[float],
    top_right: Sequence[float],
    bottom_left: Sequence[float],
    res: float,
    *,
    max_pixels: int | None = None,
) -> F64:
    """``(height, width, 3)`` world points of every pixel, accumulated as DVID accumulates them.

    Raises:
        InvalidInputError: see ``arb_size``.
        TooLargeError: more than ``max_pixels`` pixels.

    """
    w, h = arb_size(top_left, top_right, bottom_left, res)
    if max_pixels is not None and w * h > max_pixels:
        raise TooLargeError(
            f"arbitrary image of {w} x {h} pixels is over the limit of {max_pixels}"
        )
    tl, tr, bl = _vec(top_left, ""), _vec(top_right, ""), _vec(bottom_left, "")
    incr_x = (tr - tl) / (w - 1) if w > 1 else np.zeros(3)
    incr_y = (bl - tl) / (h - 1) if h > 1 else np.zeros(3)
    starts = np.empty((h, 3), dtype=np.float64)
    starts[0], starts[1:] = tl, incr_y
    grid = np.empty((h, w, 3), dtype=np.float64)
    grid[:, 0] = np.cumsum(starts, axis=0)
    grid[:, 1:] = incr_x
    return np.cumsum(grid, axis=1, out=grid)


def plan_arb(
    top_left: Sequence[float],
    top_right: Sequence[float],
    bottom_left: Sequence[float],
    res: float,
    voxel_size_xyz: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    max_pixels: int | None = None,
) -> ArbPlan:
    """Plan where each pixel of an ``arb`` request samples.

    Args:
        top_left: world point of pixel (0, 0).
        top_right: world point of the last pixel of row 0.
        bottom_left: world point of the first pixel of the last row.
        res: pixel spacing in world units.
        voxel_size_xyz: the instance's ``VoxelSize`` (rounded to float32 as DVID stores it);
            the default makes world units voxel units.
        max_pixels: optional cap, checked before anything is allocated.

    """
    vs = np.asarray([float(np.float32(v)) for v in voxel_size_xyz], dtype=np.float64)
    if vs.shape != (3,) or not (np.isfinite(vs).all() and (vs > 0).all()):
        raise InvalidInputError(
            f"expected a voxel size of 3 positive numbers, got {voxel_size_xyz}"
        )
    pts = arb_points(top_left, top_right, bottom_left, res, max_pixels=max_pixels)
    v = pts / vs
    f, c = np.floor(v), np.ceil(v)
    lo, hi = f.astype(np.int64), c.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(lo != hi, (pts - f * vs) / (c * vs - f * vs), 0.0)
    return ArbPlan(pts.shape[1], pts.shape[0], lo, hi, frac)


def _check_values(dtype: np.dtype[np.generic], channels: int, interpolate: bool) -> None:
    """uint8 (grayscale, RGBA) as DVID; also uint64 labels, nearest only (a cas_dvid extension)."""
    labels = dtype == np.uint64 and channels == 1 and not interpolate
    if not labels and (dtype != np.uint8 or channels not in (1, 4)):
        raise InvalidInputError(
            f"DVID cannot retrieve images with arbitrary orientation using {channels} channels"
            f" and {dtype.itemsize} bytes/channel"
        )


AxisParts = Callable[[int, I64], tuple[npt.NDArray[np.bool_], tuple[I64, ...]]]
"""``parts(axis, coords)``: which coordinates are readable, and their additive index terms."""
Values = npt.NDArray[Any]
"""uint8 pixels (``(h, w)`` or ``(h, w, 4)``) or uint64 labels."""
Gather = Callable[[tuple[I64, ...], npt.NDArray[np.bool_]], Values]
"""``gather(summed terms, readable)``: the voxel values (background where not readable)."""


def _combine(plan: ArbPlan, parts: AxisParts, gather: Gather, interpolate: bool) -> Values:
    """Nearest or trilinear value per pixel, from DVID's 8 lattice neighbours.

    PERF: a voxel's index is a sum of per-axis terms, so each axis's floor and
    ceil coordinates are converted once and the 8 corners only add them up.
    """
    if not interpolate:
        near = [
            parts(a, np.where(plan.frac[..., a] > 0.5, plan.hi[..., a], plan.lo[..., a]))
            for a in range(3)
        ]
        return gather(_corner(near), near[0][0] & near[1][0] & near[2][0])
    lo = [parts(a, plan.lo[..., a]) for a in range(3)]
    hi = [parts(a, plan.hi[..., a]) for a in range(3)]
    vals = []
    for pick in range(8):
        axes = [(hi if (pick >> a) & 1 else lo)[a] for a in range(3)]
        ok = axes[0][0] & axes[1][0] & axes[2][0]
        vals.append(gather(_corner(axes), ok).astype(np.float64))
    ch = vals[0].ndim - 2
    xd, yd, zd = (plan.frac[..., a].reshape(plan.frac.shape[:2] + (1,) * ch) for a in range(3))
    c00 = vals[0] * (1.0 - xd) + vals[1] * xd
    c10 = vals[2] * (1.0 - xd) + vals[3] * xd
    c01 = vals[4] * (1.0 - xd) + vals[5] * xd
    c11 = vals[6] * (1.0 - xd) + vals[7] * xd
    c0 = c00 * (1.0 - yd) + c10 * yd
    c1 = c01 * (1.0 - yd) + c11 * yd
    out: npt.NDArray[np.uint8] = np.clip(np.floor(c0 * (1 - zd) + c1 * zd + 0.5), 0, 255).astype(
        np.uint8
    )
    return out


def _corner(axes: list[tuple[npt.NDArray[np.bool_], tuple[I64, ...]]]) -> tuple[I64, ...]:
    return tuple(
        tx + ty + tz for tx, ty, tz in zip(axes[0][1], axes[1][1], axes[2][1], strict=True)
    )


def _masked(flat: Values, idx: I64, ok: npt.NDArray[np.bool_], background: int) -> Values:
    """``flat[idx]`` where ``ok``, else ``background`` (``flat`` is 1-D or (n, channels))."""
    got = flat[np.where(ok, idx, 0)]
    mask = ok if got.ndim == ok.ndim else ok[..., None]
    out: Values = np.where(mask, got, np.asarray(background, dtype=flat.dtype))
    return out


def sample_volume(
    plan: ArbPlan,
    volume: npt.NDArray[np.generic],
    offset_xyz: Sequence[int],
    *,
    interpolate: bool = True,
    background: int = 0,
) -> Values:
    """Sample the slice image from a dense ZYX volume (``(z, y, x)`` or ``(z, y, x, 4)`` uint8).

    ``volume[0, 0, 0]`` is voxel ``offset_xyz``; voxels outside it read as
    ``background``. Returns ``(height, width)`` (or ``(height, width, 4)``).
    """
    ch = volume.shape[3] if volume.ndim == 4 else 1
    _check_values(volume.dtype, ch, interpolate)
    nz, ny, nx = volume.shape[:3]
    flat = np.ascontiguousarray(volume).reshape((-1, ch) if volume.ndim == 4 else -1)
    off = [int(v) for v in offset_xyz]
    dims, strides = (nx, ny, nz), (1, nx, nx * ny)

    def parts(axis: int, v: I64) -> tuple[npt.NDArray[np.bool_], tuple[I64, ...]]:
        r = v - off[axis]
        return (r >= 0) & (r < dims[axis]), (r * strides[axis],)

    def gather(terms: tuple[I64, ...], ok: npt.NDArray[np.bool_]) -> Values:
        return _masked(flat, terms[0], ok, background)

    return _combine(plan, parts, gather, interpolate)


def sample_blocks(
    plan: ArbPlan,
    block_coords_zyx: npt.ArrayLike,
    blocks: npt.NDArray[np.generic],
    block_size_xyz: Sequence[int],
    *,
    interpolate: bool = True,
    background: int = 0,
) -> Values:
    """Sample the slice image from only the blocks the plane touches (``ArbPlan.blocks``).

    Args:
        plan: from ``plan_arb``.
        block_coords_zyx: ``(n, 3)`` block coordinates, any order.
        blocks: ``(n, bz, by, bx)`` (or ``(n, bz, by, bx, 4)``) uint8 voxels (or uint64
            labels, nearest only), one per coordinate.
        block_size_xyz: block size in voxels.
        interpolate: trilinear (DVID's choice for uint8blk) or nearest.
        background: value for voxels of blocks not given.

    """
    ch = blocks.shape[4] if blocks.ndim == 5 else 1
    _check_values(blocks.dtype, ch, interpolate)
    coords = np.asarray(block_coords_zyx, dtype=np.int64).reshape(-1, 3)
    bx, by, bz = (int(b) for b in block_size_xyz)
    if blocks.shape[1:4] != (bz, by, bx) or len(blocks) != len(coords):
        raise InvalidInputError(
            f"expected {len(coords)} blocks of {(bz, by, bx)} voxels, got {blocks.shape}"
        )
    if not len(coords):
        shape = (plan.height, plan.width) + ((ch,) if blocks.ndim == 5 else ())
        return np.full(shape, background, dtype=blocks.dtype)
    flat = np.ascontiguousarray(blocks).reshape((-1, ch) if blocks.ndim == 5 else -1)
    # Blocks by a dense table over their bounding box: coordinate -> position in ``blocks``.
    lo_xyz = coords.min(axis=0)[::-1]
    ext = coords.max(axis=0)[::-1] - lo_xyz + 1
    if int(ext.prod()) > 1 << 26:
        raise InvalidInputError(
            f"expected blocks near one plane, got a bounding box of {ext} blocks"
        )
    size, bsize = (bx, by, bz), bx * by * bz
    code_stride = (1, int(ext[0]), int(ext[0] * ext[1]))
    local_stride = (1, bx, bx * by)
    table = np.full(int(ext.prod()), -1, dtype=np.int64)
    rel = coords[:, ::-1] - lo_xyz
    table[(rel * code_stride).sum(axis=1)] = np.arange(len(coords))

    def parts(axis: int, v: I64) -> tuple[npt.NDArray[np.bool_], tuple[I64, ...]]:
        b = v // size[axis]
        c = b - lo_xyz[axis]
        ok = (c >= 0) & (c < ext[axis])
        return ok, (c * code_stride[axis], (v - b * size[axis]) * local_stride[axis])

    def gather(terms: tuple[I64, ...], ok: npt.NDArray[np.bool_]) -> Values:
        slot = table[np.where(ok, terms[0], 0)]
        ok = ok & (slot >= 0)
        return _masked(flat, slot * bsize + terms[1], ok, background)

    return _combine(plan, parts, gather, interpolate)
