"""Grayscale multiscale 3-D: ``downres`` builds ``NAME_1``, ``NAME_2``... by 2x2x2 means.

The convention is the one DVID's clients use for imageblk data, which has no scales
inside one instance: neuroglancer's dvid datasource (``src/datasource/dvid/frontend.ts``)
counts levels by looking for instances ``NAME_1``, ``NAME_2``... and reads level N from
``NAME_N`` in that level's own voxel grid (voxel ``v`` of level N covers voxels
``2**N * v ..`` of ``NAME``).  So each level is an ordinary uint8blk (or uint16blk)
instance with the source's block size and compression and ``VoxelSize`` doubled per
level; any client reads it, and push/pull/clone carry it like any instance.
``GET NAME/raw/...?scale=N`` is served from ``NAME_N``.

Rule: ``kernels.downsample.mean_octants``: each level-N block is the round-half-up
mean of the 2x2x2 cells of its 8 level-(N-1) children; a missing child reads as 0,
and a parent with no stored children is deleted, so deletions propagate.

Incremental: each level's tree keeps the root of the tree it was computed from
(``PYRAMID_SOURCE_KEY``).  The next run diffs that root against today's (equal
subtrees are skipped) and recomputes only the parents of changed blocks; with no
earlier run, or the earlier tree gone, every block is recomputed.  Batches of
parents (``parent_entries``: a bounded number of children in memory) put their
blocks; then one write per level swaps in the entries with the level's marker, so
a crash mid-level leaves the old marker and the rerun redoes that level's changes
(all object writes are idempotent).  A new level's instance is added to the repo just
before that write, so a first run killed midway leaves no empty ``NAME_N`` behind.
The batches run here or on Dask workers (``cas_dvid.batch.downres``) with the same
result.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.base import inline_payload, inline_value
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk.blockobjects import block_array, encode_blocks
from cas_dvid.datatypes.imageblk.layout import (
    BLOCK_CLASS,
    EXTENTS_KEY,
    PYRAMID_SOURCE_KEY,
    layout_of,
)
from cas_dvid.datatypes.imageblk.store import ImageStore, grow_extents
from cas_dvid.datatypes.jobs import Progress
from cas_dvid.datatypes.kernels.downsample import mean_octants
from cas_dvid.datatypes.streams import Coord
from cas_dvid.errors import InvalidInputError, LockedError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees import EMPTY_ROOT, Tree
from cas_dvid.trees.keys import prefix_range
from cas_dvid.versions import At, Instance

MAX_LEVELS = 16
BATCH_BYTES = 128 << 20
"""Children held at once while computing a batch of parent blocks."""


def level_name(name: str, level: int) -> str:
    """Return the instance name of pyramid ``level`` of ``name`` (level 0 is ``name``)."""
    return name if level == 0 else f"{name}_{level}"


def start_downres(pyr: Pyramid) -> dict[str, Any]:
    """Run ``pyr`` on a thread, its status in the image service's jobs; return the first status."""
    fields = {"Total": pyr.total, "Levels": pyr.levels, "Blocks": 0, "Deleted": 0}
    return pyr.images.jobs.start((pyr.at.uuid, pyr.inst.name), fields, pyr.run)


def level_instance(at: At, inst: Instance, scale: int) -> Instance:
    """Return the instance serving ``scale=N`` reads of ``inst``; 400 if it was never built."""
    if scale == 0:
        return inst
    name = level_name(inst.name, scale)
    if name not in at.repo.instances:
        raise InvalidInputError(
            f"{inst.name!r} has no scale {scale}: no instance {name!r} (run downres)"
        )
    return at.instance(name)


def levels_needed(extents: tuple[list[int], list[int]] | None, block: Point3) -> int:
    """Fewest levels until one block holds the whole (downsampled) extents on every axis."""
    if extents is None:
        return 0
    lo, hi = extents
    n = 0
    while n < MAX_LEVELS and any(
        (h >> n) // b != (lv >> n) // b for lv, h, b in zip(lo, hi, block, strict=True)
    ):
        n += 1
    return n


