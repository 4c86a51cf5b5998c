"""Distributed verify: workers re-hash the block objects a version's instances point at.

The driver walks each instance's tree at the version (tree nodes are small and are
verified as they are read: the object store re-hashes every read), collects the
distinct blob ids the entries name, and maps batches of them over the workers.  Each
worker reads its batch from the store and re-hashes it; faults (corrupt or missing
objects) come back by id.  Only ids and fault messages travel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cas_dvid.backends import open_backend
from cas_dvid.batch._dask import results
from cas_dvid.batch._ingest import worker_store
from cas_dvid.datatypes import open_versions
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore, parse_object_id
from cas_dvid.versions.values import value_ref

BATCH = 512
"""Blob ids per task."""


@dataclass(slots=True)
class VerifyResult:
    """What a verify job checked and what it found wrong (hex id -> message)."""

    nodes: int = 0
    objects: int = 0
    nbytes: int = 0
    faults: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every object read back as its id."""
        return not self.faults


def check_batch(store_url: str, ids: Sequence[str]) -> tuple[int, int, dict[str, str]]:
    """One task: read and re-hash each object; return (count, bytes, faults)."""
    store = worker_store(store_url)
    nbytes, faults = 0, {}
    for hex_id in ids:
        try:
            nbytes += store.get(parse_object_id(hex_id)).nbytes
        except CorruptObjectError as exc:
            faults[hex_id] = str(exc)
        except NotFoundError:
            faults[hex_id] = f"object {hex_id} is missing"
    return len(ids), nbytes, faults


def _blob_ids(store: ObjectStore, uuid: str, names: Sequence[str] | None) -> tuple[int, set[str]]:
    versions = open_versions(store)
    at = versions.resolve(uuid)
    insts = [versions.instance(at, n) for n in names] if names else list(at.repo.instances.values())
    nodes, blobs = 0, set()
    for inst in insts:
        root = versions.root_at(at, inst)
        nodes += sum(1 for _ in versions.tree.iter_node_ids(root))
        for _, value in versions.tree.range(root):
            oid = value_ref(value)
            if oid is not None:
                blobs.add(ObjectId(oid).hex())
    return nodes, blobs


def verify(
    client: Any,
    store_url: str,
    uuid: str,
    names: Sequence[str] | None = None,
    *,
    batch: int = BATCH,
    progress: bool = False,
) -> VerifyResult:
    """Re-hash every object the instances (default: all) reach at ``uuid``, on the workers."""
    store = ObjectStore(open_backend(store_url), cache_bytes=0)
    nodes, blobs = _blob_ids(store, uuid, names)
    ids = sorted(blobs)
    chunks = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    result = VerifyResult(nodes=nodes)
    n = len(chunks)
    for count, nbytes, faults in results(
        client, check_batch, [store_url] * n, chunks, progress=progress
    ):
        result.objects += count
        result.nbytes += nbytes
        result.faults.update(faults)
    return result
