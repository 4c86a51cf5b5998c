"""Distributed label indexing: after a ``noindexing`` ingest, index the stored blocks.

flyemflows ingests segmentation into DVID with ``noindexing=true`` and builds the label
index afterwards, because indexing inside the ingest is the slow part.  Here the
workers count each stored block's supervoxels (from the encoded Block, no voxel
materialised) and send back only the counts; the driver applies the plan every
labelmap write uses (``labelmap.writes``: index entries per body and block, body
summaries), telling it the blocks are the ones already stored so it does not read
them again.  The result equals what indexing POST blocks would have built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cas_dvid.backends import open_backend
from cas_dvid.batch._ingest import worker_store
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.counts import block_label_counts
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.datatypes.labelmap.store import LabelStore
from cas_dvid.datatypes.labelmap.writes import NewBlock, nonzero
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Kind, ObjectId, ObjectStore
from cas_dvid.trees.keys import parse_block_key, prefix_range
from cas_dvid.versions.values import value_ref

BATCH = 256
"""Blocks per task."""

Coord = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class IndexResult:
    """What a job did: blocks indexed, supervoxels seen, tasks run."""

    blocks: int
    supervoxels: int
    tasks: int


def count_batch(store_url: str, items: Sequence[tuple[Coord, bytes]]) -> list[tuple[Coord, Any]]:
    """One task: the supervoxel counts (label 0 left out) of each stored block."""
    store = worker_store(store_url)
    out = []
    for coord, oid in items:
        counts = nonzero(block_label_counts(store.get(ObjectId(oid), Kind.BLOB)))
        out.append((coord, (oid, counts)))
    return out


def _stored_blocks(store: ObjectStore, uuid: str, name: str) -> list[tuple[Coord, bytes]]:
    versions = open_versions(store)
    at = versions.resolve(uuid)
    inst = versions.instance(at, name)
    root = versions.root_at(at, inst)
    out = []
    for key, value in versions.tree.range(root, *prefix_range(K.LABEL_BLOCK_CLASS)):
        scale, z, y, x = parse_block_key(key[1:])
        oid = value_ref(value)
        if scale == 0 and oid is not None:
            out.append(((x, y, z), bytes(oid)))
    return out


def index(client: Any, store_url: str, uuid: str, name: str) -> IndexResult:
    """Build the label index of labelmap ``name`` at ``uuid`` from its scale-0 blocks on Dask."""
    store = ObjectStore(open_backend(store_url), cache_bytes=0)
    versions = open_versions(store)
    at = versions.resolve(uuid)
    inst = versions.instance(at, name)
    lay = layout_of(inst)
    if not lay.indexed:
        raise InvalidInputError(f"{name!r} keeps no label index (IndexedLabels is false)")
    versions.check_writable(at, inst, "index")
    items = _stored_blocks(store, uuid, name)
    batches = [items[i : i + BATCH] for i in range(0, len(items), BATCH)]
    futures = client.map(count_batch, [store_url] * len(batches), batches, pure=False, retries=3)
    blocks: dict[Coord, NewBlock] = {}
    for future in futures:
        for coord, (oid, counts) in future.result():
            blocks[coord] = NewBlock(ObjectId(oid), counts)
        future.release()
    labels = LabelStore.on(versions)
    labels.writer.write_encoded(at, inst, dict(sorted(blocks.items())), "index", reindex=True)
    svs = len({int(s) for b in blocks.values() for s in b.counts[0]})
    return IndexResult(len(blocks), svs, len(batches))
