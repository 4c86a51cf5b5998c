"""Garbage collection: remove objects no ref reaches, never ones younger than a grace period.

Roots: every repo record (each locked node's commit and, of that commit, the trees of
instances the record still lists; each open node's start roots), the heads of live
nodes and instances, published snapshots (``published/*``: manifest, commit, roots)
and gc's own state object.  Objects younger than the grace period are never deleted
and are marked from too (a writer's new tree nodes keep the older subtrees they
share), so a stored node always keeps its children.

Cost.  Every run lists the store (names, sizes, mtimes: no reads).  Marking reads
only tree nodes, commits and manifests, never blobs (a leaf names its blobs):

- full mark (the first run, ``full=True``, or when a root was dropped since the last
  run: a repo, instance or pin deleted, a head moved by a write): reads every
  reachable tree node once, ~1-2 % of a volume's bytes;
- incremental (no root was dropped since the last completed run, as on stores that
  only receive pushes, pulls, commits and new versions): only objects written since
  the last run can be garbage, and only those are read; an old node's subtree
  survived the last run whole, so marking stops there.  Cost follows the new
  objects, not the store.

Repo records name node tables (versions/nodetable.py), replaced by every DAG
operation; they are marked on every run but are not roots in the sense above, so
commits and new versions do not force a full mark.  The table nodes an operation
replaced are old by the next run, so only a full run removes them (a few KiB each).

The last completed run leaves ``gc/last`` naming a state object with its roots.
Concurrent writers: new objects are safe (grace period, and they are not in the
listing).  A writer that re-creates, byte for byte, an old object that is garbage in
the seconds between gc's last root read and its delete could lose it: ``put``
refreshes an existing object's mtime, but gc decides on the mtimes it listed;
``verify`` would report it.  Objects in packs (``backends._packs``) list with their
pack's mtime, objects in logs (``backends._logs``) with their record's time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from cas_dvid.backends import ByteRange, LocalBackend
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import Codec, Kind, ObjectId, ObjectStore, parse_object_id, to_hex
from cas_dvid.objects.codec import HEADER_SIZE, decode, parse_header
from cas_dvid.sync.publish import Manifest
from cas_dvid.sync.walk import NodeDecoder, node_refs
from cas_dvid.trees import EMPTY_ROOT, Tree
from cas_dvid.versions import Commit
from cas_dvid.versions.nodestore import ObjectNodeStore
from cas_dvid.versions.records import Records
from cas_dvid.versions.refs import (
    GC_REF,
    HEAD_PREFIX,
    PUBLISHED_PREFIX,
    REPO_PREFIX,
    parse_head_ref,
)

DEFAULT_GRACE = 3600.0
SLACK = 600.0  # NOTE: a batch of new tree nodes lands within seconds; allow for clock skew too


@dataclass(slots=True)
class GcReport:
    """What a gc run found and did."""

    mode: str = "full"
    listed: int = 0
    listed_bytes: int = 0
    reachable: int = 0
    examined: int = 0
    young: int = 0
    deleted: int = 0
    deleted_bytes: int = 0
    nodes_read: int = 0
    missing: int = 0
    partial_files: int = 0
    dry_run: bool = False
    seconds: float = 0.0
    garbage: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for people."""
        verb = "would remove" if self.dry_run else "removed"
        return (
            f"gc ({self.mode}): {self.listed} objects ({self.listed_bytes / 1e6:.1f} MB) listed, "
            f"{self.examined} examined, {self.reachable} reachable, "
            f"{self.young} within the grace period; {verb} {self.deleted} "
            f"({self.deleted_bytes / 1e6:.1f} MB); read {self.nodes_read} tree nodes "
            f"in {self.seconds:.2f} s"
        )


Item = tuple[ObjectId, Kind | None]
"""An object to follow and what its parent says it is (None: unknown, read its header)."""
Outcome = tuple[str, list[Item]]
"""``("read", refs)``, ``("blob", [])`` (only its header was read) or ``("missing", [])``."""
RefsMapper = Callable[[list[Item], bool], Iterable[Outcome]]
"""Follows items (in parallel, anywhere) and yields each one's outcome, in any order."""


def object_refs(store: ObjectStore, decoder: NodeDecoder, item: Item, commits: bool) -> Outcome:
    """Read one object and return what it points at; a blob's payload is never read.

    An object of unknown kind (a root, a young object) costs a 16-byte ranged read of
    its header first; tree nodes named by their parents do not.  ``commits``: follow
    a commit's trees (only young commits not yet in any record need that).
    """
    oid, hint = item
    backend = store.backend
    try:
        if (
            hint is None
            and parse_header(backend.get(to_hex(oid), ByteRange(0, HEADER_SIZE))).kind is Kind.BLOB
        ):
            return "blob", []
        kind, raw = decode(backend.get(to_hex(oid)), f"object {to_hex(oid)}")
    except NotFoundError:
        return "missing", []
    return "read", _refs(decoder, oid, memoryview(raw), kind, commits)


