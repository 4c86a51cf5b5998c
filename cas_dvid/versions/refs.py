"""Every ref name of a store, reading repo records, and resolving DVID's UUID specs.

A store's mutable state is a handful of refs; this module is the one place that
spells their names:

- ``store``: the store's format record, written by ``init``;
- ``repos/<root>``: a repo's record (its DAG and instances), JSON;
- ``uuids/<first two characters>/<uuid>``: the UUID index, one ref per version naming
  its repo's root, so a UUID prefix resolves by listing ``uuids/<ab>/<prefix>``: one
  shard of 1/256 of the versions on a local store, a prefix listing on S3 (store
  format 2; format 1 stores kept ``uuids/<uuid>`` and are moved on open);
- ``heads/<node uuid>/<data uuid>``: the tree root of an instance at an open version;
- ``published/<commit id>``: the manifest of a published snapshot (a gc pin);
- ``gc/last``: gc's state after its last completed run;
- ``sync/incomplete``: ids a filtered transfer stored without their whole closure;
- ``labels/<data uuid>``: an instance's repo-wide label counters (the largest label in
  any version, the next label to hand out), JSON;
- ``mutations/<repo root>``: a repo's next mutation id (handed out in ranges).

Both a backend and a sync peer can be read through ``RefReader``: ``get_ref`` may
return None or raise ``NotFoundError`` for a missing ref (backends raise, peers
return None); ``read_ref`` turns either into None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from cas_dvid.backends import Ref
from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.objects.framing import unpack_ids
from cas_dvid.versions.model import Repo

STORE_REF = "store"
REPO_PREFIX = "repos/"
UUID_PREFIX = "uuids/"
HEAD_PREFIX = "heads/"
PUBLISHED_PREFIX = "published/"
GC_REF = "gc/last"
INCOMPLETE_REF = "sync/incomplete"
LABELS_PREFIX = "labels/"
MUTATIONS_PREFIX = "mutations/"


def repo_ref(root: str) -> str:
    """Ref name of a repo's record."""
    return REPO_PREFIX + root


def uuid_ref(uuid: str) -> str:
    """Return the ref name of a version's entry in the UUID index."""
    return f"{UUID_PREFIX}{uuid[:2]}/{uuid}"


def uuid_listing(prefix: str) -> str:
    """Return the ref prefix whose listing finds the versions whose UUID starts with ``prefix``."""
    return f"{UUID_PREFIX}{prefix[:2]}/{prefix}" if len(prefix) >= 2 else UUID_PREFIX + prefix


def uuid_of_ref(name: str) -> str:
    """Return the UUID a UUID index ref name is for."""
    return name.rpartition("/")[2]


def head_ref(node_uuid: str, data_uuid: str) -> str:
    """Ref name of an instance's head at an open version."""
    return f"{HEAD_PREFIX}{node_uuid}/{data_uuid}"


def parse_head_ref(name: str) -> tuple[str, str] | None:
    """``(node uuid, data uuid)`` of a head ref name, None for any other name."""
    parts = name.split("/")
    if len(parts) != 3 or parts[0] + "/" != HEAD_PREFIX:
        return None
    return parts[1], parts[2]


def published_ref(commit_hex: str) -> str:
    """Ref name pinning the published snapshot of a commit."""
    return PUBLISHED_PREFIX + commit_hex


def labels_ref(data_uuid: str) -> str:
    """Ref name of an instance's repo-wide label counters."""
    return LABELS_PREFIX + data_uuid


def mutations_ref(repo_root: str) -> str:
    """Ref name of a repo's mutation id counter."""
    return MUTATIONS_PREFIX + repo_root


class RefReader(Protocol):
    """What resolving and record reads need: a backend and a sync peer both qualify."""

    def get_ref(self, name: str) -> Ref | None:
        """Return the ref, or None (or ``NotFoundError``) if it does not exist."""
        ...

    def list_refs(self, prefix: str = "") -> Iterable[str]:
        """Ref names starting with ``prefix``."""
        ...


def read_ref(src: RefReader, name: str) -> Ref | None:
    """Return a ref, or None when it does not exist (whichever way ``src`` says so)."""
    try:
        return src.get_ref(name)
    except NotFoundError:
        return None


def read_repo(src: RefReader, root: str) -> Repo:
    """Return the record of repo ``root``; NotFoundError (a 400 in DVID's terms) if none."""
    ref = read_ref(src, repo_ref(root))
    if ref is None:
        raise NotFoundError(f"could not find repo with root {root}")
    return Repo.from_json(ref.value)


def incomplete_ids(ref: Ref | None) -> set[ObjectId]:
    """Return the ids an ``INCOMPLETE_REF`` value lists (none for a missing ref)."""
    return set() if ref is None else set(unpack_ids(ref.value))


def read_incomplete(src: RefReader) -> set[ObjectId]:
    """Return the ids a store lists as stored without their whole closure (filtered transfers)."""
    return incomplete_ids(read_ref(src, INCOMPLETE_REF))


def have_closures(store: ObjectStore, ids: Sequence[ObjectId]) -> list[bool]:
    """For each id, whether it is stored with its whole closure (what sync's ``has`` means).

    Objects are written bottom-up, so a stored tree node has its children, except
    the ids a filtered transfer lists in ``INCOMPLETE_REF``.
    """
    if not ids:
        return []
    incomplete = read_incomplete(store.backend)
    present = store.has_many(ids)
    return [p and i not in incomplete for i, p in zip(ids, present, strict=True)]


