"""Distributed grayscale pyramids: workers compute and put level blocks, the driver writes.

The driver plans each level as the server's ``downres`` does (``imageblk.pyramid``:
the tree diff since the level's marker names the parents to recompute), maps the
batches of parents over the workers, and makes one write per level from the tree
entries they return.  Each worker reads its batch's children from the source
level's immutable root and runs ``parent_entries``, the same kernel as the server
job, so the levels' roots equal a single-process run's.  Levels depend on each
other, so they run one after another; the batches of a level run in parallel.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cas_dvid.backends import open_backend
from cas_dvid.batch._ingest import worker_store
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.imageblk.pyramid import BatchResult, ParentBatch, Pyramid, parent_entries
from cas_dvid.datatypes.imageblk.store import ImageStore
from cas_dvid.objects import ObjectStore
from cas_dvid.trees import Tree

TASK_BYTES = 16 << 20
"""Children one task reads (8 parents of 64^3 uint8 blocks): small, so levels spread."""

_trees: dict[str, Tree] = {}
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class DownresResult:
    """What a job did: levels built, blocks written and deleted, tasks run."""

    levels: int
    blocks: int
    deleted: int
    tasks: int


def _worker_tree(url: str) -> tuple[ObjectStore, Tree]:
    store = worker_store(url)
    with _lock:
        if url not in _trees:
            _trees[url] = open_versions(store).tree
        return store, _trees[url]


def run_batch(store_url: str, batch: ParentBatch) -> BatchResult:
    """One task: compute and put a batch's level blocks; return their entries."""
    store, tree = _worker_tree(store_url)
    return parent_entries(store, tree, batch)


def downres(
    client: Any,
    store_url: str,
    uuid: str,
    name: str,
    levels: int | None = None,
    *,
    progress: bool = False,
    task_bytes: int = TASK_BYTES,
) -> DownresResult:
    """Build or refresh the pyramid ``NAME_1..NAME_N`` of uint8blk ``name`` at ``uuid`` on Dask."""
    store = ObjectStore(open_backend(store_url), cache_bytes=0)
    versions = open_versions(store)
    at = versions.resolve(uuid)
    pyr = Pyramid(ImageStore.on(versions), at, versions.instance(at, name), levels)
    tasks = 0

    def mapper(batches: list[ParentBatch]) -> Iterator[BatchResult]:
        from dask.distributed import progress as show_progress

        nonlocal tasks
        tasks += len(batches)
        futures = client.map(run_batch, [store_url] * len(batches), batches, pure=False, retries=3)
        if progress and futures:
            show_progress(futures)  # type: ignore[no-untyped-call]
        for future in futures:
            result: BatchResult = future.result()
            future.release()
            yield result

    counts = pyr.run(mapper=mapper, batch_bytes=task_bytes)
    return DownresResult(counts["Levels"], counts["Blocks"], counts["Deleted"], tasks)
