"""Points, sizes and boxes in voxel space, parsed from DVID's URL forms (``x_y_z``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from cas_dvid.errors import InvalidInputError


@dataclass(frozen=True, slots=True)
class Point3:
    """A point (or size) in x, y, z order, as DVID writes them."""

    x: int
    y: int
    z: int

    def zyx(self) -> tuple[int, int, int]:
        """Numpy order."""
        return self.z, self.y, self.x

    def __iter__(self) -> Iterator[int]:
        return iter((self.x, self.y, self.z))


@dataclass(frozen=True, slots=True)
class Box3:
    """Voxels ``start`` to ``stop`` (exclusive) on each axis."""

    start: Point3
    stop: Point3

    @classmethod
    def at(cls, offset: Point3, size: Point3) -> Box3:
        """The box of ``size`` voxels at ``offset``."""
        return cls(offset, Point3(offset.x + size.x, offset.y + size.y, offset.z + size.z))

    @property
    def size(self) -> Point3:
        """Extent on each axis."""
        return Point3(
            self.stop.x - self.start.x, self.stop.y - self.start.y, self.stop.z - self.start.z
        )

    @property
    def voxels(self) -> int:
        """Number of voxels."""
        s = self.size
        return s.x * s.y * s.z

    def blocks(self, block: Point3) -> tuple[Point3, Point3]:
        """First and last block coordinates (inclusive) that the box touches."""
        first = Point3(*(v // b for v, b in zip(self.start, block, strict=True)))
        last = Point3(*((v - 1) // b for v, b in zip(self.stop, block, strict=True)))
        return first, last

    def aligned(self, block: Point3) -> bool:
        """Whether both corners fall on block boundaries."""
        return all(
            v % b == 0 for p in (self.start, self.stop) for v, b in zip(p, block, strict=True)
        )

    def intersect(self, other: Box3) -> Box3 | None:
        """The overlap, or None."""
        lo = Point3(*(max(a, b) for a, b in zip(self.start, other.start, strict=True)))
        hi = Point3(*(min(a, b) for a, b in zip(self.stop, other.stop, strict=True)))
        if lo.x >= hi.x or lo.y >= hi.y or lo.z >= hi.z:
            return None
        return Box3(lo, hi)


def parse_ints(text: str, n: int, what: str, sep: str = "_") -> tuple[int, ...]:
    """``n`` integers separated by ``sep`` (commas are accepted too)."""
    parts = text.replace(",", sep).split(sep) if sep != "," else text.split(",")
    if len(parts) != n:
        raise InvalidInputError(f"{what} must have {n} integers separated by '{sep}', got {text!r}")
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        raise InvalidInputError(f"{what} must be integers, got {text!r}") from None


def parse_point(text: str, what: str = "offset", sep: str = "_") -> Point3:
    """``x_y_z`` -> Point3."""
    return Point3(*parse_ints(text, 3, what, sep))


def parse_size(text: str, n: int, what: str = "size") -> tuple[int, ...]:
    """Positive sizes: ``w_h`` or ``x_y_z``."""
    sizes = parse_ints(text, n, what)
    if any(s <= 0 for s in sizes):
        raise InvalidInputError(f"{what} must be positive, got {text!r}")
    return sizes


def parse_block_size(text: str) -> Point3:
    """Instance BlockSize ``"x,y,z"``: positive, at most 1024 per axis."""
    size = Point3(*parse_ints(text, 3, "BlockSize", ","))
    if any(not 0 < v <= 1024 for v in size):
        raise InvalidInputError(f"BlockSize must be 1..1024 per axis, got {text!r}")
    return size


def parse_floats(text: str, n: int, what: str) -> tuple[float, ...]:
    """``n`` comma-separated finite floats."""
    parts = text.split(",")
    if len(parts) != n:
        raise InvalidInputError(f"{what} must have {n} numbers separated by ',', got {text!r}")
    try:
        vals = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidInputError(f"{what} must be numbers, got {text!r}") from None
    if not all(math.isfinite(v) and v > 0 for v in vals):
        raise InvalidInputError(f"{what} must be positive numbers, got {text!r}")
    return vals