class Pyramid:
    """One downres run of a grayscale instance at a version."""

    def __init__(self, images: ImageStore, at: At, inst: Instance, levels: int | None) -> None:
        lay = layout_of(inst)
        if lay.vtype.dtype not in (np.uint8, np.uint16):
            raise InvalidInputError(
                f"downres makes 2x2x2 means of uint8blk or uint16blk data; "
                f"{inst.name!r} is {inst.typename}"
            )
        if any(v % 2 for v in lay.block):
            raise InvalidInputError(
                f"downres needs even block sizes, {inst.name!r} has {lay.block}"
            )
        if at.node.locked:
            raise LockedError(f"cannot downres {inst.name!r} at locked node {at.uuid}")
        if levels is not None and not 1 <= levels <= MAX_LEVELS:
            raise InvalidInputError(f"levels must be 1..{MAX_LEVELS}, got {levels}")
        self.images = images
        self.at = at
        self.inst = inst
        self.extents = images.extents(at, inst)
        self.levels = levels if levels is not None else levels_needed(self.extents, lay.block)
        for level in range(1, self.levels + 1):
            self._existing(at, level)
        n = self._count_blocks(inst)
        self.total = sum(-(-n // 8**k) for k in range(1, self.levels + 1))
        """Parent blocks a full run computes (an estimate: levels below are counted as full)."""

    def _count_blocks(self, inst: Instance) -> int:
        root = self.images.versions.root_at(self.at, inst)
        return sum(1 for _ in self.images.tree.range(root, *prefix_range(BLOCK_CLASS)))

    def _existing(self, at: At, level: int) -> Instance | None:
        """Return the instance of ``level`` if it exists; 400 if it cannot be that level."""
        name = level_name(self.inst.name, level)
        if name not in at.repo.instances:
            return None
        got = at.instance(name)
        src, dst = layout_of(self.inst), layout_of(got)
        if got.typename != self.inst.typename or dst.block != src.block:
            b = src.block
            raise InvalidInputError(
                f"{name!r} exists but is not a {self.inst.typename} with block size "
                f"{b.x},{b.y},{b.z}: it cannot be level {level} of {self.inst.name!r}"
            )
        return got

    def _level(self, level: int) -> tuple[Instance, bool]:
        """Return the instance of ``level`` and whether the repo has it yet.

        A level the repo lacks is planned with the source's settings and added just
        before its first write (``_add_level``): a run killed before that leaves no
        empty level for clients to find (they count levels by the instances there).
        """
        got = self._existing(self.images.versions.resolve(self.at.uuid), level)
        if got is not None:
            return got, True
        settings = dict(self.inst.settings)
        vs = [v * (1 << level) for v in layout_of(self.inst).voxel_size]
        settings["voxelsize"] = ",".join(f"{v:g}" for v in vs)
        name = level_name(self.inst.name, level)
        return Instance(name, self.inst.typename, data_uuid="", settings=settings), False

    def _add_level(self, level: int, planned: Instance) -> tuple[At, Instance]:
        """Add a planned level to the repo (unless a racing run did); return it and the version."""
        got = self._existing(self.images.versions.resolve(self.at.uuid), level)
        if got is None:
            got = self.images.versions.new_instance(
                self.at.uuid, planned.name, planned.typename, settings=planned.settings
            )
        return self.images.versions.resolve(self.at.uuid), got

    def run(
        self,
        progress: Progress | None = None,
        mapper: Mapper | None = None,
        batch_bytes: int = BATCH_BYTES,
    ) -> dict[str, int]:
        """Build or refresh every level; return counts of blocks written and deleted.

        ``mapper`` runs the batches of a level (``parent_entries`` on each) and yields
        their results; by default here, one after another.  The Dask job
        (``cas_dvid.batch.downres``) passes one that runs them on workers, and smaller
        ``batch_bytes`` (children held by one batch) so that there are batches to share.
        """
        done = written = deleted = 0
        src = self.inst
        run_batches = mapper or self._local
        for level in range(1, self.levels + 1):
            dst, stored = self._level(level)
            at = self.images.versions.resolve(self.at.uuid)
            src_root, parents = self._parents(at, src, dst if stored else None)
            lay = layout_of(src)
            per_batch = max(1, batch_bytes // (8 * lay.block_bytes))
            batches = [
                ParentBatch(src, dst, bytes(src_root), tuple(parents[i : i + per_batch]))
                for i in range(0, len(parents), per_batch)
            ]
            entries: list[tuple[bytes, bytes]] = []
            gone: list[Coord] = []
            for got, lost in run_batches(batches):
                entries += got
                gone += lost
                done += len(got) + len(lost)
                if progress:
                    progress(done)
            if not stored:
                at, dst = self._add_level(level, dst)
            self._write_level(at, src, dst, level, src_root, entries, gone)
            written, deleted = written + len(entries), deleted + len(gone)
            src = dst
        return {"Levels": self.levels, "Blocks": written, "Deleted": deleted}

    def _local(self, batches: list[ParentBatch]) -> Iterator[BatchResult]:
        for batch in batches:
            yield parent_entries(self.images.store, self.images.tree, batch)

    def _parents(self, at: At, src: Instance, dst: Instance | None) -> tuple[ObjectId, list[Coord]]:
        """Return ``src``'s root and the level blocks over what changed in it, in key order.

        ``dst``: the level's instance, None when the repo has none yet (a full run).
        """
        images = self.images
        src_root = images.versions.root_at(at, src)
        dst_root = EMPTY_ROOT if dst is None else images.versions.root_at(at, dst)
        spatial = layout_of(src).spatial
        marker = images.tree.get(dst_root, PYRAMID_SOURCE_KEY)
        changed = self._changed(marker, src.name, src_root)
        parents: set[Coord] = set()
        if changed is None:  # a full run: the parents of every child, and every parent
            changed = [k for k, _ in images.tree.range(src_root, *prefix_range(BLOCK_CLASS))]
            for key, _ in images.tree.range(dst_root, *prefix_range(BLOCK_CLASS)):
                coord = spatial.coord(key)
                if coord is not None and coord[0] == 0:
                    parents.add(coord[1:])
        for key in changed:
            coord = spatial.coord(key)
            if coord is not None and coord[0] == 0:
                _, x, y, z = coord
                parents.add((x // 2, y // 2, z // 2))
        return src_root, sorted(parents, key=lambda c: (c[2], c[1], c[0]))

    def _changed(
        self, marker: bytes | None, src_name: str, src_root: ObjectId
    ) -> list[bytes] | None:
        """Keys of ``src`` that changed since the run the marker records; None: recompute all."""
        if marker is None:
            return None
        doc = json.loads(inline_payload(marker))
        if doc.get("Source") != src_name:
            return None
        try:
            old = ObjectId(bytes.fromhex(doc["SourceRoot"]))
            return [k for k, _, _ in self.images.tree.diff(old, src_root)]
        except NotFoundError:
            return None

    def _write_level(
        self,
        at: At,
        src: Instance,
        dst: Instance,
        level: int,
        src_root: ObjectId,
        entries: list[tuple[bytes, bytes]],
        gone: list[Coord],
    ) -> None:
        """One write of a level: its new blocks, deletions, grown extents and source marker.

        The marker lands with the blocks, so a crash before it leaves the old marker and
        the rerun redoes this level's changes (the block objects are already there).
        """
        marker = inline_value(
            json.dumps({"Source": src.name, "SourceRoot": src_root.hex()}).encode()
        )
        ops: dict[bytes, Any] = {layout_of(dst).spatial.key(*c): None for c in gone}
        ops.update(entries)
        if entries:
            lo, hi = self.extents or ([0, 0, 0], [0, 0, 0])
            box = Box3(Point3(*(v >> level for v in lo)), Point3(*((v >> level) + 1 for v in hi)))
            ops[EXTENTS_KEY] = grow_extents(box)
        ops[PYRAMID_SOURCE_KEY] = marker
        self.images.versions.write(at, dst, ops, f"downres level {level}")


@dataclass(frozen=True, slots=True)
class ParentBatch:
    """Level blocks to compute: ``parents`` of ``dst`` from ``src``'s tree at ``src_root``."""

    src: Instance
    dst: Instance
    src_root: bytes
    parents: tuple[Coord, ...]


BatchResult = tuple[list[tuple[bytes, bytes]], list[Coord]]
"""Tree entries of the blocks put, and the parents with no stored child (to delete)."""
Mapper = Callable[[list[ParentBatch]], Iterable[BatchResult]]


def parent_entries(store: ObjectStore, tree: Tree, batch: ParentBatch) -> BatchResult:
    """Compute and put the mean blocks of ``batch``; return their entries and the empty parents.

    Reads only the batch's children, from an immutable root, so any process with the
    store can run it; the server job and the Dask job both call it, so their trees
    are identical.
    """
    lay = layout_of(batch.src)
    keys = [lay.spatial.key(*_child(p, i)) for p in batch.parents for i in range(8)]
    found = tree.get_many(ObjectId(batch.src_root), keys)
    present = [k for k in keys if k in found]
    arrays = dict(
        zip(present, store.map(lambda k: block_array(store, lay, found[k]), present), strict=True)
    )
    blocks: dict[Coord, npt.NDArray[Any]] = {}
    gone: list[Coord] = []
    for n, parent in enumerate(batch.parents):
        octants = [arrays.get(k) for k in keys[8 * n : 8 * n + 8]]
        if all(o is None for o in octants):
            gone.append(parent)
        else:
            blocks[parent] = mean_octants(octants, lay.block_shape)
    return encode_blocks(store, layout_of(batch.dst), blocks), gone


def _child(parent: Coord, i: int) -> Coord:
    """Child ``i`` (offset ``dz, dy, dx`` = bits 2, 1, 0 of ``i``, as ``mean_octants``)."""
    x, y, z = parent
    return 2 * x + (i & 1), 2 * y + (i >> 1 & 1), 2 * z + (i >> 2 & 1)
