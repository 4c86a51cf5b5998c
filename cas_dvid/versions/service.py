"""The version service: repos, the version DAG, instances, and reads/writes at a version."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from cas_dvid.errors import ConflictError, InvalidInputError, LockedError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore, parse_object_id, to_hex
from cas_dvid.trees import EMPTY_ROOT, Tree
from cas_dvid.versions import resolve as _resolve
from cas_dvid.versions.commits import Commit, load_commit, save_commit
from cas_dvid.versions.heads import Heads, HeadWriter, Update
from cas_dvid.versions.model import Instance, Node, Repo, is_full_uuid, new_uuid, now
from cas_dvid.versions.nodestore import ObjectNodeStore

REPO_REF = "repos/"
UUID_REF = "uuids/"
RESERVED_NAMES = {"log", "branch", "note", "commit", "newversion", "tag", "status", "info"}
MAX_CAS_ATTEMPTS = 200


@dataclass(frozen=True, slots=True)
class At:
    """A resolved version: the repo record as read and the node's UUID."""

    repo: Repo
    uuid: str

    @property
    def node(self) -> Node:
        """The node record."""
        return self.repo.nodes[self.uuid]


class VersionService:
    """Repos and versions over an object store.

    Reads of heads are always fresh, so a read after an acknowledged write sees it on
    every server sharing the store.  ``metadata_ttl`` > 0 lets repo records (DAG,
    instances) be served from memory for that many seconds; it never affects data.
    """

    def __init__(self, store: ObjectStore, *, metadata_ttl: float = 0.0) -> None:
        self.store = store
        self.backend = store.backend
        self.tree = Tree(ObjectNodeStore(store))
        self.heads = Heads(self.backend)
        self.writer = HeadWriter(self.heads, self.tree)
        self.metadata_ttl = metadata_ttl
        self._repo_cache: dict[str, tuple[bytes, Repo, float]] = {}
        self._index: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- repo records ---------------------------------------------------------------

    def load_repo(self, root: str) -> Repo:
        """Read a repo record (reusing the parsed copy when the bytes are unchanged)."""
        cached = self._repo_cache.get(root)
        if (
            cached is not None
            and self.metadata_ttl
            and time.monotonic() - cached[2] < self.metadata_ttl
        ):
            return cached[1]
        try:
            ref = self.backend.get_ref(REPO_REF + root)
        except NotFoundError:
            self._repo_cache.pop(root, None)
            raise NotFoundError(f"could not find repo with root {root}") from None
        if cached is not None and cached[0] == ref.value:
            self._repo_cache[root] = (ref.value, cached[1], time.monotonic())
            return cached[1]
        repo = Repo.from_json(ref.value)
        self._repo_cache[root] = (ref.value, repo, time.monotonic())
        return repo

    def update_repo(self, root: str, change: Callable[[Repo], None]) -> Repo:
        """Apply ``change`` to the repo record by compare-and-swap, retrying on races.

        ``change`` mutates a freshly read record and may raise to abort; it runs again
        on every retry, so it must only depend on the record it is given.
        """
        name = REPO_REF + root
        for _ in range(MAX_CAS_ATTEMPTS):
            try:
                ref = self.backend.get_ref(name)
            except NotFoundError:
                raise NotFoundError(f"could not find repo with root {root}") from None
            repo = Repo.from_json(ref.value)
            change(repo)
            repo.updated = now()
            raw = repo.to_json()
            try:
                self.backend.cas_ref(name, ref.token, raw)
            except ConflictError:
                continue
            self._repo_cache[root] = (raw, repo, time.monotonic())
            return repo
        raise ConflictError(
            f"repo {root} is changing too fast; gave up after {MAX_CAS_ATTEMPTS} tries"
        )

    def repo_roots(self) -> list[str]:
        """Root UUIDs of every repo in the store."""
        return [n[len(REPO_REF) :] for n in self.backend.list_refs(REPO_REF)]

    def repos(self) -> dict[str, Repo]:
        """Every repo, by root UUID."""
        out = {}
        for root in self.repo_roots():
            try:
                out[root] = self.load_repo(root)
            except NotFoundError:
                continue
        return out

    # -- uuid resolution ----------------------------------------------------------

    def _refresh_index(self) -> None:
        index = {}
        for name in self.backend.list_refs(UUID_REF):
            uuid = name[len(UUID_REF) :]
            try:
                index[uuid] = self.backend.get_ref(name).value.decode()
            except NotFoundError:
                continue
        with self._lock:
            self._index = index

    def resolve(self, spec: str) -> At:
        """Resolve a DVID UUID spec to a node; 400-style errors for unknown or ambiguous ones."""
        prefix, branch, steps = _resolve.split_spec(spec.strip())
        if prefix == "" and branch is not None:
            roots = self.repo_roots()
            if len(roots) != 1:
                raise InvalidInputError("UUID must be specified if more than one repo exists")
            repo = self.load_repo(roots[0])
            uuid = repo.root
        else:
            uuid, repo = self._match(prefix)
        if branch is not None:
            uuid = _resolve.branch_leaf(repo, branch)
        if steps:
            uuid = _resolve.walk_back(repo, uuid, steps, branch or "")
        return At(repo, uuid)

    def _match(self, prefix: str) -> tuple[str, Repo]:
        if not prefix:
            raise InvalidInputError("empty UUID")
        for attempt in range(2):
            try:
                uuid, root = _resolve.match_prefix(self._index, prefix)
            except NotFoundError:
                if attempt:
                    raise
                self._refresh_index()
                continue
            try:
                repo = self.load_repo(root)
            except NotFoundError:
                repo = None
            if repo is not None and uuid in repo.nodes:
                if not attempt and uuid != prefix:
                    self._refresh_index()  # a unique prefix may have become ambiguous
                    uuid, root = _resolve.match_prefix(self._index, prefix)
                    repo = self.load_repo(root)
                return uuid, repo
            self._refresh_index()
        raise NotFoundError(f"could not find UUID with partial match to {prefix}")

    def _index_uuid(self, uuid: str, root: str) -> None:
        try:
            self.backend.cas_ref(UUID_REF + uuid, None, root.encode())
        except ConflictError as exc:
            raise InvalidInputError(f"UUID {uuid} already exists in datastore") from exc
        with self._lock:
            self._index[uuid] = root

    # -- repos and nodes -------------------------------------------------------------

    def create_repo(self, alias: str = "", description: str = "", root: str | None = None) -> str:
        """Make a repo with one unlocked root node on master; return the root UUID."""
        uuid = root or new_uuid()
        _check_uuid(uuid)
        self._index_uuid(uuid, uuid)
        t = now()
        repo = Repo(root=uuid, alias=alias, description=description, created=t, updated=t)
        repo.nodes[uuid] = Node(uuid=uuid, version_id=1, created=t, updated=t)
        repo.next_version_id = 2
        self.backend.cas_ref(REPO_REF + uuid, None, repo.to_json())
        return uuid

    def set_repo_info(self, spec: str, alias: str | None, description: str | None) -> None:
        """Change a repo's alias and/or description."""
        at = self.resolve(spec)

        def change(r: Repo) -> None:
            if alias is not None:
                r.alias = alias
            if description is not None:
                r.description = description

        self.update_repo(at.repo.root, change)

    def append_repo_log(self, spec: str, lines: list[str]) -> None:
        """Append lines to a repo's log, each stamped with the time as DVID does."""
        at = self.resolve(spec)
        stamp = now()
        self.update_repo(at.repo.root, lambda r: r.log.extend(f"{stamp}  {x}" for x in lines))

    def set_node_note(self, spec: str, note: str) -> None:
        """Set a node's note (refused on a locked node)."""
        at = self.resolve(spec)
        self.update_repo(
            at.repo.root, lambda r: _unlocked(r, at.uuid, "post").__setattr__("note", note)
        )

    def append_node_log(self, spec: str, lines: list[str]) -> None:
        """Append to a node's log (refused on a locked node)."""
        at = self.resolve(spec)
        stamp = now()
        self.update_repo(
            at.repo.root,
            lambda r: _unlocked(r, at.uuid, "post").log.extend(f"{stamp}  {x}" for x in lines),
        )

    def new_instance(
        self,
        spec: str,
        name: str,
        typename: str,
        *,
        versioned: bool = True,
        settings: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Instance:
        """Add a data instance to the repo of ``spec`` (names are unique per repo)."""
        at = self.resolve(spec)
        if not name or "/" in name:
            raise InvalidInputError(
                f"invalid data instance name {name!r}: it must be non-empty, without '/'"
            )
        if name in RESERVED_NAMES:
            raise InvalidInputError(f'cannot use reserved name "{name}"')
        inst = Instance(
            name=name,
            typename=typename,
            data_uuid=new_uuid(),
            versioned=versioned,
            settings=dict(settings or {}),
            tags=dict(tags or {}),
            created_at=at.uuid,
            created=now(),
        )

        def change(r: Repo) -> None:
            if r.nodes[at.uuid].locked:
                raise LockedError(f"New data instance cannot be created on locked node {at.uuid}")
            if name in r.instances:
                raise InvalidInputError(
                    f'Data named "{name}" already exists in repo (root {r.root})'
                )
            r.instances[name] = inst
            r.log.append(
                f'{now()}  New data instance "{name}" of type "{typename}" with config {settings or {}}'
            )

        self.update_repo(at.repo.root, change)
        return inst

    def update_instance(self, spec: str, name: str, change: Callable[[Instance], None]) -> Instance:
        """Change an instance's settings or tags (repo-wide, like DVID)."""
        at = self.resolve(spec)
        out: list[Instance] = []

        def apply(r: Repo) -> None:
            inst = _instance(r, name)
            change(inst)
            out[:] = [inst]

        self.update_repo(at.repo.root, apply)
        return out[0]

    def commit(self, spec: str, note: str = "", log: Iterable[str] = ()) -> str:
        """Lock a node: seal its heads, write the commit object, mark it locked."""
        at = self.resolve(spec)
        if at.node.locked:
            raise LockedError(f"Cannot do post on locked node {at.uuid}")
        lines = list(log)
        repo = at.repo
        for _ in range(MAX_CAS_ATTEMPTS):
            roots = {
                inst.data_uuid: to_hex(
                    self.heads.seal(at.uuid, inst.data_uuid, _start(repo, at.uuid, inst))
                )
                for inst in repo.instances.values()
                if inst.versioned
            }
            node = repo.nodes[at.uuid]
            stamp = now()
            commit = Commit(
                uuid=at.uuid,
                repo=repo.root,
                parents=[repo.nodes[p].commit or "" for p in node.parents],
                roots=roots,
                instances={
                    i.data_uuid: f"{i.name}:{i.typename}"
                    for i in repo.instances.values()
                    if i.versioned
                },
                branch=node.branch,
                note=note or node.note,
                log=node.log + [f"{stamp}  {x}" for x in lines],
                created=node.created,
                committed=stamp,
            )
            cid = to_hex(save_commit(self.store, commit))
            try:
                repo = self.update_repo(
                    repo.root,
                    functools.partial(
                        _lock_node, uuid=at.uuid, roots=roots, cid=cid, commit=commit
                    ),
                )
                return cid
            except _InstancesChanged:
                repo = self.load_repo(repo.root)
        raise ConflictError(f"could not commit {at.uuid}: instances kept changing")

    def new_child(
        self,
        spec: str,
        *,
        branch: str | None = None,
        note: str = "",
        uuid: str | None = None,
        any_uuid: bool = False,
    ) -> str:
        """Newversion (branch None: the parent's branch) or branch (a new branch name).

        ``any_uuid`` lets a tag name the child with a non-hex string, as DVID's tag does.
        """
        at = self.resolve(spec)
        child = uuid or new_uuid()
        if not any_uuid:
            _check_uuid(child)
        if branch is not None and branch in ("", "master"):
            raise InvalidInputError("Cannot create a master branch")

        def change(r: Repo) -> None:
            parent = r.nodes[at.uuid]
            if not parent.locked:
                raise InvalidInputError("can't branch an unlocked node")
            name = parent.branch if branch is None else branch
            same = branch is None or branch == parent.branch
            if same and any(r.nodes[c].branch == name for c in parent.children if c in r.nodes):
                raise InvalidInputError("branch already exists with given name")
            if not same and any(n.branch == branch for n in r.nodes.values()):
                raise InvalidInputError("branch already exists with given name")
            _add_node(r, child, [at.uuid], name, note, self._commit_roots(r, at.uuid))

        self._index_uuid(child, at.repo.root)
        try:
            self.update_repo(at.repo.root, change)
        except BaseException:
            self._drop_index(child)
            raise
        return child

    def merge(
        self, spec: str, parents: list[str], note: str = "", merge_type: str = "conflict-free"
    ) -> str:
        """Make an unlocked master child of two or more locked parents by three-way tree merges."""
        if len(parents) < 2:
            raise InvalidInputError("Must specify at least two parent UUIDs using 'parents' field")
        repo = self.resolve(spec).repo
        uuids = []
        for p in parents:
            try:
                uuids.append(self.resolve(p).uuid)
            except (InvalidInputError, NotFoundError) as exc:
                raise InvalidInputError(f'can\'t match parent "{p}": {exc}') from None
        if merge_type != "conflict-free":
            raise InvalidInputError("'mergeType' must be 'conflict-free' at this time")
        if len(set(uuids)) != len(uuids):
            raise InvalidInputError(f"merge parents must be distinct versions, got {uuids}")
        for u in uuids:
            if u not in repo.nodes:
                raise InvalidInputError(f"parent {u} is not in repo {repo.root}")
            if not repo.nodes[u].locked:
                raise InvalidInputError("can't branch an unlocked node")
        roots, conflicts = self._merge_roots(repo, uuids)
        if conflicts:
            shown = conflicts[:100]
            raise InvalidInputError(
                f"merge has {len(conflicts)} conflicting keys; first {len(shown)}: "
                + ", ".join(shown)
            )
        child = new_uuid()
        self._index_uuid(child, repo.root)
        self.update_repo(repo.root, lambda r: _add_node(r, child, uuids, "", note, roots))
        return child

    def _merge_roots(self, repo: Repo, uuids: list[str]) -> tuple[dict[str, str], list[str]]:
        acc = self._commit_roots(repo, uuids[0])
        merged_from = [uuids[0]]
        conflicts: list[str] = []
        for other in uuids[1:]:
            base = self._commit_roots(repo, _common_ancestor(repo, merged_from, other))
            theirs = self._commit_roots(repo, other)
            for inst in repo.instances.values():
                d = inst.data_uuid
                if not inst.versioned:
                    continue
                root, clash = self.tree.merge3(*(_root(m, d) for m in (base, acc, theirs)))
                acc[d] = to_hex(root)
                conflicts += [f"{inst.name}:{_show_key(k)}" for k in clash]
            merged_from.append(other)
        return {d: r for d, r in acc.items() if r != to_hex(EMPTY_ROOT)}, conflicts

    def tag(self, spec: str, tag: str, note: str = "") -> str:
        """A committed child whose UUID is the tag, on branch ``tag-<tag>``."""
        if not tag:
            raise InvalidInputError("tag must be a non-empty string")
        parent = self.resolve(spec).uuid
        child = self.new_child(spec, branch=f"tag-{tag}", note=note, uuid=tag, any_uuid=True)
        self.commit(child, f'Tag of version {parent} with "{tag}"')
        return child

    def branch_versions(self, spec: str, name: str) -> list[str]:
        """UUIDs on a branch from its leaf back to where it starts (leaf -> root)."""
        repo = self.resolve(spec).repo
        uuid: str | None = _resolve.branch_leaf(repo, name)
        out = []
        while uuid is not None:
            out.append(uuid)
            parents = repo.nodes[uuid].parents
            uuid = parents[0] if parents else None
        return out

    def delete_repo(self, spec: str) -> Repo:
        """Remove a repo: its record, UUID index entries and heads (objects stay for gc)."""
        repo = self.resolve(spec).repo
        for uuid in repo.nodes:
            for inst in repo.instances.values():
                self.heads.delete(uuid, inst.data_uuid)
        ref = self.backend.get_ref(REPO_REF + repo.root)
        self.backend.delete_ref(REPO_REF + repo.root, ref.token)
        self._repo_cache.pop(repo.root, None)
        for uuid in repo.nodes:
            self._drop_index(uuid)
        return repo

    def delete_instance(self, spec: str, name: str) -> Instance:
        """Remove a data instance from its repo (every version), as DVID does; heads go too.

        Commit objects of locked versions still name its old roots, but a repo's
        reachable data is only that of instances its record still lists, so gc frees
        the instance's blocks unless another live instance or a published snapshot
        shares them.
        """
        at = self.resolve(spec)
        inst = _instance(at.repo, name)

        def drop(r: Repo) -> None:
            r.instances.pop(name, None)

        self.update_repo(at.repo.root, drop)
        for uuid in at.repo.nodes:
            self.heads.delete(uuid, inst.data_uuid)
        return inst

    def _drop_index(self, uuid: str) -> None:
        try:
            ref = self.backend.get_ref(UUID_REF + uuid)
            self.backend.delete_ref(UUID_REF + uuid, ref.token)
        except (NotFoundError, ConflictError):
            pass
        with self._lock:
            self._index.pop(uuid, None)

    # -- data at a version ---------------------------------------------------------------

    def _commit_roots(self, repo: Repo, uuid: str) -> dict[str, str]:
        node = repo.nodes[uuid]
        if node.commit is None:
            raise InvalidInputError(f"node {uuid} is not committed")
        return dict(self.commit_of(node.commit).roots)

    def commit_of(self, cid: str) -> Commit:
        """A commit object by hex id (cached by the object store)."""
        return load_commit(self.store, parse_object_id(cid))

    def root_at(self, at: At, inst: Instance) -> ObjectId:
        """The tree root of ``inst`` at version ``at`` (heads read fresh)."""
        uuid = at.uuid if inst.versioned else at.repo.root
        node = at.repo.nodes[uuid]
        if inst.versioned and node.locked and node.commit is not None:
            return _root(self.commit_of(node.commit).roots, inst.data_uuid)
        head = self.heads.read(uuid, inst.data_uuid)
        return head.root if head is not None else _start(at.repo, uuid, inst)

    def write(
        self,
        at: At,
        inst: Instance,
        ops: Mapping[bytes, bytes | None | Update],
        what: str = "write",
    ) -> ObjectId:
        """Apply puts (value bytes) and deletes (None) at a version; return the new root.

        ``what`` names the request for the locked-node error, e.g. 'POST on endpoint "key"'.
        """
        uuid = at.uuid if inst.versioned else at.repo.root
        msg = f"Cannot do {what} of locked node {at.uuid}"
        if inst.versioned and at.node.locked:
            raise LockedError(msg)
        return self.writer.write(
            uuid, inst.data_uuid, dict(ops), lambda: _start(at.repo, uuid, inst), msg
        )

    def instance(self, at: At, name: str) -> Instance:
        """The instance called ``name`` in the repo of ``at``."""
        return _instance(at.repo, name)

    def diff(
        self, a: At, b: At, inst: Instance
    ) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
        """Keys whose values differ between two versions, in key order."""
        return self.tree.diff(self.root_at(a, inst), self.root_at(b, inst))


class _InstancesChanged(Exception):
    """An instance appeared while committing; seal it and try again."""


def _check_uuid(uuid: str) -> None:
    if not is_full_uuid(uuid):
        raise InvalidInputError("Bad UUID provided: UUID must be 32 character hexadecimal string")


def _instance(repo: Repo, name: str) -> Instance:
    try:
        return repo.instances[name]
    except KeyError:
        raise NotFoundError(f"invalid data instance name {name!r}") from None


def _unlocked(repo: Repo, uuid: str, method: str) -> Node:
    node = repo.nodes[uuid]
    if node.locked:
        raise LockedError(f"Cannot do {method} on locked node {uuid}")
    return node


def _root(roots: dict[str, str], data_uuid: str) -> ObjectId:
    hexid = roots.get(data_uuid)
    return EMPTY_ROOT if hexid is None else parse_object_id(hexid)


def _start(repo: Repo, uuid: str, inst: Instance) -> ObjectId:
    return _root(repo.nodes[uuid].start, inst.data_uuid)


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
    repo.next_version_id += 1
    for p in parents:
        repo.nodes[p].children.append(uuid)


def _common_ancestor(repo: Repo, group: list[str], other: str) -> str:
    """A lowest common ancestor of ``other`` and every node in ``group``.

    Among the common ancestors, one that is no ancestor of another common ancestor
    (as git's merge base); if several qualify, the newest.
    """
    common = set(repo.ancestors(other))
    for g in group:
        common &= set(repo.ancestors(g))
    lowest = [u for u in common if not any(u in repo.ancestors(c) for c in common if c != u)]
    return max(lowest, key=lambda u: repo.nodes[u].version_id)


def _show_key(key: bytes) -> str:
    body = key[1:] if key[:1] and key[0] >= 0x80 else key
    return body.decode("utf-8", "backslashreplace")
