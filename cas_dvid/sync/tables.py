"""Repo records on a peer: their node tables read and written through the peer's objects.

A record names a node table (a Merkle tree of locked nodes, versions/nodetable.py).
To read a record on the other side of a transfer, its table's nodes are fetched from
that peer (verified); to write one there, the new table nodes are put to it before
the record's ref moves, bottom-up like every other object.
"""

from __future__ import annotations

from collections.abc import Mapping

from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import Codec, Kind, ObjectId, content_id, to_hex
from cas_dvid.objects.codec import encode
from cas_dvid.sync.abc import Peer
from cas_dvid.sync.walk import verified
from cas_dvid.trees import Tree
from cas_dvid.versions import Repo
from cas_dvid.versions.nodetable import NodeTable, apply_changes
from cas_dvid.versions.refs import Resolver, read_ref, repo_ref
from cas_dvid.versions.values import MAX_INLINE, blob_value, inline_payload, inline_value, value_ref


def _stored(kind: Kind, data: bytes) -> bytes:
    return b"".join(bytes(p) for p in encode(kind, data, Codec.LZ4))


class PeerNodeStore:
    """The trees' NodeStore over a peer's objects."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def load_node(self, oid: ObjectId) -> bytes:
        """Return a table node fetched from the peer, verified."""
        ((_, stored),) = self.peer.fetch([oid])
        kind, raw = verified(oid, stored)
        if kind is not Kind.TREE:
            raise CorruptObjectError(f"object {to_hex(oid)} is a {kind.name}, expected a tree node")
        return bytes(raw)

    def store_nodes(self, nodes: Mapping[ObjectId, bytes]) -> None:
        """Put new table nodes to the peer."""
        if nodes:
            self.peer.put([(oid, _stored(Kind.TREE, data)) for oid, data in nodes.items()])


class PeerBlobs:
    """Node JSON too long for a leaf, as blobs on a peer."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def decode(self, values: list[bytes]) -> list[bytes]:
        """Return the payloads of tree values, fetching blobs in one batch."""
        refs = [value_ref(v) for v in values]
        wanted = [r for r in refs if r is not None]
        fetched = dict(self.peer.fetch(wanted)) if wanted else {}
        out = []
        for v, r in zip(values, refs, strict=True):
            if r is None:
                out.append(inline_payload(v))
                continue
            kind, raw = verified(r, fetched[r])
            if kind is not Kind.BLOB:
                raise CorruptObjectError(f"object {to_hex(r)} is a {kind.name}, expected a blob")
            out.append(bytes(raw))
        return out

    def encode(self, payload: bytes) -> bytes:
        """Return the tree value for ``payload``, putting a blob to the peer if it is long."""
        if len(payload) <= MAX_INLINE:
            return inline_value(payload)
        oid = content_id(Kind.BLOB, payload)
        self.peer.put([(oid, _stored(Kind.BLOB, payload))])
        return blob_value(oid)


class PeerRecords:
    """Repo records of one peer, with their node tables."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.tree = Tree(PeerNodeStore(peer))
        self.blobs = PeerBlobs(peer)

    def table(self, root: ObjectId) -> NodeTable:
        """Return the node table with ``root`` on the peer."""
        return NodeTable(self.tree, self.blobs, root)

    def parse(self, raw: bytes) -> Repo:
        """Return the repo a record of this peer holds."""
        return Repo.from_json(raw, self.table)

    def read(self, root: str) -> Repo:
        """Return the record of repo ``root``; NotFoundError if none."""
        ref = read_ref(self.peer, repo_ref(root))
        if ref is None:
            raise NotFoundError(f"could not find repo with root {root} at {self.peer.url}")
        return self.parse(ref.value)

    def encode(self, repo: Repo) -> bytes:
        """Return the record of ``repo``, its new table nodes put to the peer first."""
        repo.locked = apply_changes(self.tree, self.blobs, repo.locked, repo.nodes).root
        return repo.to_json()

    def resolve(self, spec: str) -> tuple[Repo, str]:
        """Resolve a DVID UUID spec on the peer: (record, node uuid)."""
        return Resolver(self.peer, self.read).resolve(spec)