def _refs(
    decoder: NodeDecoder, oid: ObjectId, raw: memoryview, kind: Kind, commits: bool
) -> list[Item]:
    if kind is Kind.TREE:
        node = decoder.decode(oid, raw)
        hint = Kind.TREE if node.level else Kind.BLOB
        return [(r, hint) for r in node_refs(node)]
    if kind is Kind.COMMIT:
        # NOTE: a record's commits keep only the trees of instances it still lists
        # (collect_roots adds those); a young commit not yet in any record keeps all.
        if not commits:
            return []
        return [(parse_object_id(r), Kind.TREE) for r in Commit.decode(raw).roots.values()]
    if kind is Kind.MANIFEST:
        try:
            m = Manifest.parse(bytes(raw))
        except CorruptObjectError:
            return []  # gc's own state: it names candidates, it keeps nothing alive
        return [(m.commit, Kind.COMMIT), *((r, Kind.TREE) for r in m.roots.values())]
    return []


class _Marker:
    """Marks from roots; ``expand`` says which objects to read and follow.

    ``mapper`` follows each level's objects; by default on a thread pool here (the
    Dask job, ``cas_dvid.batch.gc_mark``, passes one that runs on workers).
    """

    def __init__(
        self,
        store: ObjectStore,
        expand: Callable[[ObjectId], bool],
        mapper: RefsMapper | None = None,
    ) -> None:
        self.store = store
        self.expand = expand
        self.mapper = mapper or self._local
        self.marked: set[ObjectId] = set()
        self.decoder = NodeDecoder()
        self.reads = 0
        self.missing = 0
        self.follow_commits = False

    def mark(self, ids: Iterable[ObjectId]) -> set[ObjectId]:
        """Mark ``ids`` and everything they reach; return what was newly marked."""
        new: set[ObjectId] = set()
        level: dict[ObjectId, Kind | None] = {i: None for i in ids if i not in self.marked}
        while level:
            self.marked.update(level)
            new.update(level)
            follow: list[Item] = [
                (i, k) for i, k in level.items() if k is not Kind.BLOB and self.expand(i)
            ]
            level = {}
            for status, refs in self.mapper(follow, self.follow_commits) if follow else ():
                self.reads += status == "read"
                self.missing += status == "missing"
                for ref, hint in refs:
                    if ref not in self.marked:
                        level[ref] = hint
        return new

    def _local(self, items: list[Item], commits: bool) -> list[Outcome]:
        backend = self.store.backend

        def one(item: Item) -> Outcome:
            return object_refs(self.store, self.decoder, item, commits)

        if len(items) < 8 or backend.parallelism <= 1:
            return [one(it) for it in items]
        with ThreadPoolExecutor(backend.parallelism, thread_name_prefix="gc-mark") as pool:
            return list(pool.map(one, items))


def collect_roots(store: ObjectStore) -> tuple[set[ObjectId], set[ObjectId]]:
    """Return the ids refs reach directly: (commits, tree roots, manifests; node tables).

    Repo records' node tables come apart: every DAG operation replaces its repo's
    table, which must not make the next run a full one (see ``collect``).
    """
    backend = store.backend
    records = Records(store, Tree(ObjectNodeStore(store)))
    roots: set[ObjectId] = set()
    tables: set[ObjectId] = set()
    live: set[tuple[str, str]] = set()
    for name in backend.list_refs(REPO_PREFIX):
        try:
            repo = records.parse(backend.get_ref(name).value)
        except NotFoundError:
            continue
        tables.add(repo.locked)
        datas = {i.data_uuid for i in repo.instances.values()}
        versioned = {i.data_uuid for i in repo.instances.values() if i.versioned}
        for u, node in repo.all_nodes().items():
            live.update((u, d) for d in datas)
            if node.locked and node.commit:
                cid = parse_object_id(node.commit)
                roots.add(cid)
                try:
                    commit = Commit.decode(store.get(cid, Kind.COMMIT))
                except NotFoundError:
                    continue
                roots.update(parse_object_id(r) for d, r in commit.roots.items() if d in versioned)
            else:
                roots.update(parse_object_id(r) for d, r in node.start.items() if d in datas)
    for name in backend.list_refs(HEAD_PREFIX):
        if parse_head_ref(name) in live:
            try:
                value = backend.get_ref(name).value
            except NotFoundError:
                continue
            if len(value) == 33:
                roots.add(ObjectId(value[1:]))
    for name in backend.list_refs(PUBLISHED_PREFIX):
        try:
            m = Manifest.parse(backend.get_ref(name).value)
        except NotFoundError:
            continue
        roots.update([m.id, m.commit, *m.roots.values()])
    roots.discard(EMPTY_ROOT)
    tables.discard(EMPTY_ROOT)
    return roots, tables


