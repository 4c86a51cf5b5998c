"""Which tree entries of an instance lie in a region: a predicate on tree keys.

A filter answers two questions, so a walk (a transfer, a verify) can prune whole
subtrees:

- ``keep(key)``: does the entry at ``key`` belong to the selection?
- ``overlaps(lo, hi)``: may any key in ``(lo, hi]`` be kept?  (``lo=None`` is
  unbounded.)  It may say True when unsure, never False when a kept key could be
  there: a subtree it rejects is skipped with everything below it.

A spatial datatype names its block keys with ``Spatial``: a class byte, then the
13-byte ``block_key(scale, z, y, x)`` of trees/keys.py.  ``BoxFilter`` keeps the
blocks (at every scale) that touch a voxel box, and every entry of another class
(extents, counters, indices).  A ROI filter plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.trees.keys import BLOCK_KEY_SIZE, KeyRange, block_key, box_ranges, parse_block_key


@dataclass(frozen=True, slots=True)
class Spatial:
    """How a spatial instance keys its blocks: ``block_class + block_key(scale, z, y, x)``."""

    block_class: bytes
    block: Point3

    def key(self, x: int, y: int, z: int, scale: int = 0) -> bytes:
        """Tree key of block (x, y, z) at ``scale``."""
        return self.block_class + block_key(scale, z, y, x)

    def coord(self, key: bytes) -> tuple[int, int, int, int] | None:
        """``(scale, x, y, z)`` of a block key of this instance, None for any other key."""
        if len(key) != 1 + BLOCK_KEY_SIZE or key[:1] != self.block_class:
            return None
        scale, z, y, x = parse_block_key(key[1:])
        return scale, x, y, z

    def ranges(self, first: Point3, last: Point3, scale: int = 0) -> list[KeyRange]:
        """Inclusive key ranges of the blocks ``first``..``last`` (one per z, y row), sorted."""
        c = self.block_class
        return [
            (c + a, c + b)
            for a, b in box_ranges(scale, (first.z, first.y, first.x), (last.z, last.y, last.x))
        ]


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
    """Blocks touching a voxel box, at every scale; entries of other classes always."""

    def __init__(self, box: Box3, spatial: Spatial) -> None:
        self.box = box
        self.spatial = spatial
        self._ranges: dict[int, tuple[Point3, Point3]] = {}

    def __repr__(self) -> str:
        return f"BoxFilter({self.box.text()}, block {tuple(self.spatial.block)})"

    def _range(self, scale: int) -> tuple[Point3, Point3]:
        r = self._ranges.get(scale)
        if r is None:
            r = self._ranges[scale] = self.box.blocks(self.spatial.block, scale)
        return r

    def keep_block(self, scale: int, x: int, y: int, z: int) -> bool:
        """Whether block (x, y, z) at ``scale`` touches the box."""
        lo, hi = self._range(scale)
        return lo.x <= x <= hi.x and lo.y <= y <= hi.y and lo.z <= z <= hi.z

    def keep(self, key: bytes) -> bool:
        """Blocks in the box and every non-block entry."""
        coord = self.spatial.coord(key)
        return coord is None or self.keep_block(*coord)

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Exact for key ranges within one scale's blocks; True otherwise."""
        if lo is None:
            return True
        a, b = self.spatial.coord(lo), self.spatial.coord(hi)
        if a is None or b is None or a[0] != b[0]:
            return True  # entries of other classes (or scales) may sit in the range
        first = self._first_after(*a)
        return first is not None and self.spatial.block_class + first <= hi

    def _first_after(self, s: int, x: int, y: int, z: int) -> bytes | None:
        """Return the smallest key of a kept block at scale ``s`` after block (x, y, z)."""
        lo, hi = self._range(s)
        if z < lo.z:
            return block_key(s, lo.z, lo.y, lo.x)
        if z > hi.z:
            return None
        if y < lo.y:
            return block_key(s, z, lo.y, lo.x)
        if y <= hi.y and x < hi.x:
            return block_key(s, z, y, max(x + 1, lo.x))
        # no kept block is left in this row: the box's next row, if any
        if y < hi.y:
            return block_key(s, z, y + 1, lo.x)
        if z < hi.z:
            return block_key(s, z + 1, lo.y, lo.x)
        return None


class NoBlocksFilter:
    """Every entry but blocks (a version whose ROI is empty: its settings and indices travel)."""

    def __init__(self, spatial: Spatial) -> None:
        self.spatial = spatial

    def keep(self, key: bytes) -> bool:
        """Entries of other classes only."""
        return self.spatial.coord(key) is None

    def overlaps(self, lo: bytes | None, hi: bytes) -> bool:
        """Say whether the range may hold non-block entries (it may unless within one scale)."""
        if lo is None:
            return True
        a, b = self.spatial.coord(lo), self.spatial.coord(hi)
        return a is None or b is None or a[0] != b[0]


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