def repo_roots(src: RefReader) -> list[str]:
    """Root UUIDs of every repo in a store."""
    return [n[len(REPO_PREFIX) :] for n in src.list_refs(REPO_PREFIX)]


def split_spec(spec: str) -> tuple[str, str | None, int]:
    """``prefix[:branch][~N]`` -> (prefix, branch or None, N)."""
    prefix, branch, steps = spec, None, 0
    if spec.count(":") > 1:
        raise InvalidInputError(f'bad UUID specification "{spec}"')
    if ":" in spec:
        prefix, branch = spec.split(":", 1)
    tail = branch if branch is not None else prefix
    if "~" in tail:
        head, _, n = tail.rpartition("~")
        if not n.isdigit():
            raise InvalidInputError(f'can\'t parse parent "{n}" in branch "{head}"')
        steps = int(n)
        if branch is not None:
            branch = head
        else:
            prefix = head
    return prefix, branch, steps


def branch_leaf(repo: Repo, branch: str) -> str:
    """Return the newest node on ``branch`` that has no child on the same branch."""
    name = "" if branch == "master" else branch
    on = repo.nodes.on_branch(name)
    leaves = [
        n
        for n in on
        if not any(repo.nodes[c].branch == name for c in n.children if c in repo.nodes)
    ]
    if not leaves:
        raise InvalidInputError(f'branch "{branch}" not found in repo "{repo.root}"')
    return max(leaves, key=lambda n: n.version_id).uuid


def walk_back(repo: Repo, uuid: str, steps: int, branch: str) -> str:
    """Return the ``steps``-th ancestor along first parents."""
    for _ in range(steps):
        parents = repo.nodes[uuid].parents
        if not parents:
            raise InvalidInputError(f'parent {steps} is out of range for branch "{branch}"')
        uuid = parents[0]
    return uuid


RepoLoader = Callable[[str], Repo]
"""Reads a repo record by root (a cache may stand in front of ``read_repo``)."""


class Resolver:
    """DVID's UUID specs against a store's UUID index: prefixes, ``:branch``, ``~N``.

    A version's repo never changes, so full UUIDs found once are remembered;
    prefixes are listed afresh every time (another server may have added a UUID
    that makes a prefix ambiguous).
    """

    def __init__(self, src: RefReader, load: RepoLoader | None = None) -> None:
        self.src = src
        self.load: RepoLoader = load or (lambda root: read_repo(src, root))
        self._roots: dict[str, str] = {}

    def resolve(self, spec: str) -> tuple[Repo, str]:
        """(record, node UUID) of a spec; 400-style errors for unknown or ambiguous ones."""
        if spec in self._roots and ":" not in spec and "~" not in spec:  # PERF: a UUID seen
            uuid, repo = self._match(spec)
            return repo, uuid
        prefix, branch, steps = split_spec(spec.strip())
        if not prefix and branch is not None:
            roots = repo_roots(self.src)
            if len(roots) != 1:
                raise InvalidInputError("UUID must be specified if more than one repo exists")
            repo = self.load(roots[0])
            uuid = repo.root
        else:
            uuid, repo = self._match(prefix)
        if branch is not None:
            uuid = branch_leaf(repo, branch)
        if steps:
            uuid = walk_back(repo, uuid, steps, branch or "")
        return repo, uuid

    def remember(self, uuid: str, root: str) -> None:
        """Note a UUID this process just indexed."""
        self._roots[uuid] = root

    def forget(self, uuid: str) -> None:
        """Drop a UUID whose index entry was deleted."""
        self._roots.pop(uuid, None)

    def _match(self, prefix: str) -> tuple[str, Repo]:
        if not prefix:
            raise InvalidInputError("empty UUID")
        uuid, root = self._lookup(prefix)
        try:
            repo = self.load(root)
        except NotFoundError:
            repo = None
        if repo is None or uuid not in repo.nodes:
            self.forget(uuid)  # a deleted repo, or an index entry ahead of its record
            raise NotFoundError(f"could not find UUID with partial match to {prefix}")
        return uuid, repo

    def _lookup(self, prefix: str) -> tuple[str, str]:
        root = self._roots.get(prefix)
        if root is not None:
            return prefix, root
        ref = read_ref(self.src, uuid_ref(prefix)) if len(prefix) >= 32 else None
        if ref is not None:
            self._roots[prefix] = ref.value.decode()
            return prefix, self._roots[prefix]
        hits = [uuid_of_ref(n) for n in self.src.list_refs(uuid_listing(prefix))]
        if prefix in hits:  # an exact name wins (a tag "v1" beside a tag "v10")
            hits = [prefix]
        if len(hits) > 1:
            raise InvalidInputError(f"more than one UUID matches {prefix}")
        if not hits:
            raise NotFoundError(f"could not find UUID with partial match to {prefix}")
        got = read_ref(self.src, uuid_ref(hits[0]))
        if got is None:
            raise NotFoundError(f"could not find UUID with partial match to {prefix}")
        self._roots[hits[0]] = got.value.decode()
        return hits[0], self._roots[hits[0]]
