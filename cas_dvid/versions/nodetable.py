r"""Locked version nodes in a Merkle tree, so DAG operations cost O(log n), not O(n).

A repo record (one JSON ref) holds what changes: the repo's metadata, its instances
and its open nodes.  Locked nodes never change again except for gaining children,
so they live in a prolly tree named by the record (``locked``):

- ``n`` + uuid -> the node's JSON (without children; inline or a blob);
- ``c`` + parent + ``\0`` + child -> empty: the children index, of locked children
  (an open node's parents are in the record, so newversion leaves the table alone);
- ``b`` + branch + ``\0`` + uuid -> empty: the branch index;
- ``v`` + VersionID (u32 BE) -> uuid: the VersionID index (sync keeps them unique).

newversion and branch change only the record; commit moves one node into the table
(a few entries, O(log n) tree nodes); reading a node is one lookup.  Listing the whole
DAG (repo info) is one scan of the tree.  Equal tables are equal trees, so two
stores holding the same versions name the same table.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, MutableMapping
from dataclasses import asdict
from typing import Protocol

from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees import EMPTY_ROOT, Tree
from cas_dvid.trees.keys import prefix_range
from cas_dvid.versions.node import Node
from cas_dvid.versions.values import decode_values, encode_value

NODE = b"n"
CHILD = b"c"
BRANCH = b"b"
VERSION = b"v"
SEP = b"\x00"

Puts = dict[bytes, bytes]


class Blobs(Protocol):
    """Where node JSON too long to sit in a leaf goes (an object store, a sync peer)."""

    def decode(self, values: list[bytes]) -> list[bytes]:
        """Return the payloads of tree values (inline, or blobs fetched in one batch)."""
        ...

    def encode(self, payload: bytes) -> bytes:
        """Return the tree value for ``payload`` (storing a blob when it is long)."""
        ...


class StoreBlobs:
    """``Blobs`` over an object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def decode(self, values: list[bytes]) -> list[bytes]:
        """Return the payloads of tree values."""
        return decode_values(self.store, values)

    def encode(self, payload: bytes) -> bytes:
        """Return the tree value for ``payload``."""
        return encode_value(self.store, payload)[0]


class NodeTable:
    """Reads of one node tree (immutable: a root never changes)."""

    def __init__(self, tree: Tree, blobs: Blobs, root: ObjectId = EMPTY_ROOT) -> None:
        self.tree = tree
        self.blobs = blobs
        self.root = root

    def get(self, uuid: str) -> Node | None:
        """Return the locked node ``uuid`` with its children, or None."""
        value = self.tree.get(self.root, NODE + uuid.encode())
        if value is None:
            return None
        node = decode_node(self.blobs.decode([value])[0])
        node.children = self.children(uuid)
        return node

    def children(self, uuid: str) -> list[str]:
        """Return the children of ``uuid``, in uuid order."""
        prefix = CHILD + uuid.encode() + SEP
        start, end = prefix_range(prefix)
        return [k[len(prefix) :].decode() for k, _ in self.tree.range(self.root, start, end)]

    def on_branch(self, branch: str) -> list[str]:
        """Return the uuids of locked nodes on ``branch``."""
        prefix = BRANCH + branch.encode() + SEP
        start, end = prefix_range(prefix)
        return [k[len(prefix) :].decode() for k, _ in self.tree.range(self.root, start, end)]

    def with_version(self, version_id: int) -> str | None:
        """Return the uuid of the locked node with ``version_id``, if any."""
        value = self.tree.get(self.root, VERSION + version_id.to_bytes(4, "big"))
        return None if value is None else self.blobs.decode([value])[0].decode()

    def uuids(self) -> Iterator[str]:
        """Iterate the uuids of every locked node."""
        start, end = prefix_range(NODE)
        for key, _ in self.tree.range(self.root, start, end):
            yield key[1:].decode()

    def all(self) -> dict[str, Node]:
        """Return every locked node with its children (one scan of each index)."""
        start, end = prefix_range(NODE)
        entries = list(self.tree.range(self.root, start, end))
        payloads = self.blobs.decode([v for _, v in entries])
        nodes = {
            k[1:].decode(): decode_node(p) for (k, _), p in zip(entries, payloads, strict=True)
        }
        start, end = prefix_range(CHILD)
        for key, _ in self.tree.range(self.root, start, end):
            parent, _, child = key[1:].partition(SEP)
            if parent.decode() in nodes:
                nodes[parent.decode()].children.append(child.decode())
        return nodes


def encode_node(node: Node) -> bytes:
    """Return the canonical JSON of a locked node (children live in the index)."""
    doc = asdict(node)
    doc.pop("children")
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_node(raw: bytes) -> Node:
    """Return the node of ``encode_node`` bytes."""
    try:
        return Node(**json.loads(raw))
    except (ValueError, TypeError) as exc:
        raise CorruptObjectError(f"unreadable node record: {exc}") from exc


