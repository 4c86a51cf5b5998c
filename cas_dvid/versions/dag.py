"""The version DAG: commit, newversion and branch, tag, merge, and deletions."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cas_dvid.errors import ConflictError, InvalidInputError, LockedError, NotFoundError
from cas_dvid.objects import to_hex
from cas_dvid.trees import EMPTY_ROOT
from cas_dvid.versions.commits import Commit, save_commit
from cas_dvid.versions.data import DataAccess, root_of
from cas_dvid.versions.model import At, Instance, Repo, new_uuid, now
from cas_dvid.versions.node import Node
from cas_dvid.versions.records import MAX_CAS_ATTEMPTS, Records, check_uuid
from cas_dvid.versions.refs import branch_leaf

KeyRenderer = Callable[[Instance, bytes], str]
"""How a merge conflict names a tree key (each datatype knows its own keys)."""


def hex_key(inst: Instance, key: bytes) -> str:
    """Return the fallback rendering of a tree key: its hex."""
    return key.hex()


@dataclass(frozen=True, slots=True)
class Resolution:
    """A datatype's answer for a key both merge parents changed: a value, or a note."""

    resolved: bool
    value: bytes | None = None  # the merged value (None: deleted) when resolved
    note: str = ""  # for a conflict: what each side did (e.g. their mutation ids)


UNRESOLVED = Resolution(False)
ConflictResolver = Callable[[Instance, bytes, bytes | None, bytes | None, bytes | None], Resolution]
"""How a datatype merges one key (instance, key, base, ours, theirs), e.g. max of counters."""


def no_resolver(
    inst: Instance, key: bytes, base: bytes | None, ours: bytes | None, theirs: bytes | None
) -> Resolution:
    """Leave every conflict a conflict."""
    return UNRESOLVED


class MergeConflictError(InvalidInputError):
    """Two merge parents changed the same keys differently; ``conflicts`` lists them."""

    def __init__(self, message: str, conflicts: list[tuple[Instance, bytes]]) -> None:
        super().__init__(message)
        self.conflicts = conflicts


