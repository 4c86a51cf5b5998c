"""Which tree entries a transfer keeps: a general predicate on (instance, tree key).

A filter answers two questions, so the walk can prune whole subtrees:

- ``keep(key)``: does the entry at ``key`` belong to the selection?
- ``overlaps(lo, hi)``: may any key in ``(lo, hi]`` be kept?  (``lo=None`` is
  unbounded.)  It may say True when unsure, never False when a kept key could be
  there: a subtree it rejects is skipped with everything below it.

``BoxFilter`` keeps the blocks (``b"\\x17" + block_key``) that intersect a voxel box
and every entry of another class (extents, metadata).  A ROI filter plugs in the
same way: one ``keep`` per block, one ``overlaps`` per key range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cas_dvid.errors import InvalidInputError
from cas_dvid.trees.keys import BLOCK_KEY_SIZE, block_key, parse_block_key
from cas_dvid.versions import Instance

BLOCK_CLASS = b"\x17"
_BLOCK_TREE_KEY = 1 + BLOCK_KEY_SIZE
DEFAULT_BLOCK_SIZE = (32, 32, 32)
SPATIAL_TYPES = frozenset({"labelmap", "labelarray", "multichan16", "rgba8blk"})


@dataclass(frozen=True, slots=True)
class Box:
    """Voxels ``lo`` (inclusive) to ``hi`` (exclusive), each in x, y, z order."""

    lo: tuple[int, int, int]
    hi: tuple[int, int, int]

    def __post_init__(self) -> None:
        if any(a >= b for a, b in zip(self.lo, self.hi, strict=True)):
            raise InvalidInputError(
                f"box {self.text()} is empty: each X1,Y1,Z1 must exceed X0,Y0,Z0"
            )

    def text(self) -> str:
        """``X0,Y0,Z0,X1,Y1,Z1`` as the CLI takes it."""
        return ",".join(map(str, (*self.lo, *self.hi)))

    def to_json(self) -> list[int]:
        """``[x0, y0, z0, x1, y1, z1]``."""
        return [*self.lo, *self.hi]

    def blocks(
        self, size: tuple[int, int, int], scale: int = 0
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """First and last block (inclusive, x y z) touched at ``scale`` (each scale halves)."""
        f = 1 << scale
        first = tuple((v // f) // b for v, b in zip(self.lo, size, strict=True))
        last = tuple(((v - 1) // f) // b for v, b in zip(self.hi, size, strict=True))
        return first, last

    def intersect(self, other: Box) -> Box | None:
        """The overlap, or None."""
        lo = tuple(max(a, b) for a, b in zip(self.lo, other.lo, strict=True))
        hi = tuple(min(a, b) for a, b in zip(self.hi, other.hi, strict=True))
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            return None
        return Box(lo, hi)  # type: ignore[arg-type]

    def contains(self, other: Box) -> bool:
        """Whether ``other`` lies inside this box."""
        return all(a <= b for a, b in zip(self.lo, other.lo, strict=True)) and all(
            a >= b for a, b in zip(self.hi, other.hi, strict=True)
        )


def parse_box(text: str | list[int] | tuple[int, ...]) -> Box:
    """``"X0,Y0,Z0,X1,Y1,Z1"`` (voxels, upper corner exclusive) or a 6-list -> Box."""
    if isinstance(text, str):
        parts = text.replace("_", ",").split(",")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
    else:
        nums = [int(v) for v in text]
    if len(nums) != 6:
        raise InvalidInputError(f"expected a box X0,Y0,Z0,X1,Y1,Z1 of six integers, got {text!r}")
    return Box((nums[0], nums[1], nums[2]), (nums[3], nums[4], nums[5]))


def parse_block_size(text: str | None) -> tuple[int, int, int]:
    """An instance's ``blocksize`` setting ``"x,y,z"`` (default 32,32,32)."""
    if not text:
        return DEFAULT_BLOCK_SIZE
    try:
        x, y, z = (int(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"BlockSize must be three integers x,y,z, got {text!r}") from None
    if min(x, y, z) <= 0:
        raise InvalidInputError(f"BlockSize must be positive, got {text!r}")
    return x, y, z


def is_spatial(inst: Instance) -> bool:
    """Whether an instance keeps voxel blocks under ``b"\\x17"`` keys."""
    return inst.typename.endswith("blk") or inst.typename in SPATIAL_TYPES


@runtime_checkable
class KeyFilter(Protocol):
    """Selects tree entries of one instance; see the module docstring."""

    def keep(self, key: bytes) -> bool:
        """Whether the entry at ``key`` is selected."""
        ...

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Whether any key in ``(lo, hi]`` may be selected (True when unsure)."""
        ...


class BoxFilter:
    """Blocks intersecting a voxel box, at every scale; entries of other classes always."""

    def __init__(self, box: Box, block_size: tuple[int, int, int] = DEFAULT_BLOCK_SIZE) -> None:
        self.box = box
        self.block_size = block_size
        self._ranges: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def __repr__(self) -> str:
        return f"BoxFilter({self.box.text()}, block {self.block_size})"

    def _range(self, scale: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        r = self._ranges.get(scale)
        if r is None:
            r = self._ranges[scale] = self.box.blocks(self.block_size, scale)
        return r

    def keep_block(self, scale: int, z: int, y: int, x: int) -> bool:
        """Whether block (x, y, z) at ``scale`` touches the box."""
        (x0, y0, z0), (x1, y1, z1) = self._range(scale)
        return x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1

    def keep(self, key: bytes) -> bool:
        """Blocks in the box and every non-block entry."""
        if len(key) != _BLOCK_TREE_KEY or key[:1] != BLOCK_CLASS:
            return True
        return self.keep_block(*parse_block_key(key[1:]))

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Exact for key ranges within one scale's blocks; True otherwise."""
        if not _is_block(hi) or lo is None or lo < BLOCK_CLASS:
            return True  # entries of other classes may sit in the range
        if not _is_block(lo):
            return True
        s_lo, *_ = parse_block_key(lo[1:])
        s_hi, *_ = parse_block_key(hi[1:])
        if s_lo != s_hi:
            return True
        first = self._first_after(lo[1:])
        return first is not None and BLOCK_CLASS + first <= hi

    def _first_after(self, lo: bytes) -> bytes | None:
        """The smallest key of a kept block at ``lo``'s scale that sorts after ``lo``."""
        s, z, y, x = parse_block_key(lo)
        (x0, y0, z0), (x1, y1, z1) = self._range(s)
        if z < z0:
            return block_key(s, z0, y0, x0)
        if z > z1:
            return None
        if y < y0:
            return block_key(s, z, y0, x0)
        if y <= y1 and x < x1:
            return block_key(s, z, y, max(x + 1, x0))
        # no kept block is left in this row: the box's next row, if any
        if y < y1:
            return block_key(s, z, y + 1, x0)
        if z < z1:
            return block_key(s, z + 1, y0, x0)
        return None


def _is_block(key: bytes) -> bool:
    return len(key) == _BLOCK_TREE_KEY and key[:1] == BLOCK_CLASS


class UnionFilter:
    """Entries any of several filters keeps (a partial version pulled in several boxes)."""

    def __init__(self, filters: Sequence[KeyFilter]) -> None:
        self.filters = list(filters)

    def keep(self, key: bytes) -> bool:
        """Kept by any."""
        return any(f.keep(key) for f in self.filters)

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Overlapped by any."""
        return any(f.overlaps(lo, hi) for f in self.filters)


class IntersectFilter:
    """Entries every one of several filters keeps (a box asked of a partial source)."""

    def __init__(self, filters: Sequence[KeyFilter]) -> None:
        self.filters = list(filters)

    def keep(self, key: bytes) -> bool:
        """Kept by all."""
        return all(f.keep(key) for f in self.filters)

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Overlapped by all (may say True when no key is in every one: allowed)."""
        return all(f.overlaps(lo, hi) for f in self.filters)


def instance_filter(inst: Instance, box: Box | None) -> KeyFilter | None:
    """The filter a transfer applies to ``inst``: None (everything) unless a box applies."""
    if box is None or not is_spatial(inst):
        return None
    return BoxFilter(box, parse_block_size(inst.settings.get("blocksize")))
