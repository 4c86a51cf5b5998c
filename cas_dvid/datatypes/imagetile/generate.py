"""Tile generation: every xy/xz/yz tile of a uint8blk source, at every scale, as objects.

For each slice of each plane, the scale-0 image is the source's slice placed on the
tile grid (black outside the source), padded to whole tiles of the coarsest level so
that each level is exactly ``downsample.downres_2d`` of the one below: a truncating
2x2 mean, as DVID's generator (``Voxels.DownRes``).  Only tiles touching the source
are made.  Tiles are content-addressed: every blank tile is one object, and
regenerating unchanged tiles writes no new objects.

The source box is the source's extents (block-granular: loading at 100,100,2600
gives extents from 96) narrowed to its non-zero voxels when the source fits in one
read (``READ_BUDGET``), so ``multiscale2d``'s tile space starts at the loaded data's
first voxel as the seed describes.  A bigger source is read in slabs and keeps the
extents as they are.

Regeneration: the metadata keeps the source tree's root of the last run; the next
run diffs it against today's (equal subtrees are skipped) and remakes only the tiles
over changed blocks, reading only the slabs under them when the extents are unchanged.
The metadata is written with the run's last tiles, so a run that dies midway leaves
the previous run's (or none) and its rerun redoes the whole change.

Scales: as many as needed until one tile covers the source on every axis, counted in
the instance's tile space (the seed's 250^3 source at TileSize 128 gives 2 for
``multiscale2d``; with DVID's absolute tile space the grid may need one more).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.base import encode_value
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk import BLOCK_CLASS, ImageStore, layout_of
from cas_dvid.datatypes.imagetile.layout import TileSettings, tile_key
from cas_dvid.datatypes.imagetile.store import TileStore, encode_tile, metadata_ops
from cas_dvid.datatypes.jobs import Progress
from cas_dvid.datatypes.kernels.downsample import downres_2d
from cas_dvid.datatypes.kernels.tiles import Plane, parse_plane, plane_axes
from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees.keys import BLOCK_KEY_SIZE, parse_block_key
from cas_dvid.versions import At, Instance

Array = npt.NDArray[Any]
READ_BUDGET = 512 << 20
"""Largest source read held at once; a bigger source is read in slabs, once per plane."""


def parse_planes(text: str | None) -> list[Plane]:
    """Parse ``xy,xz,yz`` (any subset, DVID's shape words); all three when empty."""
    if not text:
        return ["xy", "xz", "yz"]
    return [parse_plane(p) for p in text.split(",") if p]


def count_scales(lo: Sequence[int], hi: Sequence[int], tile: int, origin: Sequence[int]) -> int:
    """Fewest scales so that at the last one a single tile covers ``lo..hi`` on every axis."""
    n = 1
    while any(
        (h - o) // (tile << (n - 1)) != (lv - o) // (tile << (n - 1))
        for lv, h, o in zip(lo, hi, origin, strict=True)
    ):
        n += 1
    return n


class _Plan:
    """Where the tiles of one plane lie: grid, scales, tile ranges (all in voxels)."""

    def __init__(
        self,
        plane: Plane,
        lo: list[int],
        hi: list[int],
        s: TileSettings,
        origin: list[int],
        scales: int,
    ) -> None:
        self.plane, self.lo, self.hi, self.origin, self.scales = plane, lo, hi, origin, scales
        self.t = s.tile_size
        self.fmt = s.format
        self.a, self.b, self.f = plane_axes(plane)
        span = self.t << (scales - 1)
        self.g0 = [o + ((lv - o) // span) * span for lv, o in zip(lo, origin, strict=True)]
        self.g1 = [o + ((h - o) // span + 1) * span for h, o in zip(hi, origin, strict=True)]
        self.dirty: tuple[list[int], list[int]] | None = None
        """Only the tiles over this voxel box (inclusive) are remade, when set."""

    def slices(self) -> range:
        """Voxel numbers, along the fixed axis, of the slices to make."""
        lo, hi = self.dirty or (self.lo, self.hi)
        return range(lo[self.f], hi[self.f] + 1)

    def tile_range(self, axis: int, scale: int) -> range:
        """Tile indices along an in-plane axis touching the source at ``scale``."""
        span = self.t << scale
        o = self.origin[axis]
        lo, hi = self.dirty or (self.lo, self.hi)
        return range((lo[axis] - o) // span, (hi[axis] - o) // span + 1)

    def tiles_per_slice(self) -> int:
        """Tiles one slice makes over every scale."""
        return sum(
            len(self.tile_range(self.a, s)) * len(self.tile_range(self.b, s))
            for s in range(self.scales)
        )

    def slice_tiles(self, data: Array, fixed: int) -> Iterator[tuple[bytes, Array]]:
        """(tree key, pixels) of every tile of the slice at voxel ``fixed``; ``data`` is (b, a)."""
        a, b = self.a, self.b
        img: Array = np.zeros((self.g1[b] - self.g0[b], self.g1[a] - self.g0[a]), np.uint8)
        r0, c0 = self.lo[b] - self.g0[b], self.lo[a] - self.g0[a]
        img[r0 : r0 + data.shape[0], c0 : c0 + data.shape[1]] = data
        t = self.t
        for scale in range(self.scales):
            if scale:
                img = downres_2d(img, img.shape[1] // 2, img.shape[0] // 2)
            for tb in self.tile_range(b, scale):
                y = (self.origin[b] + tb * (t << scale) - self.g0[b]) >> scale
                for ta in self.tile_range(a, scale):
                    x = (self.origin[a] + ta * (t << scale) - self.g0[a]) >> scale
                    coord = [0, 0, 0]
                    coord[a], coord[b], coord[self.f] = ta, tb, fixed - self.origin[self.f]
                    key = tile_key(self.plane, scale, (coord[0], coord[1], coord[2]))
                    yield key, img[y : y + t, x : x + t]


def _slab_view(vol: Array, plane: Plane, i: int) -> Array:
    """Return the (rows, columns) slice ``i`` of a ZYX slab across the plane's fixed axis."""
    if plane == "xy":
        return np.asarray(vol[i])
    if plane == "xz":
        return vol[:, i, :]
    return vol[:, :, i]


class Generator:
    """One generation run of an instance at a version (used by the HTTP job and tools)."""

    def __init__(
        self,
        tiles: TileStore,
        images: ImageStore,
        at: At,
        inst: Instance,
        planes: Sequence[Plane] = ("xy", "xz", "yz"),
        scales: int | None = None,
        *,
        incremental: bool = True,
    ) -> None:
        self.tiles, self.images, self.at, self.inst = tiles, images, at, inst
        self.settings, self.src = tiles.source_settings(at, inst)
        ext = images.extents(at, self.src)
        if ext is None:
            raise InvalidInputError(f"source {self.src.name!r} has no voxels to tile yet")
        if scales is not None and not 1 <= scales <= 16:
            raise InvalidInputError(f"scales must be in 1..16, got {scales}")
        self.extents = [[int(v) for v in ext[0]], [int(v) for v in ext[1]]]
        self._full: Array | None = None
        self.objects: set[bytes] = set()
        self.source_root = images.versions.root_at(at, self.src)
        prev = tiles.metadata_or_none(at, inst) if incremental else None
        self.dirty: tuple[list[int], list[int]] | None = None
        if prev and prev.get("Extents") == self.extents and prev.get("SourceBox"):
            # PERF: same extents as last time: keep its box, read only what changed
            self.lo, self.hi = (list(v) for v in prev["SourceBox"])
            self._layout(planes, scales)
            self.dirty = self._since_last(prev, inside=True)
        if self.dirty is None:
            self.lo, self.hi = (list(v) for v in self.extents)
            if self._voxels() <= READ_BUDGET:
                self._trim(images.read(at, self.src, self._box()))
            self._layout(planes, scales)
            self.dirty = self._since_last(prev, inside=False) if prev else None
        for plan in self.plans:
            plan.dirty = self.dirty

    def _layout(self, planes: Sequence[Plane], scales: int | None) -> None:
        self.origin = list(self.lo) if self.settings.relative else [0, 0, 0]
        need = count_scales(self.lo, self.hi, self.settings.tile_size, self.origin)
        self.scales = scales or need
        self.plans = [
            _Plan(p, self.lo, self.hi, self.settings, self.origin, self.scales)
            for p in dict.fromkeys(planes)
        ]
        self.plane_names = [p.plane for p in self.plans]

    @property
    def total(self) -> int:
        """Tiles this run makes."""
        return sum(p.tiles_per_slice() * len(p.slices()) for p in self.plans)

    def _since_last(
        self, prev: dict[str, Any], *, inside: bool
    ) -> tuple[list[int], list[int]] | None:
        """Return the voxel box the source changed in since the last run, if only that is redone.

        None means a full run: no earlier run, other settings or source box, or the
        earlier source tree is gone, or (``inside``: the box was not re-measured) a
        changed block reaching out of the box.  Uses the tree diff, which skips equal
        subtrees.
        """
        if prev.get("SourceBox") != [self.lo, self.hi]:
            return None
        if len(prev["Levels"]) != self.scales or prev.get("Planes") != self.plane_names:
            return None
        if prev["Levels"]["0"]["TileSize"][0] != self.settings.tile_size:
            return None
        block = layout_of(self.src).block
        lo, hi = list(self.hi), list(self.lo)
        try:
            old = ObjectId(bytes.fromhex(prev["SourceRoot"]))
            for key, _, _ in self.tiles.tree.diff(old, self.source_root):
                if key[:1] != BLOCK_CLASS or len(key) != 1 + BLOCK_KEY_SIZE:
                    continue
                _, bz, by, bx = parse_block_key(key[1:])
                for ax, (c, edge) in enumerate(((bx, block.x), (by, block.y), (bz, block.z))):
                    if inside and not self.lo[ax] <= c * edge <= (c + 1) * edge - 1 <= self.hi[ax]:
                        return None
                    lo[ax] = min(lo[ax], max(self.lo[ax], c * edge))
                    hi[ax] = max(hi[ax], min(self.hi[ax], (c + 1) * edge - 1))
        except NotFoundError:
            return None
        return lo, hi

    def metadata(self) -> dict[str, Any]:
        """DVID's metadata document for this run (``Origin`` added for multiscale2d)."""
        t = self.settings.tile_size
        res = layout_of(self.src).voxel_size
        levels = {
            str(s): {"Resolution": [r * (1 << s) for r in res], "TileSize": [t, t, t]}
            for s in range(self.scales)
        }
        doc: dict[str, Any] = {
            "MinTileCoord": [(v - o) // t for v, o in zip(self.lo, self.origin, strict=True)],
            "MaxTileCoord": [(v - o) // t for v, o in zip(self.hi, self.origin, strict=True)],
            "Levels": levels,
        }
        if self.settings.relative:
            doc["Origin"] = self.origin
        doc.update(
            SourceRoot=self.source_root.hex(),
            SourceBox=[self.lo, self.hi],
            Extents=self.extents,
            Planes=self.plane_names,
        )
        return doc

    def _voxels(self) -> int:
        return math.prod(h - lv + 1 for lv, h in zip(self.lo, self.hi, strict=True))

    def _trim(self, vol: Array) -> None:
        """Narrow the source box from the (block-granular) extents to its non-zero voxels."""
        self._full = vol
        nz = [
            np.flatnonzero(vol.any(axis=tuple(i for i in range(3) if i != ax))) for ax in (2, 1, 0)
        ]
        if not all(len(n) for n in nz):
            return
        first, last = [int(n[0]) for n in nz], [int(n[-1]) for n in nz]
        self._full = vol[first[2] : last[2] + 1, first[1] : last[1] + 1, first[0] : last[0] + 1]
        self.lo, self.hi = (
            [lv + f for lv, f in zip(self.lo, first, strict=True)],
            [lv + la for lv, la in zip(self.lo, last, strict=True)],
        )

    def _slab_ranges(self, f: int, budget: int = READ_BUDGET) -> list[tuple[int, int]]:
        """Voxel ranges (first, last) along axis ``f`` read at once: the changed ones only."""
        if self.dirty is not None:
            dlo, dhi = self.dirty
            return [(dlo[f], dhi[f])] if dlo[f] <= dhi[f] else []
        size = [h - lv + 1 for lv, h in zip(self.lo, self.hi, strict=True)]
        step = max(1, budget * size[f] // (size[0] * size[1] * size[2]))
        return [
            (first, min(self.hi[f], first + step - 1))
            for first in range(self.lo[f], self.hi[f] + 1, step)
        ]

    def _box(self, f: int = 0, first: int | None = None, last: int | None = None) -> Box3:
        lo, hi = list(self.lo), [h + 1 for h in self.hi]
        if first is not None and last is not None:
            lo[f], hi[f] = first, last + 1
        return Box3(Point3(*lo), Point3(*hi))

    def tasks(self, plan: _Plan, budget: int = READ_BUDGET) -> list[TileTask]:
        """Return one plane's part of the run as slab tasks (each: ``make_tiles`` of a slab)."""
        out = []
        wanted = plan.slices()
        for first, last in self._slab_ranges(plan.f, budget):
            todo = range(max(wanted.start, first), min(wanted.stop, last + 1))
            if todo:
                out.append(TileTask(plan, self._box(plan.f, first, last), first, tuple(todo)))
        return out

    def _local(self, tasks: list[TileTask]) -> Iterator[dict[bytes, bytes]]:
        """Run tasks here: one slab read each (or the volume already read), tiles on the pool."""
        for task in tasks:
            f = task.plan.f
            if self._full is not None:
                vol = self._full
                first = self.lo[f]
            else:
                vol, first = self.images.read(self.at, self.src, task.box), task.first
            yield make_tiles(self.tiles.store, task.plan, vol, first, task.slices)

    def run(
        self,
        progress: Progress | None = None,
        mapper: TileMapper | None = None,
        task_bytes: int | None = None,
    ) -> dict[str, int]:
        """Make and store every tile (or those over the change); return counts.

        ``mapper`` runs the slab tasks and yields each one's tree entries; by default
        here.  The Dask job (``cas_dvid.batch.tiles``) passes one running them on
        workers.  Each plane is one write (or one per ``FLUSH_TILES`` tiles); the
        metadata comes with the last one.
        """
        if self.dirty is not None and self.dirty[0][0] > self.dirty[1][0]:
            return {"Tiles": 0, "Objects": 0}  # the source did not change
        done = 0
        run_tasks = mapper or self._local
        budget = task_bytes or (READ_BUDGET if mapper is None else TASK_BUDGET)
        ops: dict[bytes, bytes | None] = {}
        for plan in self.plans:
            plane = plan.plane
            tasks = self.tasks(plan, budget)
            for part in run_tasks(tasks):
                ops.update(part)
                done += len(part)
                if len(ops) >= FLUSH_TILES:
                    self._flush(plane, ops)
                if progress:
                    progress(done)
            if plan is not self.plans[-1]:
                self._flush(plane, ops)
        # NOTE: the metadata (which records the source root this run tiled) lands with
        # the run's last tiles: a run killed before has not marked the source as tiled,
        # so its rerun remakes what this one did not finish instead of finding no change.
        self._flush(self.plane_names[-1] if self.plans else "metadata", ops, last=True)
        return {"Tiles": done, "Objects": len(self.objects)}

    def _flush(self, plane: str, ops: dict[bytes, bytes | None], *, last: bool = False) -> None:
        self.objects.update(v for v in ops.values() if v is not None)
        if last:
            ops.update(metadata_ops(self.metadata()))
        if ops:
            self.tiles.versions.write(self.at, self.inst, ops, f"generate {plane}")
        ops.clear()


FLUSH_TILES = 1 << 16
"""Tile entries held before a write (a plane is one write unless it has more)."""
TASK_BUDGET = 32 << 20
"""Source bytes one Dask task reads: small slabs, so the planes spread over the workers."""


@dataclass(frozen=True, slots=True)
class TileTask:
    """One slab of one plane: the source box to read and the slices to make."""

    plan: _Plan
    box: Box3
    first: int
    """Voxel, along the plane's fixed axis, of the slab's first slice."""
    slices: tuple[int, ...]


TileMapper = Callable[[list[TileTask]], Iterable[dict[bytes, bytes]]]


def make_tiles(
    store: ObjectStore, plan: _Plan, vol: Array, first: int, slices: Sequence[int]
) -> dict[bytes, bytes]:
    """Encode and put the tiles of ``slices`` of slab ``vol`` (ZYX, starting at ``first``).

    The one place tiles become objects: the server job and the Dask workers both call
    it, so their trees are identical.  Slices are spread over the store's pool.
    """
    todo = [v - first for v in slices]
    chunks = max(1, min(len(todo), 4 * store.threads))
    parts = [todo[i::chunks] for i in range(chunks)]

    def work(idx: list[int]) -> dict[bytes, bytes]:
        ops: dict[bytes, bytes] = {}
        for i in idx:
            for key, px in plan.slice_tiles(_slab_view(vol, plan.plane, i), first + i):
                ops[key] = encode_value(store, encode_tile(px, plan.fmt))[0]
        return ops

    out: dict[bytes, bytes] = {}
    for part in store.map(work, parts):
        out.update(part)
    return out


def start_job(gen: Generator) -> dict[str, Any]:
    """Run ``gen`` on a thread, its status kept in the tile service; return the first status."""
    fields = {"Total": gen.total, "Tiles": 0, "Objects": 0, "Scales": gen.scales}
    return gen.tiles.jobs.start((gen.at.uuid, gen.inst.name), fields, gen.run)
