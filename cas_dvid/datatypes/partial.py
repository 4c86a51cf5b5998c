"""Partial versions: which region of an instance a box-filtered transfer brought over.

A ``--box`` pull keeps the version's ids (commit, tree roots) but stores only the
blocks that touch the box, so a read elsewhere would find neither block nor error.
The receiving repo record remembers the region in ``Repo.properties["cas.partial"]``::

    {node_uuid: {data_uuid: [[x0, y0, z0, x1, y1, z1], ...] | null}}

a list of voxel boxes (upper corner exclusive; blocks touching any box are present),
or ``null`` for "complete here" when an ancestor is partial.  A node without an
entry inherits from its parents (a version made locally from a partial one is
partial too); a merge of partial parents holds only where all of them do.

Read paths call ``require_covered(at, inst, spatial, box)`` (no I/O: the record is in
``at``), which raises a clear 400-style error; ``partial_region`` says what is held.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cas_dvid.datatypes.geometry import Box3, block_box, parse_box
from cas_dvid.datatypes.regions import BoxFilter, KeyFilter, NoBlocksFilter, Spatial, UnionFilter
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance, Repo

PROPERTY = "cas.partial"
MAX_CHECKED_BLOCKS = 1 << 20


class OutsideRegionError(InvalidInputError):
    """A read reached outside the region a partial (box-filtered) version holds."""


@dataclass(frozen=True, slots=True)
class Region:
    """The part of an instance a partial version holds: the blocks touching ``boxes``."""

    boxes: tuple[Box3, ...]
    spatial: Spatial

    def text(self) -> str:
        """Boxes as ``X0,Y0,Z0,X1,Y1,Z1`` joined by ``;``."""
        return "; ".join(b.text() for b in self.boxes)

    def has_block(self, x: int, y: int, z: int) -> bool:
        """Whether block (x, y, z) (scale 0, block coordinates) was transferred."""
        for b in self.boxes:
            lo, hi = b.blocks(self.spatial.block)
            if lo.x <= x <= hi.x and lo.y <= y <= hi.y and lo.z <= z <= hi.z:
                return True
        return False

    def covers(self, want: Box3) -> bool:
        """Whether every block the voxels of ``want`` touch is held."""
        block = self.spatial.block
        first, last = want.blocks(block)
        for b in self.boxes:
            lo, hi = b.blocks(block)
            if lo.x <= first.x and lo.y <= first.y and lo.z <= first.z:
                if hi.x >= last.x and hi.y >= last.y and hi.z >= last.z:
                    return True
        n = (last.x - first.x + 1) * (last.y - first.y + 1) * (last.z - first.z + 1)
        if n > MAX_CHECKED_BLOCKS:
            return False  # NOTE: a huge read spanning several boxes: refuse rather than loop
        return all(
            self.has_block(x, y, z)
            for z in range(first.z, last.z + 1)
            for y in range(first.y, last.y + 1)
            for x in range(first.x, last.x + 1)
        )


def _entries(repo: Repo) -> dict[str, dict[str, Any]]:
    doc = repo.properties.get(PROPERTY)
    return doc if isinstance(doc, dict) else {}


def _boxes(value: Any) -> tuple[Box3, ...] | None:
    if value is None:
        return None
    return tuple(parse_box(b) for b in value)


def _intersect(a: tuple[Box3, ...], b: tuple[Box3, ...]) -> tuple[Box3, ...]:
    out = [x.intersect(y) for x in a for y in b]
    return tuple(o for o in out if o is not None)


def region_boxes(repo: Repo, uuid: str, data_uuid: str) -> tuple[Box3, ...] | None:
    """Boxes held by ``data_uuid`` at node ``uuid`` (None: complete), inherited as documented."""
    entries = _entries(repo)
    memo: dict[str, tuple[Box3, ...] | None] = {}
    order = [uuid]
    seen = {uuid}
    i = 0
    while i < len(order):  # collect the ancestors we may need, nearest first
        u = order[i]
        i += 1
        if data_uuid in entries.get(u, {}):
            continue
        for p in repo.nodes[u].parents if u in repo.nodes else []:
            if p in repo.nodes and p not in seen:
                seen.add(p)
                order.append(p)
    for u in reversed(order):
        own = entries.get(u, {})
        if data_uuid in own:
            memo[u] = _boxes(own[data_uuid])
            continue
        held = [b for b in (memo[p] for p in repo.nodes[u].parents if p in memo) if b is not None]
        acc: tuple[Box3, ...] | None = held[0] if held else None
        for more in held[1:]:
            acc = _intersect(acc, more) if acc is not None else None
        memo[u] = acc
    return memo[uuid]


def partial_region(repo: Repo, uuid: str, inst: Instance, spatial: Spatial) -> Region | None:
    """Return the region ``inst`` holds at ``uuid``, or None when the version is complete there."""
    boxes = region_boxes(repo, uuid, inst.data_uuid)
    return None if boxes is None else Region(boxes, spatial)


def region_filter(
    repo: Repo, uuid: str, inst: Instance, spatial: Spatial | None
) -> KeyFilter | None:
    """Return the filter selecting what ``inst`` holds at ``uuid`` (None: it is complete there)."""
    return boxes_filter(region_boxes(repo, uuid, inst.data_uuid), spatial)


def boxes_filter(boxes: tuple[Box3, ...] | None, spatial: Spatial | None) -> KeyFilter | None:
    """Return the filter keeping blocks that touch any of ``boxes`` (None: everything).

    What a ``--box`` or ``--roi`` transfer applies to an instance.
    """
    if boxes is None or spatial is None:
        return None
    if not boxes:
        return NoBlocksFilter(spatial)
    if len(boxes) == 1:
        return BoxFilter(boxes[0], spatial)
    return UnionFilter([BoxFilter(b, spatial) for b in boxes])


def require_covered(at: At, inst: Instance, spatial: Spatial, box: Box3) -> None:
    """Raise ``OutsideRegionError`` (a 400) unless every block ``box`` touches is held."""
    uuid = at.uuid if inst.versioned else at.repo.root
    region = partial_region(at.repo, uuid, inst, spatial)
    if region is None or region.covers(box):
        return
    raise _outside(at, inst, region, box)


def require_blocks(
    at: At, inst: Instance, spatial: Spatial, coords: Iterable[tuple[int, int, int]]
) -> None:
    """``require_covered`` for blocks (x, y, z at scale 0), the region looked up once.

    PERF: specificblocks of 32 blocks looked the region up 32 times (0.6 ms a request).
    """
    uuid = at.uuid if inst.versioned else at.repo.root
    region = partial_region(at.repo, uuid, inst, spatial)
    if region is None:
        return
    for x, y, z in coords:
        if not region.has_block(x, y, z):
            raise _outside(at, inst, region, block_box(spatial.block, x, y, z))


def _outside(at: At, inst: Instance, region: Region, box: Box3) -> OutsideRegionError:
    return OutsideRegionError(
        f"data {inst.name!r} at version {at.uuid} was pulled partially (region {region.text()}); "
        f"voxels {box.text()} reach outside it: pull them first"
    )


def record_transfer(
    repo: Repo, uuid: str, data_uuid: str, boxes: tuple[Box3, ...] | None, *, existed: bool
) -> None:
    """Note in ``repo`` that ``data_uuid`` at ``uuid`` arrived within ``boxes`` (None: whole).

    ``existed``: the receiving record already held this node and instance before the
    transfer, so what arrives adds to what it had (a complete version stays complete).
    """
    entries = dict(_entries(repo))
    if boxes is None and not entries:
        return  # a whole transfer into a repo with no partial version: nothing to note
    own = dict(entries.get(uuid, {}))
    if boxes is None:
        parents = [p for p in repo.nodes[uuid].parents if p in repo.nodes]
        if any(region_boxes(repo, p, data_uuid) is not None for p in parents):
            own[data_uuid] = None
        else:
            own.pop(data_uuid, None)
    elif existed:
        have = region_boxes(repo, uuid, data_uuid)
        if have is None:
            return
        more = [b for b in boxes if not any(h.contains(b) for h in have)]
        if not more:
            return
        own[data_uuid] = [b.to_json() for b in (*have, *more)]
    else:
        own[data_uuid] = [b.to_json() for b in boxes]
    if own:
        entries[uuid] = own
    else:
        entries.pop(uuid, None)
    if entries:
        repo.properties[PROPERTY] = entries
    else:
        repo.properties.pop(PROPERTY, None)
