"""Reading objects in stored form: verify, decode tree nodes, list children and blobs."""

from __future__ import annotations

from collections.abc import Mapping

from cas_dvid.datatypes.regions import KeyFilter
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import Kind, ObjectId, content_id, to_hex
from cas_dvid.objects.codec import decode
from cas_dvid.objects.ids import BytesLike
from cas_dvid.trees import Node, Tree
from cas_dvid.versions.values import value_ref

Task = tuple[ObjectId, bytes | None, KeyFilter | None]
"""A subtree to visit: its root id, the key its range starts after, and its filter."""


def verified(oid: ObjectId, stored: BytesLike) -> tuple[Kind, memoryview]:
    """Decode a stored form and re-hash it; ``CorruptObjectError`` names the id on a mismatch."""
    kind, raw = decode(stored, f"object {to_hex(oid)}")
    actual = content_id(kind, raw)
    if actual != oid:
        raise CorruptObjectError(f"checksum mismatch for {to_hex(oid)}: got {to_hex(actual)}")
    return kind, memoryview(raw)


class NodeDecoder:
    """Decodes tree nodes from raw bytes with the trees' own ``Tree.node`` (no store behind)."""

    def __init__(self) -> None:
        self._raw: dict[bytes, bytes] = {}
        self.tree = Tree(self, cache_nodes=0)

    def load_node(self, oid: ObjectId) -> bytes:
        """Serve the bytes handed to ``decode``."""
        try:
            return self._raw.pop(oid)
        except KeyError:
            raise NotFoundError(f"tree node {to_hex(oid)} was not handed over") from None

    def store_nodes(self, nodes: Mapping[ObjectId, bytes]) -> None:
        """Never called: nothing is written through this tree."""
        raise NotImplementedError

    def decode(self, oid: ObjectId, raw: BytesLike) -> Node:
        """Return the node ``oid`` whose raw (verified, decompressed) bytes are ``raw``."""
        self._raw[oid] = bytes(raw)
        try:
            return self.tree.node(oid)
        finally:
            self._raw.pop(oid, None)


def child_tasks(
    node: Node, lo: bytes | None, flt: KeyFilter | None
) -> tuple[list[Task], list[ObjectId]]:
    """Children of an internal node to visit, and those the filter leaves out."""
    out: list[Task] = []
    outside: list[ObjectId] = []
    prev = lo
    for key, child in zip(node.keys, node.vals, strict=True):
        if flt is None or flt.overlaps(prev, key):
            out.append((ObjectId(child), prev, flt))
        else:
            outside.append(ObjectId(child))
        prev = key
    return out, outside


def leaf_blobs(node: Node, flt: KeyFilter | None) -> tuple[list[ObjectId], list[ObjectId]]:
    """Blob ids a leaf's kept entries point at, and those of the entries the filter drops."""
    out: list[ObjectId] = []
    outside: list[ObjectId] = []
    for key, val in zip(node.keys, node.vals, strict=True):
        ref = value_ref(val)
        if ref is None:
            continue
        if flt is None or flt.keep(key):
            out.append(ref)
        else:
            outside.append(ref)
    return out, outside


def node_refs(node: Node) -> list[ObjectId]:
    """Every object a node points at: children, or the blobs of a leaf (gc, verify)."""
    if node.level:
        return [ObjectId(v) for v in node.vals]
    return [r for r in map(value_ref, node.vals) if r is not None]
