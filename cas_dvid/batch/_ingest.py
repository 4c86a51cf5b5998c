"""Distributed ingest: workers put block objects, the driver swaps the head once.

The volume is cut into block-aligned slabs (full blocks deep in Z, tiles in XY).
Each task reads its slab from the source, encodes the blocks with the very
functions POST raw uses (``imageblk.blockobjects.encode_blocks``,
``labelmap.ingest.encode_arrays``), puts them (put-if-absent, so a rerun of a task
is harmless) and returns only the tree entries, or for labels the block ids and
supervoxel counts.  The driver collects those small results, then makes one write
at the version: for voxels the sorted entries plus the grown extents, for labels
the same plan POST raw applies (blocks, label index, extents, max label).  The
tree is history independent, so the root equals the single-process loader's.

A killed driver leaves only objects (garbage for gc) and no moved head; a rerun
puts the same objects again (no-ops) and finishes the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.backends import open_backend
from cas_dvid.batch._dask import results
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk import layout_of as image_layout
from cas_dvid.datatypes.imageblk.blockobjects import encode_blocks
from cas_dvid.datatypes.imageblk.layout import EXTENTS_KEY
from cas_dvid.datatypes.imageblk.store import ImageStore, grow_extents
from cas_dvid.datatypes.labelmap.ingest import encode_arrays
from cas_dvid.datatypes.labelmap.layout import layout_of as label_layout
from cas_dvid.datatypes.labelmap.store import LabelStore
from cas_dvid.datatypes.labelmap.writes import NewBlock
from cas_dvid.datatypes.sources import Source, open_source
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees import EMPTY_ROOT
from cas_dvid.versions import At, Instance

Array = npt.NDArray[Any]
Coord = tuple[int, int, int]
Slab = tuple[int, int, int, int, int, int]
"""An aligned target box ``(x0, x1, y0, y1, z0, z1)`` in voxels."""

LABEL_TYPES = ("labelmap", "labelarray", "labelblk")
SLAB_BYTES = 32 << 20
"""Voxel bytes a task reads at most (one slab), so worker memory stays a few slabs."""
TILE_EDGE = 1024
"""XY tile edge in voxels (rounded to blocks) for sources wider than that."""


@dataclass(frozen=True, slots=True)
class SlabTask:
    """What one worker needs for one slab: where the store and source are, and the box."""

    store_url: str
    source: str
    inst: Instance
    offset: tuple[int, int, int]  # x, y, z of the source's first voxel in the instance
    slab: Slab
    uuid: str  # the version, read where the source covers a block only in part
    base: bytes  # the instance's root when the job started (empty: nothing to read)
    labels: bool


@dataclass(slots=True)
class SlabResult:
    """A slab's blocks: tree entries (voxels) or put label blocks with their counts."""

    slab: Slab
    entries: list[tuple[bytes, bytes]] = field(default_factory=list)
    labels: dict[Coord, NewBlock] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What a job did: blocks written, voxels read, and the instance's new root."""

    blocks: int
    voxels: int
    root: ObjectId
    tasks: int


# -- worker side -------------------------------------------------------------------------

_open_lock = threading.Lock()
_stores: dict[str, ObjectStore] = {}
_sources: dict[str, Source] = {}


def worker_store(url: str) -> ObjectStore:
    """Return the worker process's store for ``url`` (opened once, no object cache)."""
    with _open_lock:
        if url not in _stores:
            _stores[url] = ObjectStore(open_backend(url), cache_bytes=0)
        return _stores[url]


def _worker_source(spec: str) -> Source:
    with _open_lock:
        if spec not in _sources:
            _sources[spec] = open_source(spec)
        return _sources[spec]


