"""Data at a version: the tree root of an instance there, and writes that move its head."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from cas_dvid.errors import InvalidInputError, LockedError
from cas_dvid.objects import ObjectId, ObjectStore, parse_object_id
from cas_dvid.trees import EMPTY_ROOT, Tree
from cas_dvid.versions.commits import Commit, load_commit
from cas_dvid.versions.heads import Heads, HeadWriter, Write
from cas_dvid.versions.model import At, Instance, Repo
from cas_dvid.versions.nodestore import ObjectNodeStore

Change = tuple[bytes, bytes | None, bytes | None]
"""``(key, old value, new value)`` of a diff; None where a side lacks the key."""


class DataAccess:
    """Reads and writes of instance trees at versions.

    A locked version's roots come from its commit object (immutable, cached by the
    object store); an open version's from its head, read fresh on every call, so a
    read after an acknowledged write sees it on every server sharing the store.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.tree = Tree(ObjectNodeStore(store))
        self.heads = Heads(store.backend)
        self.writer = HeadWriter(self.heads, self.tree)

    def commit_of(self, cid: str) -> Commit:
        """Return a commit object by hex id."""
        return load_commit(self.store, parse_object_id(cid))

    def commit_roots(self, repo: Repo, uuid: str) -> dict[str, str]:
        """Return the data UUID -> root (hex) map of a locked node, from its commit."""
        node = repo.nodes[uuid]
        if node.commit is None:
            raise InvalidInputError(f"node {uuid} is not committed")
        return dict(self.commit_of(node.commit).roots)

    def root_at(self, at: At, inst: Instance) -> ObjectId:
        """Return the tree root of ``inst`` at version ``at`` (heads read fresh)."""
        uuid = at.uuid if inst.versioned else at.repo.root
        node = at.repo.nodes[uuid]
        if inst.versioned and node.locked and node.commit is not None:
            return root_of(self.commit_of(node.commit).roots, inst.data_uuid)
        head = self.heads.read(uuid, inst.data_uuid)
        return head.root if head is not None else start_root(at.repo, uuid, inst)

    def check_writable(self, at: At, inst: Instance, what: str = "write") -> None:
        """Refuse a write of a versioned instance at a locked node, before any work."""
        if inst.versioned and at.node.locked:
            raise LockedError(f"Cannot do {what} of locked node {at.uuid}")

    def write(
        self,
        at: At,
        inst: Instance,
        ops: Write,
        what: str = "write",
    ) -> ObjectId:
        """Apply a write at a version in one head swap; return the new root.

        ``ops`` maps keys to values (None deletes; an ``Update`` is run on the value
        current at apply time), or is a ``Plan`` that computes them from the tree.

        ``what`` names the request for the locked-node error, e.g. 'POST on endpoint "key"'.
        """
        uuid = at.uuid if inst.versioned else at.repo.root
        msg = f"Cannot do {what} of locked node {at.uuid}"
        self.check_writable(at, inst, what)
        repo = at.repo
        return self.writer.write(
            uuid, inst.data_uuid, ops, lambda: start_root(repo, uuid, inst), msg
        )

    def diff(self, a: At, b: At, inst: Instance) -> Iterator[Change]:
        """Keys whose values differ between two versions, in key order."""
        return self.tree.diff(self.root_at(a, inst), self.root_at(b, inst))

    def seal(self, at: At, inst: Instance) -> ObjectId:
        """Seal the head of ``inst`` at an open version (commit); return the sealed root."""
        return self.heads.seal(at.uuid, inst.data_uuid, start_root(at.repo, at.uuid, inst))

    def drop_heads(self, uuids: list[str], data_uuids: list[str]) -> None:
        """Delete the heads of those instances at those versions (deletions)."""
        for uuid in uuids:
            for d in data_uuids:
                self.heads.delete(uuid, d)


def root_of(roots: Mapping[str, str], data_uuid: str) -> ObjectId:
    """Return the root named for ``data_uuid`` in a roots map (the empty tree if none)."""
    hexid = roots.get(data_uuid)
    return EMPTY_ROOT if hexid is None else parse_object_id(hexid)


def start_root(repo: Repo, uuid: str, inst: Instance) -> ObjectId:
    """Return the root an open version of ``inst`` started from (its parents' merged state)."""
    return root_of(repo.nodes[uuid].start, inst.data_uuid)
