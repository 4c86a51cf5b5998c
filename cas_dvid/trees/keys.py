"""Tree key encodings: block coordinates that sort spatially, and plain byte keys.

Block keys are 13 bytes: ``scale`` (u8), then ``z``, ``y``, ``x``, each an
int32 stored big-endian with its sign bit flipped (i.e. ``v + 2**31``). Byte
order then equals numeric order, negatives included, and keys sort by scale,
then z, then y, then x, as DVID's izyx block indices do. All blocks of one
scale are contiguous; within a (scale, z, y) row the blocks of an x interval
are one contiguous key range, so a box query becomes one range per (z, y) row.

Key-value keys are the caller's bytes unchanged, in plain lexicographic byte
order (a key sorts before every key it is a prefix of).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError

BLOCK_KEY_SIZE = 13
_BLOCK = struct.Struct(">BIII")
_BIAS = 1 << 31
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_BLOCK_DTYPE = np.dtype([("s", "u1"), ("z", ">u4"), ("y", ">u4"), ("x", ">u4")])

KeyRange = tuple[bytes, bytes]
"""``(first, last)`` keys of a range, both inclusive (use ``end_inclusive=True``)."""


def _check(scale: int, zyx: Sequence[int]) -> None:
    if not 0 <= scale <= 255:
        raise InvalidInputError(f"expected a scale in 0..255, got {scale}")
    for name, v in zip("zyx", zyx, strict=True):
        if not _I32_MIN <= v <= _I32_MAX:
            raise InvalidInputError(f"expected block {name} in int32 range, got {v}")


def block_key(scale: int, z: int, y: int, x: int) -> bytes:
    """Key of one block; raises ``InvalidInputError`` outside u8 scale / int32 coordinates."""
    try:
        return _BLOCK.pack(scale, z + _BIAS, y + _BIAS, x + _BIAS)
    except struct.error:
        _check(scale, (z, y, x))
        raise


def parse_block_key(key: bytes) -> tuple[int, int, int, int]:
    """``(scale, z, y, x)`` of a block key; ``InvalidInputError`` if not 13 bytes."""
    if len(key) != BLOCK_KEY_SIZE:
        raise InvalidInputError(f"expected a {BLOCK_KEY_SIZE}-byte block key, got {len(key)} bytes")
    scale, z, y, x = _BLOCK.unpack(key)
    return scale, z - _BIAS, y - _BIAS, x - _BIAS


def block_keys(scale: int, zyx: npt.ArrayLike) -> list[bytes]:
    """Keys of many blocks at once; ``zyx`` is an (n, 3) array of int32 z, y, x."""
    coords = np.asarray(zyx, dtype=np.int64).reshape(-1, 3)
    if coords.size and (coords.min() < _I32_MIN or coords.max() > _I32_MAX):
        raise InvalidInputError("expected block coordinates in int32 range")
    _check(scale, (0, 0, 0))
    rec = np.empty(len(coords), dtype=_BLOCK_DTYPE)
    rec["s"] = scale
    for i, name in enumerate("zyx"):
        rec[name] = (coords[:, i] + _BIAS).astype(np.uint32)
    buf = rec.tobytes()
    return [buf[i : i + BLOCK_KEY_SIZE] for i in range(0, len(buf), BLOCK_KEY_SIZE)]


def box_ranges(
    scale: int, box_min_zyx: Sequence[int], box_max_zyx: Sequence[int]
) -> list[KeyRange]:
    """Key ranges covering the blocks of a box, both corners inclusive.

    One inclusive ``(first, last)`` range per (z, y) row, in key order, so
    ``len(result) == nz * ny``; an empty box (any min > max) gives ``[]``.
    """
    _check(scale, box_min_zyx)
    _check(scale, box_max_zyx)
    (z0, y0, x0), (z1, y1, x1) = box_min_zyx, box_max_zyx
    return [
        (block_key(scale, z, y, x0), block_key(scale, z, y, x1))
        for z in range(z0, z1 + 1)
        for y in range(y0, y1 + 1)
        if x0 <= x1
    ]


def prefix_range(prefix: bytes) -> tuple[bytes, bytes | None]:
    """``(start, end)`` with end exclusive, covering every key that starts with ``prefix``.

    ``end`` is ``None`` (unbounded) when the prefix is empty or all 0xFF bytes.
    """
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return prefix, None
    return prefix, stripped[:-1] + bytes((stripped[-1] + 1,))
