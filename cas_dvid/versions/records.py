"""Repo records and the UUID index on a backend: read, compare-and-swap, resolve."""

from __future__ import annotations

import time
from collections.abc import Callable

from cas_dvid.errors import ConflictError, InvalidInputError, LockedError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees import Tree
from cas_dvid.versions.model import At, Instance, Repo, is_full_uuid, new_uuid, now
from cas_dvid.versions.node import Node
from cas_dvid.versions.nodetable import NodeTable, StoreBlobs, apply_changes
from cas_dvid.versions.refs import Resolver, read_ref, repo_ref, repo_roots, uuid_ref

MAX_CAS_ATTEMPTS = 200


class Records:
    """Repo records (one JSON ref per repo) and the UUID index, as one process sees them.

    Records are re-read on every ``load`` unless ``metadata_ttl`` > 0, which lets a
    parsed record be served from memory for that many seconds; an unchanged record
    is never parsed twice.
    """

    def __init__(self, store: ObjectStore, tree: Tree, *, metadata_ttl: float = 0.0) -> None:
        self.store = store
        self.backend = store.backend
        self.tree = tree
        self.blobs = StoreBlobs(store)
        self.metadata_ttl = metadata_ttl
        self._cache: dict[str, tuple[bytes, Repo, float]] = {}
        self.resolver = Resolver(self.backend, self.load)

    def table(self, root: ObjectId) -> NodeTable:
        """Return the node table with ``root`` in this store."""
        return NodeTable(self.tree, self.blobs, root)

    def parse(self, raw: bytes) -> Repo:
        """Return the repo a stored record holds."""
        return Repo.from_json(raw, self.table)

    def encode(self, repo: Repo) -> bytes:
        """Return the record of ``repo``, its changed locked nodes written to its table first."""
        repo.locked = apply_changes(self.tree, self.blobs, repo.locked, repo.nodes).root
        return repo.to_json()

    # -- reading ---------------------------------------------------------------------

    def load(self, root: str) -> Repo:
        """Read a repo record (reusing the parsed copy when the bytes are unchanged)."""
        cached = self._cache.get(root)
        ttl = self.metadata_ttl
        if cached is not None and ttl and time.monotonic() - cached[2] < ttl:
            return cached[1]
        ref = read_ref(self.backend, repo_ref(root))
        if ref is None:
            self._cache.pop(root, None)
            raise NotFoundError(f"could not find repo with root {root}")
        if cached is not None and cached[0] == ref.value:
            if ttl:  # (the time read only matters to a TTL)
                self._cache[root] = (ref.value, cached[1], time.monotonic())
            return cached[1]
        repo = self.parse(ref.value)
        self._cache[root] = (ref.value, repo, time.monotonic())
        return repo

    def roots(self) -> list[str]:
        """Root UUIDs of every repo in the store."""
        return repo_roots(self.backend)

    def all(self) -> dict[str, Repo]:
        """Every repo, by root UUID."""
        out = {}
        for root in self.roots():
            try:
                out[root] = self.load(root)
            except NotFoundError:
                continue
        return out

    def resolve(self, spec: str) -> At:
        """Resolve a DVID UUID spec (unique prefix, ``uuid:branch``, ``~N``) as a version."""
        repo, uuid = self.resolver.resolve(spec)
        return At(repo, uuid)

    # -- writing ---------------------------------------------------------------------

    def update(self, root: str, change: Callable[[Repo], None]) -> Repo:
        """Apply ``change`` to the repo record by compare-and-swap, retrying on races.

        ``change`` mutates a freshly read record and may raise to abort; it runs again
        on every retry, so it must only depend on the record it is given.
        """
        name = repo_ref(root)
        for _ in range(MAX_CAS_ATTEMPTS):
            ref = read_ref(self.backend, name)
            if ref is None:
                raise NotFoundError(f"could not find repo with root {root}")
            repo = self.parse(ref.value)
            change(repo)
            repo.updated = now()
            raw = self.encode(repo)
            try:
                self.backend.cas_ref(name, ref.token, raw)
            except ConflictError:
                continue
            self._cache[root] = (raw, repo, time.monotonic())
            return repo
        raise ConflictError(
            f"repo {root} is changing too fast; gave up after {MAX_CAS_ATTEMPTS} tries"
        )

    def create(self, alias: str = "", description: str = "", root: str | None = None) -> str:
        """Make a repo with one unlocked root node on master; return the root UUID."""
        uuid = root or new_uuid()
        check_uuid(uuid)
        self.index(uuid, uuid)
        t = now()
        repo = Repo(root=uuid, alias=alias, description=description, created=t, updated=t)
        repo.nodes[uuid] = Node(uuid=uuid, version_id=1, created=t, updated=t)
        repo.next_version_id = 2
        self.backend.cas_ref(repo_ref(uuid), None, self.encode(repo))
        return uuid

    def delete(self, root: str) -> None:
        """Drop a repo's record (its index entries and heads are the caller's)."""
        ref = read_ref(self.backend, repo_ref(root))
        if ref is not None:
            self.backend.delete_ref(repo_ref(root), ref.token)
        self._cache.pop(root, None)

    def index(self, uuid: str, root: str) -> None:
        """Claim ``uuid`` in the UUID index for repo ``root`` (400 if it is taken)."""
        try:
            self.backend.cas_ref(uuid_ref(uuid), None, root.encode())
        except ConflictError as exc:
            raise InvalidInputError(f"UUID {uuid} already exists in datastore") from exc
        self.resolver.remember(uuid, root)

    def unindex(self, uuid: str) -> None:
        """Remove a UUID from the index (absent entries are fine)."""
        ref = read_ref(self.backend, uuid_ref(uuid))
        if ref is not None:
            try:
                self.backend.delete_ref(uuid_ref(uuid), ref.token)
            except (NotFoundError, ConflictError):
                pass
        self.resolver.forget(uuid)