def _slab_volume(task: SlabTask, store: ObjectStore, dtype: np.dtype[Any]) -> tuple[Array, int]:
    """Return the slab's voxels (source, then stored voxels past its end) and count."""
    src = _worker_source(task.source)
    (ox, oy, oz), (nz, ny, nx) = task.offset, src.shape
    x0, x1, y0, y1, z0, z1 = task.slab
    sx0, sx1, sy0, sy1 = max(x0, ox), min(x1, ox + nx), max(y0, oy), min(y1, oy + ny)
    sz0, sz1 = max(z0, oz), min(z1, oz + nz)
    part = src.read(sz0 - oz, sz1 - oz, sy0 - oy, sy1 - oy, sx0 - ox, sx1 - ox)
    part = part.astype(dtype, copy=False)
    if (sx0, sx1, sy0, sy1, sz0, sz1) == task.slab:
        return part, part.size
    vol = _stored(task, store, dtype)
    vol[sz0 - z0 : sz1 - z0, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = part
    return vol, part.size


def _stored(task: SlabTask, store: ObjectStore, dtype: np.dtype[Any]) -> Array:
    """Return what the instance holds in the slab (zeros where unwritten)."""
    x0, x1, y0, y1, z0, z1 = task.slab
    if task.base == bytes(EMPTY_ROOT):
        return np.zeros((z1 - z0, y1 - y0, x1 - x0), dtype)
    versions = open_versions(store)
    at = versions.resolve(task.uuid)
    box = Box3(Point3(x0, y0, z0), Point3(x1, y1, z1))
    if task.labels:
        vol = LabelStore.on(versions).read_box(at, task.inst, box, supervoxels=True)
        return vol.astype(dtype, copy=False)
    return ImageStore.on(versions).read(at, task.inst, box).astype(dtype, copy=False)


def _blocks(vol: Array, slab: Slab, block: Point3) -> dict[Coord, Array]:
    """Split an aligned slab into its blocks with one copy (each block then contiguous)."""
    x0, _, y0, _, z0, _ = slab
    nz, ny, nx = vol.shape
    gz, gy, gx = nz // block.z, ny // block.y, nx // block.x
    cut = vol.reshape(gz, block.z, gy, block.y, gx, block.x).transpose(0, 2, 4, 1, 3, 5)
    cubes = np.ascontiguousarray(cut)
    bx, by, bz = x0 // block.x, y0 // block.y, z0 // block.z
    return {
        (bx + ix, by + iy, bz + iz): cubes[iz, iy, ix]
        for iz in range(gz)
        for iy in range(gy)
        for ix in range(gx)
    }


def run_slab(task: SlabTask) -> SlabResult:
    """One task: read, encode and put a slab's blocks; return only entries or counts."""
    store = worker_store(task.store_url)
    if task.labels:
        lay = label_layout(task.inst)
        vol, _ = _slab_volume(task, store, np.dtype(np.uint64))
        blocks = _blocks(vol, task.slab, lay.block)
        coords = list(blocks)
        new = encode_arrays(store, [blocks[c] for c in coords])
        return SlabResult(task.slab, labels=dict(zip(coords, new, strict=True)))
    ilay = image_layout(task.inst)
    vol, _ = _slab_volume(task, store, ilay.vtype.dtype)
    entries = encode_blocks(store, ilay, _blocks(vol, task.slab, ilay.block))
    return SlabResult(task.slab, entries=sorted(entries))


# -- planning ----------------------------------------------------------------------------


def _floor(v: int, b: int) -> int:
    return (v // b) * b


def _ceil(v: int, b: int) -> int:
    return -((-v) // b) * b


def plan_slabs(
    shape: tuple[int, int, int],
    offset: tuple[int, int, int],
    block: Point3,
    itemsize: int,
    slab_bytes: int = SLAB_BYTES,
) -> list[Slab]:
    """Aligned boxes covering the source at ``offset``: XY tiles, whole blocks deep in Z."""
    (nz, ny, nx), (ox, oy, oz) = shape, offset
    lo = (_floor(ox, block.x), _floor(oy, block.y), _floor(oz, block.z))
    hi = (_ceil(ox + nx, block.x), _ceil(oy + ny, block.y), _ceil(oz + nz, block.z))
    tx = min(hi[0] - lo[0], max(block.x, _floor(TILE_EDGE, block.x)))
    ty = min(hi[1] - lo[1], max(block.y, _floor(TILE_EDGE, block.y)))
    layers = max(1, slab_bytes // max(1, tx * ty * block.z * itemsize))
    tz = layers * block.z
    return [
        (x0, min(x0 + tx, hi[0]), y0, min(y0 + ty, hi[1]), z0, min(z0 + tz, hi[2]))
        for z0 in range(lo[2], hi[2], tz)
        for y0 in range(lo[1], hi[1], ty)
        for x0 in range(lo[0], hi[0], tx)
    ]


# -- driver side -------------------------------------------------------------------------


def _check_dtype(source: Source, dtype: np.dtype[Any], labels: bool) -> None:
    widen = labels and source.dtype.kind == "u" and source.dtype.itemsize <= 8
    if source.dtype != dtype and not widen:
        raise InvalidInputError(
            f"source voxels are {source.dtype}, the instance stores {dtype}"
            + (" (label volumes: any unsigned integer type)" if labels else "")
        )


def ingest(
    client: Any,
    store_url: str,
    uuid: str,
    name: str,
    source_spec: str,
    offset: tuple[int, int, int] = (0, 0, 0),
    *,
    slab_bytes: int = SLAB_BYTES,
    progress: bool = False,
    on_result: Callable[[Slab], None] | None = None,
) -> IngestResult:
    """Load ``source_spec`` into instance ``name`` at ``uuid`` on a dask.distributed ``client``.

    Workers open ``store_url`` themselves; the driver reads only the source's shape
    and type, gathers the tasks' small results and makes one write at the version.
    ``on_result`` is called with each slab as its result arrives (progress, tests).
    """
    store = ObjectStore(open_backend(store_url), cache_bytes=0)
    versions = open_versions(store)
    at = versions.resolve(uuid)
    inst = versions.instance(at, name)
    versions.check_writable(at, inst, "load")
    labels = inst.typename in LABEL_TYPES
    source = open_source(source_spec)
    if labels:
        block, dtype = label_layout(inst).block, np.dtype(np.uint64)
    else:
        ilay = image_layout(inst)
        block, dtype = ilay.block, ilay.vtype.dtype
    _check_dtype(source, dtype, labels)
    base = bytes(versions.root_at(at, inst))
    slabs = plan_slabs(source.shape, offset, block, dtype.itemsize, slab_bytes)
    tasks = [
        SlabTask(store_url, source_spec, inst, offset, s, at.uuid, base, labels) for s in slabs
    ]
    results = _run(client, tasks, progress, on_result)
    voxels = int(np.prod(source.shape))
    if labels:
        return _finish_labels(versions, at, inst, results, voxels, len(tasks))
    return _finish_image(versions, at, inst, results, voxels, len(tasks))


def _run(
    client: Any, tasks: list[SlabTask], progress: bool, on_result: Callable[[Slab], None] | None
) -> Iterator[SlabResult]:
    for result in results(client, run_slab, tasks, progress=progress):
        if on_result is not None:
            on_result(result.slab)
        yield result


def _finish_image(
    versions: Any, at: At, inst: Instance, results: Iterator[SlabResult], voxels: int, n: int
) -> IngestResult:
    ops: dict[bytes, Any] = {}
    lo, hi = [1 << 62] * 3, [-(1 << 62)] * 3
    for r in results:
        ops.update(r.entries)
        x0, x1, y0, y1, z0, z1 = r.slab
        lo = [min(a, b) for a, b in zip(lo, (x0, y0, z0), strict=True)]
        hi = [max(a, b) for a, b in zip(hi, (x1, y1, z1), strict=True)]
    blocks = len(ops)
    if not ops:
        return IngestResult(0, voxels, versions.root_at(at, inst), n)
    ops[EXTENTS_KEY] = grow_extents(Box3(Point3(*lo), Point3(*hi)))
    root = versions.write(at, inst, dict(sorted(ops.items())), "load")
    return IngestResult(blocks, voxels, root, n)


def _finish_labels(
    versions: Any, at: At, inst: Instance, results: Iterator[SlabResult], voxels: int, n: int
) -> IngestResult:
    blocks: dict[Coord, NewBlock] = {}
    for r in results:
        blocks.update(r.labels)
    labels = LabelStore.on(versions)
    labels.writer.write_encoded(at, inst, dict(sorted(blocks.items())), "load")
    return IngestResult(len(blocks), voxels, versions.root_at(at, inst), n)


@contextmanager
def open_client(address: str | None = None, workers: int = 2) -> Iterator[Any]:
    """Yield a dask.distributed Client of the scheduler at ``address``, or of a local cluster.

    The local cluster has ``workers`` single-threaded worker processes (block encoding
    and hashing release the GIL only in part, so processes scale better than threads).
    """
    from dask.distributed import Client, LocalCluster

    make_client: Callable[..., Any] = Client  # NOTE: distributed ships no type hints
    make_cluster: Callable[..., Any] = LocalCluster
    if address:
        with make_client(address) as client:
            client.run(warm_up)
            yield client
        return
    with (
        make_cluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0") as cluster,
        make_client(cluster) as client,
    ):
        client.run(warm_up)
        yield client


def warm_up() -> None:
    """Import what tasks use (zarr, the codecs) once per worker, before the first task."""
    import zarr  # noqa: F401 - imported for its side effect: the import cost is paid here

    from cas_dvid.datatypes.labelmap import codec  # noqa: F401
