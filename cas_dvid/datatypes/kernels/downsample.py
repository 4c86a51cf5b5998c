"""Grayscale downsampling: 2x2x2 means for volume pyramids, DVID's 2-D box filter for tiles.

Two different rules, on purpose:

- ``mean_2x2x2`` (3-D pyramids, uint8/uint16). DVID has no grayscale 3-D
  downres (``datatype/common/downres`` only drives label types, by mode), so
  this follows the usual convention: each output voxel is the mean of its
  2x2x2 input cell, **rounded half up** (``(sum + n // 2) // n``). On an odd
  edge the last cell is partial and averages only the voxels that exist
  (1, 2 or 4 of them), so output shape is ``ceil(n / 2)`` per axis and no
  invented voxel is mixed in.
- ``downres_2d`` (imagetile pyramids). DVID's ``Voxels.DownRes`` ->
  ``Image.ScaleImage`` -> ``interpolate1x8``/``interpolate1x16``: an
  area-weighted box filter that **truncates** (floor of the weighted mean) to
  a ``src // mag`` sized image. For an exact 2x step that is
  ``floor((a + b + c + d) / 4)``; for odd sizes a destination pixel covers a
  fractional number of source pixels, each weighted by the overlap.
  Scale ``s + 1`` is computed from scale ``s``'s image, so a tile at scale s
  is s repeated floors, not one mean over ``4**s`` pixels.

``kernels._reference`` has the plain loop twins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError

Gray = npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
_ACC: dict[np.dtype[Any], type[np.unsignedinteger[Any]]] = {
    np.dtype(np.uint8): np.uint16,
    np.dtype(np.uint16): np.uint32,
}


def _check_gray(arr: npt.NDArray[np.generic], ndim: int) -> None:
    if arr.dtype not in _ACC:
        raise InvalidInputError(f"expected uint8 or uint16 voxels, got {arr.dtype}")
    if arr.ndim != ndim:
        raise InvalidInputError(f"expected a {ndim}-D array, got shape {arr.shape}")


def mean_2x2x2(volume: npt.NDArray[np.generic]) -> Gray:
    """Half-resolution ZYX volume: round-half-up mean of each 2x2x2 cell (partial at odd edges).

    Never modifies ``volume``; returns a new array of the same dtype and shape
    ``ceil(n / 2)`` per axis.
    """
    _check_gray(volume, 3)
    shape = tuple((n + 1) // 2 for n in volume.shape)
    if all(n % 2 == 0 for n in volume.shape):
        # PERF: the common case (whole blocks) needs no padding or per-cell counts.
        out: Gray = ((_cell_sums(volume, _ACC[volume.dtype]) + 4) >> 3).astype(volume.dtype)
        return out
    padded = np.zeros(tuple(2 * n for n in shape), dtype=volume.dtype)
    padded[: volume.shape[0], : volume.shape[1], : volume.shape[2]] = volume
    s = _cell_sums(padded, np.uint32)
    counts = [np.full(m, 2, dtype=np.uint32) for m in shape]
    for c, n in zip(counts, volume.shape, strict=True):
        if n % 2:
            c[-1] = 1
    n = counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]
    mean: Gray = ((s + n // 2) // n).astype(volume.dtype)
    return mean


def _cell_sums(volume: npt.NDArray[np.generic], acc: type[np.unsignedinteger[Any]]) -> Any:
    """Sum each 2x2x2 cell of an even-shaped volume, accumulating in ``acc``.

    PERF: three strided pair-adds, one axis at a time; ~9x faster than a
    reshape to (z, 2, y, 2, x, 2) and a multi-axis ``sum``.
    """
    s = volume[0::2].astype(acc)
    s += volume[1::2]
    s = s[:, 0::2] + s[:, 1::2]
    return s[:, :, 0::2] + s[:, :, 1::2]


def mean_octants(
    octants: Sequence[npt.NDArray[np.generic] | None], block_shape_zyx: Sequence[int]
) -> Gray:
    """One lower-scale block from its 8 higher-scale children (missing children read as 0).

    ``octants[i]`` is the child at offset ``(dz, dy, dx) = (i >> 2 & 1, i >> 1 & 1, i & 1)``
    in blocks, each of ``block_shape_zyx`` (even sizes). The result has the same shape.
    """
    if len(octants) != 8:
        raise InvalidInputError(f"expected 8 octants, got {len(octants)}")
    present = [o for o in octants if o is not None]
    dtype = present[0].dtype if present else np.dtype(np.uint8)
    bz, by, bx = (int(n) for n in block_shape_zyx)
    if bz % 2 or by % 2 or bx % 2:
        raise InvalidInputError(f"expected even block sizes, got {tuple(block_shape_zyx)}")
    whole = np.zeros((2 * bz, 2 * by, 2 * bx), dtype=dtype)
    for i, o in enumerate(octants):
        if o is None:
            continue
        if o.shape != (bz, by, bx) or o.dtype != dtype:
            raise InvalidInputError(
                f"expected octant {i} of shape {(bz, by, bx)} {dtype}, got {o.shape} {o.dtype}"
            )
        dz, dy, dx = i >> 2 & 1, i >> 1 & 1, i & 1
        whole[dz * bz : (dz + 1) * bz, dy * by : (dy + 1) * by, dx * bx : (dx + 1) * bx] = o
    return mean_2x2x2(whole)


def box_weights(src: int, dst: int) -> npt.NDArray[np.int64]:
    """``(dst, src)`` overlap weights of DVID's box filter along one axis.

    Source pixel ``i`` spans ``[i*dst, (i+1)*dst)`` and destination pixel ``j``
    spans ``[j*src, (j+1)*src)`` on a common axis of ``src*dst`` units (the
    "intermediate image" of Go's ``interpolate1x8``); the weight is the overlap.
    """
    edges = np.arange(src + 1, dtype=np.int64) * dst
    lo = np.arange(dst, dtype=np.int64)[:, None] * src
    w: npt.NDArray[np.int64] = np.clip(
        np.minimum(edges[None, 1:], lo + src) - np.maximum(edges[None, :-1], lo), 0, None
    )
    return w


def _sum_rows_then_columns(image: npt.NDArray[np.generic], fy: int, fx: int) -> Gray:
    """Return the truncating ``fy x fx`` mean, by strided adds in a just-wide-enough integer.

    PERF: ~20x faster than a reshape ``sum`` over two axes into uint64 for a 512^2
    halving (0.1 vs 2.1 ms), which made the 2x2 step most of a tile regeneration.
    ``fy * fx <= 257`` keeps 255 * n in uint16 and 65535 * n in uint32.
    """
    wide = np.uint16 if image.dtype == np.uint8 else np.uint32
    h, w = image.shape[0] // fy, image.shape[1] // fx
    rows: npt.NDArray[np.unsignedinteger[Any]] = image.reshape(h, fy, image.shape[1])  # type: ignore[assignment]
    acc: npt.NDArray[np.unsignedinteger[Any]] = rows[:, 0, :].astype(wide)
    for i in range(1, fy):
        acc += rows[:, i, :]
    cols = acc.reshape(h, w, fx)
    out: npt.NDArray[np.unsignedinteger[Any]] = cols[:, :, 0].copy()
    for j in range(1, fx):
        out += cols[:, :, j]
    out //= fy * fx
    return out.astype(image.dtype)


def downres_2d(image: npt.NDArray[np.generic], dst_w: int, dst_h: int) -> Gray:
    """DVID's ``Image.ScaleImage`` for interpolable gray images: box filter, truncating.

    Args:
        image: ``(height, width)`` uint8 or uint16.
        dst_w: output width (DVID's ``DownRes`` uses ``width // mag``).
        dst_h: output height.

    Returns:
        ``image`` itself when the size is unchanged (as DVID), else a new array.

    Raises:
        InvalidInputError: DVID's ``Attempted to interpolate to W x H pixels`` for
            a non-positive output size, or a source with no pixels.

    """
    _check_gray(image, 2)
    if dst_w <= 0 or dst_h <= 0:
        raise InvalidInputError(f"Attempted to interpolate to {dst_w} x {dst_h} pixels")
    src_h, src_w = image.shape
    if (src_w, src_h) == (dst_w, dst_h):
        return image  # type: ignore[return-value]
    if src_w <= 0 or src_h <= 0:
        raise InvalidInputError(
            f"Attempted to interpolate source image of {src_w} x {src_h} pixels"
        )
    if src_w % dst_w == 0 and src_h % dst_h == 0:
        # PERF: integral factors (every step of DVID's own tiling) reduce by reshape.
        fy, fx = src_h // dst_h, src_w // dst_w
        if fy * fx <= 257:
            return _sum_rows_then_columns(image, fy, fx)
        s = image.reshape(dst_h, fy, dst_w, fx).sum(axis=(1, 3), dtype=np.uint64)
        quick: Gray = (s // np.uint64(fy * fx)).astype(image.dtype)
        return quick
    wy, wx = box_weights(src_h, dst_h), box_weights(src_w, dst_w)
    s = wy @ image.astype(np.int64) @ wx.T
    out: Gray = (s // (src_w * src_h)).astype(image.dtype)
    return out


def downres_tile_2x(
    children: Sequence[Sequence[npt.NDArray[np.generic] | None]], tile_wh: Sequence[int]
) -> Gray:
    """Make a scale ``s + 1`` tile from the 2x2 scale ``s`` tiles it covers, as DVID would.

    ``children[r][c]`` is the child at row ``r`` (tile y or z), column ``c`` (tile
    x or y); ``None`` for a missing child, which counts as a full-size tile of
    zeros (DVID reads missing voxels as 0). A child may be clipped (an edge tile
    narrower than ``tile_wh``): the stitched image then ends there, as DVID's
    slice does. Crop the result to the slice extent to get DVID's clipped edge
    tiles where a child column or row lies wholly outside the slice.

    NOTE: DVID reduces the whole slice image, not tiles; the two agree whenever
    the stitched children have even sizes (tile boundaries on even pixels),
    which DVID's generator guarantees (its slices are multiples of
    ``512 * 2**(levels - 1)`` wide). For an odd stitched size the box weights
    depend on the whole slice and only ``downres_2d`` on it is exact.
    """
    tw, th = (int(n) for n in tile_wh)
    present = [c for row in children for c in row if c is not None]
    dtype = present[0].dtype if present else np.dtype(np.uint8)
    widths = [_child_dim(children, 0, c, 1, tw) for c in range(2)]
    heights = [_child_dim(children, r, 0, 0, th) for r in range(2)]
    whole = np.zeros((sum(heights), sum(widths)), dtype=dtype)
    for r in range(2):
        for c in range(2):
            tile = children[r][c]
            if tile is not None:
                y, x = sum(heights[:r]), sum(widths[:c])
                whole[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return downres_2d(whole, whole.shape[1] // 2, whole.shape[0] // 2)


def _child_dim(
    children: Sequence[Sequence[npt.NDArray[np.generic] | None]],
    r: int,
    c: int,
    axis: int,
    full: int,
) -> int:
    """Height (axis 0) of row r or width (axis 1) of column c: its largest child, else full."""
    line = [children[r][k] for k in range(2)] if axis == 0 else [children[k][c] for k in range(2)]
    sizes = [t.shape[axis] for t in line if t is not None]
    return max(sizes) if sizes else full
