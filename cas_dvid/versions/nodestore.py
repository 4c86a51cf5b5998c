"""Tree nodes kept as TREE objects in the object store."""

from __future__ import annotations

from collections.abc import Mapping

from cas_dvid.objects import Kind, ObjectId, ObjectStore


class ObjectNodeStore:
    """The trees' ``NodeStore`` over an ``ObjectStore`` (verified reads, batched writes)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def load_node(self, oid: ObjectId) -> bytes:
        """Return a node's bytes (verified against its id)."""
        return bytes(self.store.get(oid, Kind.TREE))

    def store_nodes(self, nodes: Mapping[ObjectId, bytes]) -> None:
        """Put new nodes in one batch."""
        self.store.put_known(Kind.TREE, nodes)
