"""The one thing a tree needs from storage: load a node by id, store new nodes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from cas_dvid.objects.ids import ObjectId


@runtime_checkable
class NodeStore(Protocol):
    """Where tree nodes live; the tree itself does no I/O.

    Node ids are ``content_id(Kind.TREE, data)``, computed by the tree. An
    adapter over the object store only has to map these two calls onto
    ``get`` and a batched put-if-absent of ``Kind.TREE`` objects.
    """

    def load_node(self, oid: ObjectId) -> bytes:
        """Return the raw bytes of node ``oid``; raise ``NotFoundError`` if absent."""
        ...

    def store_nodes(self, nodes: Mapping[ObjectId, bytes]) -> None:
        """Store new nodes (idempotent: storing a node that exists is a no-op)."""
        ...
