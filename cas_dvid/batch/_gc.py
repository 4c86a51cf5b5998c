"""gc with its mark phase on Dask: workers read the reachable tree nodes, the driver decides.

``sync.gc.collect`` lists the store, gathers the roots and marks level by level
from them; here each level's objects go out in batches, a worker reads them from
the store (re-hashing each, as every read does) and sends back only what each one
points at, and the driver keeps the marked set and does the sweep.  Which objects
are read, and so the report and the deletions, are the same as a local run's.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cas_dvid.backends import open_backend
from cas_dvid.batch._ingest import worker_store
from cas_dvid.objects import ObjectStore
from cas_dvid.sync.gc import GcReport, Item, Outcome, collect, object_refs
from cas_dvid.sync.walk import NodeDecoder

BATCH = 256
"""Objects per task."""


def refs_batch(store_url: str, items: Sequence[Item], commits: bool) -> list[Outcome]:
    """One task: read each object and return what it points at."""
    store = worker_store(store_url)
    decoder = NodeDecoder()
    return [object_refs(store, decoder, item, commits) for item in items]


def collect_on(client: Any, store_url: str, **options: Any) -> GcReport:
    """Run ``sync.gc.collect`` on ``store_url`` with the mark phase's reads on ``client``."""
    store = ObjectStore(open_backend(store_url), cache_bytes=0)

    def mapper(items: list[Item], commits: bool) -> Iterator[Outcome]:
        if len(items) < BATCH:  # a small level: a round trip to the workers costs more
            decoder = NodeDecoder()
            yield from (object_refs(store, decoder, it, commits) for it in items)
            return
        batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
        n = len(batches)
        futures = client.map(refs_batch, [store_url] * n, batches, [commits] * n, pure=False)
        for future in futures:
            yield from future.result()
            future.release()

    return collect(store, mapper=mapper, **options)