def check_uuid(uuid: str) -> None:
    """Refuse a version UUID that is not 32 lower-case hex digits, as DVID does."""
    if not is_full_uuid(uuid):
        raise InvalidInputError("Bad UUID provided: UUID must be 32 character hexadecimal string")


RESERVED_NAMES = frozenset(
    {"log", "branch", "note", "commit", "newversion", "tag", "status", "info"}
)


class RepoEdits:
    """Changes to a repo's metadata: alias, logs, notes and data instances."""

    def __init__(self, records: Records) -> None:
        self.records = records

    def set_info(self, at: At, alias: str | None, description: str | None) -> None:
        """Change a repo's alias and/or description."""

        def change(r: Repo) -> None:
            if alias is not None:
                r.alias = alias
            if description is not None:
                r.description = description

        self.records.update(at.repo.root, change)

    def append_repo_log(self, at: At, lines: list[str]) -> None:
        """Append lines to a repo's log, each stamped with the time as DVID does."""
        stamp = now()
        self.records.update(at.repo.root, lambda r: r.log.extend(f"{stamp}  {x}" for x in lines))

    def set_note(self, at: At, note: str) -> None:
        """Set a node's note (refused on a locked node)."""

        def change(r: Repo) -> None:
            unlocked(r, at.uuid, "post").note = note

        self.records.update(at.repo.root, change)

    def append_node_log(self, at: At, lines: list[str]) -> None:
        """Append to a node's log (refused on a locked node)."""
        stamp = now()

        def change(r: Repo) -> None:
            unlocked(r, at.uuid, "post").log.extend(f"{stamp}  {x}" for x in lines)

        self.records.update(at.repo.root, change)

    def new_instance(
        self,
        at: At,
        name: str,
        typename: str,
        *,
        versioned: bool = True,
        settings: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
    ) -> Instance:
        """Add a data instance to the repo of ``at`` (names are unique per repo)."""
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
                f'{now()}  New data instance "{name}" of type "{typename}" '
                f"with config {settings or {}}"
            )

        self.records.update(at.repo.root, change)
        return inst

    def update_instance(self, at: At, name: str, change: Callable[[Instance], None]) -> Instance:
        """Change an instance's settings or tags (repo-wide, like DVID)."""
        out: list[Instance] = []

        def apply(r: Repo) -> None:
            inst = At(r, at.uuid).instance(name)
            change(inst)
            out[:] = [inst]

        self.records.update(at.repo.root, apply)
        return out[0]


def unlocked(repo: Repo, uuid: str, method: str) -> Node:
    """Return the node ``uuid``, which must be open; LockedError in DVID's words otherwise."""
    node = repo.nodes[uuid]
    if node.locked:
        raise LockedError(f"Cannot do {method} on locked node {uuid}")
    return node
