"""Partial versions: which region of an instance a box-filtered transfer brought over.

A ``--box`` pull keeps the version's ids (commit, tree roots) but stores only the
blocks that touch the box, so a read elsewhere would find neither block nor error.
The receiving repo record remembers the region in ``Repo.properties["cas.partial"]``::

    {node_uuid: {data_uuid: [[x0, y0, z0, x1, y1, z1], ...] | null}}

a list of voxel boxes (upper corner exclusive; blocks touching any box are present),
or ``null`` for "complete here" when an ancestor is partial.  A node without an
entry inherits from its parents (a version made locally from a partial one is
partial too); a merge of partial parents holds only where all of them do.

Read paths call ``partial_box(versions, at, inst)`` (no I/O: the record is in ``at``)
or ``require_covered(at, inst, lo, hi)``, which raises a clear 400-style error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cas_dvid.errors import InvalidInputError
from cas_dvid.sync.filters import (
    Box,
    BoxFilter,
    KeyFilter,
    UnionFilter,
    parse_block_size,
    parse_box,
)
from cas_dvid.versions import At, Instance, Repo, VersionService

PROPERTY = "cas.partial"


class OutsideRegionError(InvalidInputError):
    """A read reached outside the region a partial (box-filtered) version holds."""


@dataclass(frozen=True, slots=True)
class Region:
    """The part of an instance a partial version holds: the blocks touching ``boxes``."""

    boxes: tuple[Box, ...]
    block_size: tuple[int, int, int]

    def text(self) -> str:
        """Boxes as ``X0,Y0,Z0,X1,Y1,Z1`` joined by ``;``."""
        return "; ".join(b.text() for b in self.boxes)

    def has_block(self, x: int, y: int, z: int) -> bool:
        """Whether block (x, y, z) (scale 0, block coordinates) was transferred."""
        for b in self.boxes:
            (x0, y0, z0), (x1, y1, z1) = b.blocks(self.block_size)
            if x0 <= x <= x1 and y0 <= y <= y1 and z0 <= z <= z1:
                return True
        return False

    def covers(self, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> bool:
        """Whether every block touched by voxels ``lo``..``hi`` (x y z, hi exclusive) is held."""
        want = Box(lo, hi)
        (x0, y0, z0), (x1, y1, z1) = want.blocks(self.block_size)
        spans = [b.blocks(self.block_size) for b in self.boxes]
        if any(
            s[0][0] <= x0
            and s[0][1] <= y0
            and s[0][2] <= z0
            and s[1][0] >= x1
            and s[1][1] >= y1
            and s[1][2] >= z1
            for s in spans
        ):
            return True
        if (x1 - x0 + 1) * (y1 - y0 + 1) * (z1 - z0 + 1) > 1 << 20:
            return False  # NOTE: a huge read spanning several boxes: refuse rather than loop
        return all(
            self.has_block(x, y, z)
            for z in range(z0, z1 + 1)
            for y in range(y0, y1 + 1)
            for x in range(x0, x1 + 1)
        )


def _entries(repo: Repo) -> dict[str, dict[str, Any]]:
    doc = repo.properties.get(PROPERTY)
    return doc if isinstance(doc, dict) else {}


def _boxes(value: Any) -> tuple[Box, ...] | None:
    if value is None:
        return None
    return tuple(parse_box(b) for b in value)


def _intersect(a: tuple[Box, ...], b: tuple[Box, ...]) -> tuple[Box, ...]:
    out = [x.intersect(y) for x in a for y in b]
    return tuple(o for o in out if o is not None)


def region_boxes(repo: Repo, uuid: str, data_uuid: str) -> tuple[Box, ...] | None:
    """Boxes held by ``data_uuid`` at node ``uuid`` (None: complete), inherited as documented."""
    entries = _entries(repo)
    memo: dict[str, tuple[Box, ...] | None] = {}
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
        acc: tuple[Box, ...] | None = held[0] if held else None
        for more in held[1:]:
            acc = _intersect(acc, more) if acc is not None else None
        memo[u] = acc
    return memo[uuid]


def partial_region(repo: Repo, uuid: str, inst: Instance) -> Region | None:
    """The region ``inst`` holds at ``uuid``, or None when the version is complete there."""
    boxes = region_boxes(repo, uuid, inst.data_uuid)
    if boxes is None:
        return None
    return Region(boxes, parse_block_size(inst.settings.get("blocksize")))


def region_filter(repo: Repo, uuid: str, inst: Instance) -> KeyFilter | None:
    """The filter selecting what ``inst`` holds at ``uuid`` (None: it is complete there)."""
    boxes = region_boxes(repo, uuid, inst.data_uuid)
    if boxes is None:
        return None
    size = parse_block_size(inst.settings.get("blocksize"))
    return UnionFilter([BoxFilter(b, size) for b in boxes])


def partial_box(versions: VersionService | None, at: At, inst: Instance) -> Region | None:
    """The read-path hook: the region ``inst`` holds at ``at``, or None if it is complete.

    ``versions`` is unused (everything needed is in ``at.repo``); it is accepted so
    callers holding a service can pass it as they pass it elsewhere.
    """
    del versions
    uuid = at.uuid if inst.versioned else at.repo.root
    return partial_region(at.repo, uuid, inst)


def require_covered(
    at: At, inst: Instance, lo: tuple[int, int, int], hi: tuple[int, int, int]
) -> None:
    """Raise ``OutsideRegionError`` (a 400) unless voxels ``lo``..``hi`` (x y z, hi exclusive) are held."""
    region = partial_box(None, at, inst)
    if region is None or region.covers(lo, hi):
        return
    want = Box(lo, hi).text()
    raise OutsideRegionError(
        f"data {inst.name!r} at version {at.uuid} was pulled partially (region {region.text()}); "
        f"voxels {want} reach outside it: pull them first"
    )


def record_transfer(
    repo: Repo, uuid: str, data_uuid: str, boxes: tuple[Box, ...] | None, *, existed: bool
) -> None:
    """Note in ``repo`` that ``data_uuid`` at ``uuid`` arrived within ``boxes`` (None: whole).

    ``existed``: the receiving record already held this node and instance before the
    transfer, so what arrives adds to what it had (a complete version stays complete).
    """
    entries = dict(_entries(repo))
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
