"""Distributed tile generation: workers read slabs, encode and put tiles; the driver writes.

The driver plans the run as the server's ``generate`` does (``imagetile.generate``:
planes, scales, and after an edit only the slabs over changed blocks, from the tree
diff), cuts each plane into slab tasks of ``TASK_BUDGET`` source bytes, and maps them
over the workers.  A worker reads its slab from the store, makes its tiles with the
server job's own ``make_tiles`` and returns the tree entries; the driver writes
each plane once.  Tiles are content-addressed, so the tree equals a server run's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cas_dvid.backends import open_backend
from cas_dvid.batch._ingest import worker_store
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.imageblk import ImageStore
from cas_dvid.datatypes.imagetile import TileStore
from cas_dvid.datatypes.imagetile.generate import Generator, TileTask, make_tiles, parse_planes
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import Instance


@dataclass(frozen=True, slots=True)
class TilesResult:
    """What a job did: tiles made, distinct tile objects, scales, tasks run."""

    tiles: int
    objects: int
    scales: int
    tasks: int


def run_task(store_url: str, uuid: str, src: Instance, task: TileTask) -> dict[bytes, bytes]:
    """One task: read the slab at the version, make and put its tiles; return their entries."""
    store = worker_store(store_url)
    versions = open_versions(store)
    at = versions.resolve(uuid)
    vol = ImageStore.on(versions).read(at, src, task.box)
    return make_tiles(store, task.plan, vol, task.first, task.slices)


def generate(
    client: Any,
    store_url: str,
    uuid: str,
    name: str,
    planes: str | None = None,
    scales: int | None = None,
    *,
    progress: bool = False,
    task_bytes: int | None = None,
) -> TilesResult:
    """Generate the tiles of imagetile ``name`` at ``uuid`` on a dask.distributed ``client``."""
    store = ObjectStore(open_backend(store_url), cache_bytes=0)
    versions = open_versions(store)
    at = versions.resolve(uuid)
    gen = Generator(
        TileStore.on(versions),
        ImageStore.on(versions),
        at,
        versions.instance(at, name),
        parse_planes(planes),
        scales,
    )
    tasks = 0

    def mapper(batch: list[TileTask]) -> Iterator[dict[bytes, bytes]]:
        from dask.distributed import as_completed
        from dask.distributed import progress as show_progress

        nonlocal tasks
        tasks += len(batch)
        n = len(batch)
        futures = client.map(
            run_task, [store_url] * n, [at.uuid] * n, [gen.src] * n, batch, pure=False, retries=3
        )
        if progress and futures:
            show_progress(futures)  # type: ignore[no-untyped-call]
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            result: dict[bytes, bytes] = future.result()
            future.release()
            yield result

    counts = gen.run(mapper=mapper, task_bytes=task_bytes)
    return TilesResult(counts["Tiles"], counts["Objects"], gen.scales, tasks)
