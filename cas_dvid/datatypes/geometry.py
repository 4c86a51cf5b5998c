"""Points, sizes and boxes in voxel space, and the strict parsers of DVID's forms (``x_y_z``)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cas_dvid.errors import InvalidInputError
from cas_dvid.strconv import is_int

I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1
MAX_BLOCK_EDGE = 1024


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
    """Voxels ``start`` (inclusive) to ``stop`` (exclusive) on each axis; never empty."""

    start: Point3
    stop: Point3

    def __post_init__(self) -> None:
        if (
            self.start.x >= self.stop.x
            or self.start.y >= self.stop.y
            or self.start.z >= self.stop.z
        ):
            raise InvalidInputError(
                f"box {self.text()} is empty: each X1,Y1,Z1 must exceed X0,Y0,Z0"
            )

    @classmethod
    def at(cls, offset: Point3, size: Point3) -> Box3:
        """Return the box of ``size`` voxels at ``offset``."""
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

    def blocks(self, block: Point3, scale: int = 0) -> tuple[Point3, Point3]:
        """First and last block (inclusive) the box touches at ``scale`` (each scale halves)."""
        f = 1 << scale
        first = Point3(*((v // f) // b for v, b in zip(self.start, block, strict=True)))
        last = Point3(*(((v - 1) // f) // b for v, b in zip(self.stop, block, strict=True)))
        return first, last

    def aligned(self, block: Point3) -> bool:
        """Whether both corners fall on block boundaries."""
        return all(
            v % b == 0 for p in (self.start, self.stop) for v, b in zip(p, block, strict=True)
        )

    def intersect(self, other: Box3) -> Box3 | None:
        """Return the overlap, or None."""
        lo = Point3(*(max(a, b) for a, b in zip(self.start, other.start, strict=True)))
        hi = Point3(*(min(a, b) for a, b in zip(self.stop, other.stop, strict=True)))
        if lo.x >= hi.x or lo.y >= hi.y or lo.z >= hi.z:
            return None
        return Box3(lo, hi)

    def z_slabs(self, block_z: int, plane_bytes: int, max_bytes: int) -> Iterator[Box3]:
        """Split the box into slabs along z, in order, for a streamed answer.

        A slab is one layer of blocks (cut at multiples of ``block_z``), thinner when
        such a layer would be over ``max_bytes`` (``plane_bytes`` a z-plane); at least
        one plane.
        """
        thick = max(1, max_bytes // max(1, plane_bytes))
        z = self.start.z
        while z < self.stop.z:
            layer_end = min(self.stop.z, (z // block_z + 1) * block_z)
            end = min(layer_end, z + thick)
            yield Box3(Point3(self.start.x, self.start.y, z), Point3(self.stop.x, self.stop.y, end))
            z = end

    def contains(self, other: Box3) -> bool:
        """Whether ``other`` lies inside this box."""
        return all(a <= b for a, b in zip(self.start, other.start, strict=True)) and all(
            a >= b for a, b in zip(self.stop, other.stop, strict=True)
        )

    def text(self) -> str:
        """``X0,Y0,Z0,X1,Y1,Z1`` as the CLI takes it."""
        return ",".join(map(str, (*self.start, *self.stop)))

    def to_json(self) -> list[int]:
        """``[x0, y0, z0, x1, y1, z1]``."""
        return [*self.start, *self.stop]


def block_box(block: Point3, x: int, y: int, z: int) -> Box3:
    """Return the voxels of block (x, y, z)."""
    return Box3(
        Point3(x * block.x, y * block.y, z * block.z),
        Point3((x + 1) * block.x, (y + 1) * block.y, (z + 1) * block.z),
    )


def parse_int(text: str, what: str) -> int:
    """One integer as Go's strconv reads it: an optional sign and ASCII digits, nothing else.

    Python's ``int()`` would also take spaces, underscores and non-ASCII digits;
    DVID refuses those, and so does this.
    """
    if not is_int(text):
        raise InvalidInputError(f"{what} must be an integer, got {text[:40]!r}")
    return int(text)


def parse_ints(text: str, n: int, what: str, sep: str = "_") -> tuple[int, ...]:
    """``n`` integers separated by ``sep`` (commas are accepted too)."""
    parts = text.replace(",", sep).split(sep) if sep != "," else text.split(",")
    if len(parts) != n:
        raise InvalidInputError(
            f"{what} must have {n} integers separated by '{sep}', got {text[:80]!r}"
        )
    values = []
    for p in parts:
        if not is_int(p):
            raise InvalidInputError(f"{what} must be integers, got {text[:80]!r}")
        values.append(int(p))
    return tuple(values)


def check_int32(values: Sequence[int], what: str) -> None:
    """Refuse coordinates outside int32, the range of DVID's block and voxel indices."""
    for v in values:
        if not I32_MIN <= v <= I32_MAX:
            raise InvalidInputError(f"{what} {v} is outside the int32 range DVID uses")


def parse_point(text: str, what: str = "offset", sep: str = "_") -> Point3:
    """``x_y_z`` -> Point3, each in int32."""
    p = Point3(*parse_ints(text, 3, what, sep))
    check_int32(tuple(p), what)
    return p


def parse_size(text: str, n: int, what: str = "size") -> tuple[int, ...]:
    """Positive sizes: ``w_h`` or ``x_y_z``, each in int32."""
    sizes = parse_ints(text, n, what)
    if any(s <= 0 for s in sizes):
        raise InvalidInputError(f"{what} must be positive, got {text[:80]!r}")
    check_int32(sizes, what)
    return sizes


def parse_block_size(text: str | None, default: Point3, multiple_of: int = 1) -> Point3:
    """Parse an instance's BlockSize ``"x,y,z"``: 1..1024 per axis (absent: ``default``)."""
    if text is None or not text.strip():
        return default
    size = Point3(*parse_ints(text.strip(), 3, "BlockSize", ","))
    if any(not 0 < v <= MAX_BLOCK_EDGE for v in size):
        raise InvalidInputError(f"BlockSize must be 1..{MAX_BLOCK_EDGE} per axis, got {text!r}")
    if any(v % multiple_of for v in size):
        raise InvalidInputError(f"BlockSize must be multiples of {multiple_of}, got {text!r}")
    return size


def parse_box(text: str | Sequence[int]) -> Box3:
    """``"X0,Y0,Z0,X1,Y1,Z1"`` (voxels, upper corner exclusive) or a 6-sequence -> Box3."""
    if isinstance(text, str):
        nums = list(parse_ints(text.replace("_", ","), 6, "box X0,Y0,Z0,X1,Y1,Z1", ","))
    else:
        nums = [int(v) for v in text]
        if len(nums) != 6:
            raise InvalidInputError(f"expected a box of six integers, got {list(text)!r}")
    return Box3(Point3(*nums[:3]), Point3(*nums[3:]))


def parse_floats(text: str, n: int, what: str) -> tuple[float, ...]:
    """``n`` comma-separated finite, positive floats."""
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


def plane_box(axes: tuple[int, int], size: Sequence[int], offset: Point3) -> Box3:
    """Return the one-voxel-thick box of a 2-D request: ``size`` along ``axes`` (0 = x)."""
    extent = [1, 1, 1]
    extent[axes[0]], extent[axes[1]] = size[0], size[1]
    return Box3.at(offset, Point3(*extent))