class Dag:
    """Operations on a repo's version DAG; each ends in one compare-and-swap of its record."""

    def __init__(
        self,
        records: Records,
        data: DataAccess,
        show_key: KeyRenderer = hex_key,
        resolve: ConflictResolver = no_resolver,
    ) -> None:
        self.records = records
        self.data = data
        self.show_key = show_key
        self.resolve = resolve

    def commit(self, at: At, note: str = "", log: Iterable[str] = ()) -> str:
        """Lock a node: seal its heads, write the commit object, mark it locked."""
        if at.node.locked:
            raise LockedError(f"Cannot do post on locked node {at.uuid}")
        lines = list(log)
        repo = at.repo
        for _ in range(MAX_CAS_ATTEMPTS):
            here = At(repo, at.uuid)
            live = [i for i in repo.instances.values() if i.versioned]
            roots = {i.data_uuid: to_hex(self.data.seal(here, i)) for i in live}
            commit = _commit_object(repo, at.uuid, roots, note, lines)
            cid = to_hex(save_commit(self.data.store, commit))
            lock = functools.partial(_lock_node, uuid=at.uuid, roots=roots, cid=cid, commit=commit)
            try:
                self.records.update(repo.root, lock)
                return cid
            except _InstancesChanged:
                repo = self.records.load(repo.root)
        raise ConflictError(f"could not commit {at.uuid}: instances kept changing")

    def new_child(
        self,
        at: At,
        *,
        branch: str | None = None,
        note: str = "",
        uuid: str | None = None,
        any_uuid: bool = False,
    ) -> str:
        """Newversion (branch None: the parent's branch) or branch (a new branch name).

        ``any_uuid`` lets a tag name the child with a non-hex string, as DVID's tag does.
        """
        child = uuid or new_uuid()
        if not any_uuid:
            check_uuid(child)
        if branch is not None and branch in ("", "master"):
            raise InvalidInputError("Cannot create a master branch")

        def change(r: Repo) -> None:
            parent = r.nodes[at.uuid]
            if not parent.locked:
                raise InvalidInputError("can't branch an unlocked node")
            name = parent.branch if branch is None else branch
            same = branch is None or branch == parent.branch
            children = [r.nodes[c] for c in parent.children if c in r.nodes]
            if same and any(n.branch == name for n in children):
                raise InvalidInputError("branch already exists with given name")
            if not same and r.nodes.on_branch(name):
                raise InvalidInputError("branch already exists with given name")
            _add_node(r, child, [at.uuid], name, note, self.data.commit_roots(r, at.uuid))

        self._add(at.repo.root, child, change)
        return child

    def merge(
        self, at: At, parents: list[At], note: str = "", merge_type: str = "conflict-free"
    ) -> str:
        """Make an unlocked master child of two or more locked parents by three-way tree merges."""
        if len(parents) < 2:
            raise InvalidInputError("Must specify at least two parent UUIDs using 'parents' field")
        if merge_type != "conflict-free":
            raise InvalidInputError("'mergeType' must be 'conflict-free' at this time")
        repo = at.repo
        uuids = [p.uuid for p in parents]
        if len(set(uuids)) != len(uuids):
            raise InvalidInputError(f"merge parents must be distinct versions, got {uuids}")
        for u in uuids:
            if u not in repo.nodes:
                raise InvalidInputError(f"parent {u} is not in repo {repo.root}")
            if not repo.nodes[u].locked:
                raise InvalidInputError("can't branch an unlocked node")
        roots, conflicts, notes = self._merge_roots(repo, uuids)
        if conflicts:
            shown = ", ".join(
                f"{i.name}:{self.show_key(i, k)}"
                + (f" ({notes[(i.name, k)]})" if (i.name, k) in notes else "")
                for i, k in conflicts[:100]
            )
            raise MergeConflictError(
                f"merge has {len(conflicts)} conflicting keys; first {min(len(conflicts), 100)}: "
                + shown,
                conflicts,
            )
        child = new_uuid()
        self._add(repo.root, child, lambda r: _add_node(r, child, uuids, "", note, roots))
        return child

    def _merge_roots(
        self, repo: Repo, uuids: list[str]
    ) -> tuple[dict[str, str], list[tuple[Instance, bytes]], dict[tuple[str, bytes], str]]:
        tree = self.data.tree
        acc = self.data.commit_roots(repo, uuids[0])
        merged_from = [uuids[0]]
        conflicts: list[tuple[Instance, bytes]] = []
        notes: dict[tuple[str, bytes], str] = {}
        for other in uuids[1:]:
            base = self.data.commit_roots(repo, common_ancestor(repo, merged_from, other))
            theirs = self.data.commit_roots(repo, other)
            for inst in repo.instances.values():
                if not inst.versioned:
                    continue
                d = inst.data_uuid
                roots = [root_of(m, d) for m in (base, acc, theirs)]
                root, clash = tree.merge3(*roots)
                puts, deletes = [], []
                for k in clash:
                    b, o, t = (tree.get(r, k) for r in roots)
                    answer = self.resolve(inst, k, b, o, t)
                    if not answer.resolved:
                        conflicts.append((inst, k))
                        if answer.note:
                            notes[(inst.name, k)] = answer.note
                    elif answer.value is None:
                        deletes.append(k)
                    else:
                        puts.append((k, answer.value))
                if puts or deletes:
                    root = tree.apply(root, puts, deletes)
                acc[d] = to_hex(root)
            merged_from.append(other)
        return {d: r for d, r in acc.items() if r != to_hex(EMPTY_ROOT)}, conflicts, notes

    def tag(self, at: At, tag: str, note: str = "") -> str:
        """Make a committed child whose UUID is the tag, on branch ``tag-<tag>``."""
        if not tag:
            raise InvalidInputError("tag must be a non-empty string")
        child = self.new_child(at, branch=f"tag-{tag}", note=note, uuid=tag, any_uuid=True)
        self.commit(self.records.resolve(child), f'Tag of version {at.uuid} with "{tag}"')
        return child

    def branch_versions(self, at: At, name: str) -> list[str]:
        """UUIDs on a branch from its leaf back to where it starts (leaf -> root)."""
        repo = at.repo
        uuid: str | None = branch_leaf(repo, name)
        out = []
        while uuid is not None:
            out.append(uuid)
            parents = repo.nodes[uuid].parents
            uuid = parents[0] if parents else None
        return out

    def delete_repo(self, at: At) -> Repo:
        """Remove a repo: its record, UUID index entries and heads (objects stay for gc)."""
        repo = at.repo
        self.data.drop_heads(list(repo.nodes), [i.data_uuid for i in repo.instances.values()])
        self.records.delete(repo.root)
        for uuid in repo.nodes:
            self.records.unindex(uuid)
        return repo

    def delete_instance(self, at: At, name: str) -> Instance:
        """Remove a data instance from its repo (every version), as DVID does; heads go too.

        Commit objects of locked versions still name its old roots, but a repo's
        reachable data is only that of instances its record still lists, so gc frees
        the instance's blocks unless another live instance or a published snapshot
        shares them.
        """
        inst = at.instance(name)

        def drop(r: Repo) -> None:
            r.instances.pop(name, None)

        self.records.update(at.repo.root, drop)
        self.data.drop_heads(list(at.repo.nodes), [inst.data_uuid])
        return inst

    def _add(self, root: str, child: str, change: Callable[[Repo], None]) -> None:
        """Index ``child``, then add it to the record; the index entry goes if that fails."""
        self.records.index(child, root)
        try:
            self.records.update(root, change)
        except BaseException:
            self.records.unindex(child)
            raise


