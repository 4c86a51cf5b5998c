"""A dict-backed ``NodeStore`` for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

from cas_dvid.errors import NotFoundError
from cas_dvid.objects.ids import ObjectId, to_hex


class MemoryNodeStore:
    """Nodes in a dict, with counters so tests can assert how much a walk read.

    Attributes:
        nodes: id -> raw node bytes.
        loads: number of ``load_node`` calls so far (reset it freely).
        stores: number of nodes handed to ``store_nodes`` so far.

    """

    def __init__(self) -> None:
        self.nodes: dict[ObjectId, bytes] = {}
        self.loads = 0
        self.stores = 0

    def load_node(self, oid: ObjectId) -> bytes:
        """Return node ``oid``; raise ``NotFoundError`` when it was never stored."""
        self.loads += 1
        try:
            return self.nodes[oid]
        except KeyError:
            raise NotFoundError(f"tree node {to_hex(oid)} not found") from None

    def store_nodes(self, nodes: Mapping[ObjectId, bytes]) -> None:
        """Add ``nodes`` (existing ids are left as they are)."""
        self.stores += len(nodes)
        for oid, data in nodes.items():
            self.nodes.setdefault(oid, data)