def _load_state(store: ObjectStore) -> tuple[ObjectId, dict[str, Any]] | None:
    try:
        ref = json.loads(store.backend.get_ref(GC_REF).value)
        sid = parse_object_id(ref["state"])
        doc = json.loads(bytes(store.get(sid, Kind.MANIFEST)))
        return sid, doc
    except (NotFoundError, CorruptObjectError, ValueError, KeyError):
        return None


def _save_state(
    store: ObjectStore, t_list: float, cutoff: float, roots: set[ObjectId], recheck: set[ObjectId]
) -> None:
    doc = {
        "format": 1,
        "kind": "gc-state",
        "time": t_list,
        "cutoff": cutoff,
        "roots": sorted(to_hex(r) for r in roots),
        "recheck": sorted(to_hex(r) for r in recheck),
    }
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    sid = store.put(Kind.MANIFEST, raw, Codec.ZSTD)
    value = json.dumps({"state": to_hex(sid), "time": t_list}).encode()
    for _ in range(20):
        try:
            ref = store.backend.get_ref(GC_REF)
            store.backend.cas_ref(GC_REF, ref.token, value)
            return
        except NotFoundError:
            try:
                store.backend.cas_ref(GC_REF, None, value)
                return
            except Exception:  # noqa: BLE001 - a racing gc wrote it: try again
                continue
        except Exception:  # noqa: BLE001
            continue


def collect(
    store: ObjectStore,
    *,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
    slack: float = SLACK,
    mapper: RefsMapper | None = None,
) -> GcReport:
    """Remove unreachable objects older than ``grace`` seconds (see the module docstring).

    ``slack``: seconds before the last run's cutoff that an incremental run looks at again.
    ``mapper``: where the mark phase reads objects (see ``_Marker``).
    """
    t0 = time.monotonic()
    report = GcReport(dry_run=dry_run)
    t_list = time.time()
    cutoff = t_list - grace
    listing = {}
    for oid, info in store.iter_objects():
        listing[oid] = (info.size, info.mtime)
        if progress is not None:
            progress(1)
    report.listed = len(listing)
    report.listed_bytes = sum(s for s, _ in listing.values())
    roots, tables = collect_roots(store)
    loaded = _load_state(store)
    state = None if full else loaded
    window = -float("inf")
    recheck: set[ObjectId] = set()
    if state is not None:
        prev = {parse_object_id(h) for h in state[1].get("roots", [])}
        if prev <= roots:
            window = float(state[1]["cutoff"]) - slack
            recheck = {parse_object_id(h) for h in state[1].get("recheck", [])}
            report.mode = "incremental"

    def expand(oid: ObjectId) -> bool:
        info = listing.get(oid)
        return info is None or info[1] >= window or oid in recheck

    marker = _Marker(store, expand, mapper)
    marker.mark(roots | tables | ({loaded[0]} if loaded is not None else set()))
    young = [o for o, (_, m) in listing.items() if m >= cutoff]
    report.young = len(young)
    marker.follow_commits = True
    by_young = marker.mark(young)
    marker.follow_commits = False
    pinned_old = {o for o in by_young if o in listing and listing[o][1] < cutoff}
    moved, moved_tables = collect_roots(store)  # roots that moved while we marked
    marker.mark((moved - roots) | (moved_tables - tables))
    candidates = [
        o for o, (_, m) in listing.items() if m < cutoff and (m >= window or o in recheck)
    ]
    report.examined = len(candidates)
    garbage = [o for o in candidates if o not in marker.marked]
    report.reachable = len(marker.marked)
    report.nodes_read = marker.reads
    report.missing = marker.missing
    report.garbage = [to_hex(o) for o in garbage]
    report.deleted = len(garbage)
    report.deleted_bytes = sum(listing[o][0] for o in garbage)
    if not dry_run:
        store.delete_many(garbage)
        report.partial_files = _clean_partials(store, grace)
        _save_state(store, t_list, cutoff, roots, pinned_old)
    report.seconds = time.monotonic() - t0
    return report


def _clean_partials(store: ObjectStore, grace: float) -> int:
    """Temporary files left by killed writers on a local store."""
    backend = store.backend
    if not isinstance(backend, LocalBackend):
        return 0
    n = 0
    for path in backend.stale_partials(max(grace, 60.0)):
        try:
            path.unlink()
            n += 1
        except FileNotFoundError:
            continue
    return n