class RepoNodes(MutableMapping[str, Node]):
    """A repo's nodes: open ones in the record, locked ones in its node table.

    Nodes handed out may be changed in place (inside a record update); ``changes``
    says what the table must gain for them: locked nodes new or changed, children
    added, branch entries of newly locked nodes.
    """

    def __init__(self, open_nodes: dict[str, Node], table: NodeTable | None = None) -> None:
        self.open = open_nodes
        self.table = table
        self._held: dict[str, Node] = {}  # locked nodes handed out (or added), by uuid
        self._before: dict[str, tuple[bytes, frozenset[str]]] = {}  # their stored form
        self._stored_children: dict[str, list[str]] = {}  # children in the table

    def _load(self, uuid: str) -> Node | None:
        node = self._held.get(uuid)
        if node is None and self.table is not None:
            node = self.table.get(uuid)
            if node is not None:
                self._stored_children[uuid] = node.children
                self._held[uuid] = node
                self._before[uuid] = (encode_node(node), frozenset())
        if node is not None:
            node.children = self._children(uuid)
        return node

    def _children(self, uuid: str) -> list[str]:
        """Children of ``uuid``: those in the table, and nodes here naming it as a parent."""
        here = [u for u, n in (*self.open.items(), *self._held.items()) if uuid in n.parents]
        return list(dict.fromkeys([*self._stored_children.get(uuid, []), *here]))

    def __getitem__(self, uuid: str) -> Node:
        node = self.open.get(uuid)
        if node is None:
            node = self._load(uuid)
        if node is None:
            raise KeyError(uuid)
        return node

    def __setitem__(self, uuid: str, node: Node) -> None:
        if node.locked:
            self.open.pop(uuid, None)
            self._held[uuid] = node
        else:
            self.open[uuid] = node

    def __delitem__(self, uuid: str) -> None:
        raise TypeError("version nodes are never deleted one by one; delete the repo")

    def __contains__(self, uuid: object) -> bool:
        return isinstance(uuid, str) and (uuid in self.open or self._load(uuid) is not None)

    def __iter__(self) -> Iterator[str]:
        seen = set(self.open) | set(self._held)
        yield from self.open
        yield from (u for u in self._held if u not in self.open)
        if self.table is not None:
            yield from (u for u in self.table.uuids() if u not in seen)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def items_all(self) -> dict[str, Node]:
        """Return every node (one scan of the table; held nodes as they are now)."""
        out = self.table.all() if self.table is not None else {}
        for u, node in out.items():
            if u not in self._held:
                self._stored_children[u] = node.children
                self._held[u] = node
                self._before[u] = (encode_node(node), frozenset())
        every = {**{u: self._held[u] for u in out}, **self._held, **self.open}
        children: dict[str, list[str]] = {u: list(self._stored_children.get(u, [])) for u in every}
        for u, n in every.items():
            for p in n.parents:
                if p in children and u not in children[p]:
                    children[p].append(u)
        for u, n in every.items():
            n.children = children[u]
        return every

    def version_taken(self, version_id: int) -> bool:
        """Tell whether a node of this repo already has ``version_id``."""
        nodes = [*self.open.values(), *self._held.values()]
        if any(n.version_id == version_id for n in nodes):
            return True
        return self.table is not None and self.table.with_version(version_id) is not None

    def on_branch(self, branch: str) -> list[Node]:
        """Return the nodes on ``branch``, open and locked."""
        name = "" if branch == "master" else branch
        locked = self.table.on_branch(name) if self.table is not None else []
        out = {u: self[u] for u in locked}
        out.update({u: n for u, n in self._held.items() if n.branch == name})
        out.update({u: n for u, n in self.open.items() if n.branch == name})
        return [out[u] for u in sorted(out)]

    def changes(self) -> tuple[Puts, list[bytes]]:
        """Return the raw table entries to put (node JSON unencoded) and keys to delete.

        Children entries follow from the locked nodes' parents; a node's ``children``
        list is a view (table entries plus open children) and is not stored.
        """
        for uuid in [u for u, n in self.open.items() if n.locked]:
            self._held[uuid] = self.open.pop(uuid)
        puts: Puts = {}
        for uuid, node in self._held.items():
            raw = encode_node(node)
            old_raw = self._before.get(uuid, (b"", frozenset()))[0]
            if raw == old_raw:
                continue
            key = uuid.encode()
            puts[NODE + key] = raw
            if not old_raw:  # new in the table
                puts[BRANCH + node.branch.encode() + SEP + key] = b""
                puts[VERSION + node.version_id.to_bytes(4, "big")] = key
                for parent in node.parents:
                    puts[CHILD + parent.encode() + SEP + key] = b""
        return puts, []

    def saved(self, table: NodeTable) -> None:
        """Note that ``changes`` went into ``table``: what is held is now what is stored."""
        self.table = table
        self._before = {u: (encode_node(n), frozenset()) for u, n in self._held.items()}

    def __deepcopy__(self, memo: dict[int, object]) -> RepoNodes:
        out = RepoNodes(copy.deepcopy(self.open, memo), self.table)
        out._held = copy.deepcopy(self._held, memo)
        out._before = dict(self._before)
        out._stored_children = dict(self._stored_children)
        return out


def apply_changes(tree: Tree, blobs: Blobs, root: ObjectId, nodes: RepoNodes) -> NodeTable:
    """Write ``nodes``' changes into the table at ``root``; return the new table."""
    puts, deletes = nodes.changes()
    values = {k: blobs.encode(v) for k, v in puts.items()}
    new_root = tree.apply(root, values, deletes) if values or deletes else root
    table = NodeTable(tree, blobs, new_root)
    nodes.saved(table)
    return table


__all__ = [
    "Blobs",
    "NodeTable",
    "StoreBlobs",
    "RepoNodes",
    "apply_changes",
    "decode_node",
    "encode_node",
]