class _InstancesChanged(Exception):
    """An instance appeared while committing; seal it and try again."""


def _commit_object(
    repo: Repo, uuid: str, roots: dict[str, str], note: str, lines: list[str]
) -> Commit:
    node = repo.nodes[uuid]
    stamp = now()
    return Commit(
        uuid=uuid,
        repo=repo.root,
        parents=[repo.nodes[p].commit or "" for p in node.parents],
        roots=roots,
        instances={
            i.data_uuid: f"{i.name}:{i.typename}" for i in repo.instances.values() if i.versioned
        },
        branch=node.branch,
        note=note or node.note,
        log=node.log + [f"{stamp}  {x}" for x in lines],
        created=node.created,
        committed=stamp,
    )


def _lock_node(repo: Repo, uuid: str, roots: dict[str, str], cid: str, commit: Commit) -> None:
    node = repo.nodes[uuid]
    if node.locked:
        raise LockedError(f"Cannot do post on locked node {uuid}")
    if {i.data_uuid for i in repo.instances.values() if i.versioned} - set(roots):
        raise _InstancesChanged
    node.locked, node.commit = True, cid
    node.note, node.log, node.start = commit.note, commit.log, {}
    node.updated = commit.committed


def _add_node(
    repo: Repo, uuid: str, parents: list[str], branch: str, note: str, start: dict[str, str]
) -> None:
    if uuid in repo.nodes:
        raise InvalidInputError(f"UUID {uuid} already exists in datastore")
    t = now()
    repo.nodes[uuid] = Node(
        uuid=uuid,
        version_id=repo.next_version_id,
        branch=branch,
        note=note,
        parents=list(parents),
        start=start,
        created=t,
        updated=t,
    )
    repo.next_version_id += 1  # (parents' children follow from this node's parents)


def common_ancestor(repo: Repo, group: list[str], other: str) -> str:
    """Return a lowest common ancestor of ``other`` and every node in ``group``.

    Among the common ancestors, one that is no ancestor of another common ancestor
    (as git's merge base); if several qualify, the newest.
    """
    common = set(repo.ancestors(other))
    for g in group:
        common &= set(repo.ancestors(g))
    if not common:
        raise NotFoundError(f"versions {group} and {other} share no ancestor")
    lowest = [u for u in common if not any(u in repo.ancestors(c) for c in common if c != u)]
    return max(lowest, key=lambda u: repo.nodes[u].version_id)
