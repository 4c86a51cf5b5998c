"""Verify: walk a closure and re-hash every object; report missing and corrupt ids.

Walks level by level from commits and tree roots down to blobs, fetching and
re-hashing batches on a few threads (reading, lz4 and BLAKE3 release the GIL), and
checks each id once however many versions share it.  A partial (``--box``) version
is checked against the region it holds: blocks outside it are not expected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cas_dvid.datatypes.partial import region_filter
from cas_dvid.datatypes.regions import KeyFilter
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import Kind, ObjectId, parse_object_id, to_hex
from cas_dvid.sync.abc import Peer
from cas_dvid.sync.publish import published
from cas_dvid.sync.records import resolve, spatial
from cas_dvid.sync.tables import PeerRecords
from cas_dvid.sync.walk import NodeDecoder, child_tasks, verified
from cas_dvid.trees import EMPTY_ROOT, Node
from cas_dvid.versions import Commit, Repo
from cas_dvid.versions.refs import head_ref, repo_roots
from cas_dvid.versions.values import value_ref

BATCH = 16
Item = tuple[ObjectId, bytes | None, KeyFilter | None, str, str]
"""id, range start, filter, role, where it is used (repo, instance, version, key)."""
Root = tuple[ObjectId, KeyFilter | None, str]  # a tree root, its filter, where used
# NOTE: what a broken stored object can raise while it is decoded; each is a fault to
# report, never a reason for verify to stop.
DECODE_FAULTS = (CorruptObjectError, ValueError, KeyError, IndexError, OverflowError, TypeError)


@dataclass(slots=True)
class VerifyReport:
    """What a verify found."""

    objects: int = 0
    bytes: int = 0
    missing: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No missing and no corrupt object."""
        return not self.missing and not self.corrupt

    def summary(self) -> str:
        """One line for people."""
        state = "OK" if self.ok else f"{len(self.missing)} missing, {len(self.corrupt)} corrupt"
        return (
            f"verified {self.objects} objects ({self.bytes / 1e6:.1f} MB) in "
            f"{len(self.versions)} version(s): {state}"
        )


class Checker:
    """Re-hashes closures on a peer, each object once."""

    def __init__(
        self, peer: Peer, *, workers: int = 4, progress: Callable[[int, int], None] | None = None
    ) -> None:
        self.peer = peer
        self.report = VerifyReport()
        self.workers = max(1, min(workers, peer.parallelism))
        self.progress = progress
        self._seen: set[tuple[ObjectId, int]] = set()
        self._local = threading.local()
        self._lock = threading.Lock()

    # -- entry points -----------------------------------------------------------------

    def commits(self, ids: Sequence[ObjectId]) -> dict[ObjectId, Commit]:
        """Check commit objects; return those that are sound."""
        out: dict[ObjectId, Commit] = {}
        todo = [i for i in ids if self._first((i, None, None, "commit", ""))]
        fetched = self._fetch(todo)
        self._missing(todo, fetched, {i: f"commit {to_hex(i)}" for i in todo})
        for oid, stored in fetched:
            try:
                kind, raw = verified(oid, stored)
                if kind is not Kind.COMMIT:
                    raise CorruptObjectError(
                        f"object {to_hex(oid)} is a {kind.name}, expected a commit"
                    )
                out[oid] = Commit.decode(raw)
            except DECODE_FAULTS as exc:
                self._corrupt(oid, exc, "a commit")
        return out

    def trees(self, roots: Iterable[Root]) -> None:
        """Check every tree node and blob under ``roots``."""
        level: list[Item] = [(r, None, f, "tree", w) for r, f, w in roots if r != EMPTY_ROOT]
        level = [t for t in level if self._first(t)]
        while level:
            batches = [level[i : i + BATCH] for i in range(0, len(level), BATCH)]
            nxt: list[Item] = []
            if self.workers == 1 or len(batches) == 1:
                results = [self._check(b) for b in batches]
            else:
                with ThreadPoolExecutor(self.workers, thread_name_prefix="verify") as pool:
                    results = list(pool.map(self._check, batches))
            for r in results:
                nxt += [t for t in r if self._first(t)]
            level = nxt

    # -- internals --------------------------------------------------------------------

    def _first(self, item: Item) -> bool:
        key = (item[0], id(item[2]))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _fetch(self, ids: list[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        if not ids:
            return []
        direct = getattr(self.peer, "get_stored", None)
        if direct is not None:  # PERF: a store peer's reads run in this worker, not a second pool
            return self._fetch_each(ids, direct)
        try:
            return self.peer.fetch(ids)
        except NotFoundError:
            pass
        return self._fetch_each(ids, lambda oid: self.peer.fetch([oid])[0][1])

    def _fetch_each(
        self, ids: list[ObjectId], get: Callable[[ObjectId], bytes]
    ) -> list[tuple[ObjectId, bytes]]:
        out = []
        for oid in ids:
            try:
                out.append((oid, get(oid)))
            except NotFoundError:
                continue
        return out

    def _missing(
        self, ids: list[ObjectId], fetched: list[tuple[ObjectId, bytes]], where: dict[ObjectId, str]
    ) -> None:
        got = {oid for oid, _ in fetched}
        lines = [f"{to_hex(i)} (used by {where[i]})" for i in ids if i not in got]
        if lines:
            with self._lock:
                self.report.missing += lines

    def _corrupt(self, oid: ObjectId, exc: Exception, where: str) -> None:
        why = str(exc) if isinstance(exc, CorruptObjectError) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.report.corrupt.append(f"{to_hex(oid)}: {why} (used by {where})")

    def _decoder(self) -> NodeDecoder:
        d: NodeDecoder | None = getattr(self._local, "decoder", None)
        if d is None:
            d = self._local.decoder = NodeDecoder()
        return d

    def _check(self, batch: list[Item]) -> list[Item]:
        """Fetch and re-hash a batch; return what its tree nodes point at."""
        by_id = {t[0]: t for t in batch}
        fetched = self._fetch(list(by_id))
        self._missing(list(by_id), fetched, {i: t[4] for i, t in by_id.items()})
        nxt: list[Item] = []
        size = 0
        for oid, stored in fetched:
            size += len(stored)
            task = by_id[oid]
            try:
                kind, raw = verified(oid, stored)
                if task[3] == "blob":
                    continue
                if kind is not Kind.TREE:
                    raise CorruptObjectError(
                        f"object {to_hex(oid)} is a {kind.name}, expected a tree node"
                    )
                node = self._decoder().decode(oid, raw)
                if node.level:
                    kids, _ = child_tasks(node, task[1], task[2])
                    nxt += [(k, lo, f, "tree", task[4]) for k, lo, f in kids]
                else:
                    nxt += [
                        (b, None, None, "blob", f"{task[4]} key {_show(key)}")
                        for key, b in _leaf_refs(node, task[2])
                    ]
            except DECODE_FAULTS as exc:
                self._corrupt(oid, exc, task[4])
                continue
        with self._lock:
            self.report.objects += len(fetched)
            self.report.bytes += size
        if self.progress is not None:
            self.progress(len(fetched), size)
        return nxt


def _leaf_refs(node: Node, flt: KeyFilter | None) -> list[tuple[bytes, ObjectId]]:
    """Return the (key, blob id) pairs of a leaf's entries the filter keeps."""
    out = []
    for key, val in zip(node.keys, node.vals, strict=True):
        ref = value_ref(val)
        if ref is not None and (flt is None or flt.keep(key)):
            out.append((key, ref))
    return out


def _show(key: bytes) -> str:
    """Show a tree key as people read it: its text when it is printable, else hex."""
    text = key[1:].decode("ascii", "replace")
    if text and text.isprintable() and "\ufffd" not in text:
        return f"{key[:1].hex()}:{text!r}"
    return key.hex()


def _where(repo: Repo, uuid: str, name: str) -> str:
    return f"repo {repo.root} instance {name!r} version {uuid}"


def _repo_roots(checker: Checker, repo: Repo, nodes: Iterable[str]) -> list[Root]:
    """Roots of ``nodes``' live instances: from commits, or from heads for open versions."""
    nodes = list(nodes)
    cids = {u: parse_object_id(repo.nodes[u].commit or "") for u in nodes if repo.nodes[u].locked}
    commits = checker.commits(list(cids.values()))
    roots: list[Root] = []
    heads = checker.peer.get_refs(
        [head_ref(u, i.data_uuid) for u in nodes for i in repo.instances.values() if u not in cids]
    )
    for u in nodes:
        for inst in repo.instances.values():
            flt = region_filter(repo, u, inst, spatial(inst))
            if u in cids:
                c = commits.get(cids[u])
                if c is not None and inst.data_uuid in c.roots and inst.versioned:
                    roots.append(
                        (parse_object_id(c.roots[inst.data_uuid]), flt, _where(repo, u, inst.name))
                    )
                continue
            head = heads.get(head_ref(u, inst.data_uuid))
            where = _where(repo, u, inst.name)
            if head is not None:
                roots.append((ObjectId(head.value[1:]), flt, where))
            elif inst.data_uuid in repo.nodes[u].start:
                roots.append((parse_object_id(repo.nodes[u].start[inst.data_uuid]), flt, where))
    return roots


def verify_version(
    peer: Peer, spec: str, *, workers: int = 4, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Verify a version and every ancestor the store's record holds."""
    repo, uuid = resolve(peer, spec)
    checker = Checker(peer, workers=workers, progress=progress)
    nodes = sorted(repo.ancestors(uuid))
    checker.trees(_repo_roots(checker, repo, nodes))
    checker.report.versions = nodes
    return checker.report


def verify_commit(
    peer: Peer,
    commit: ObjectId,
    *,
    history: bool = False,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyReport:
    """Verify from a commit id alone: the commit, and the roots its manifest published.

    Without a manifest, every root the commit names.

    With ``history``, parent commits and their data too.
    """
    checker = Checker(peer, workers=workers, progress=progress)
    pins = published(peer)
    todo = [commit]
    while todo:
        commits = checker.commits(todo)
        todo = []
        for cid, c in commits.items():
            pin = pins.get(to_hex(cid))
            roots = (
                pin.roots
                if pin is not None
                else {d: parse_object_id(r) for d, r in c.roots.items()}
            )
            where = f"commit {to_hex(cid)} version {c.uuid}"
            checker.trees((r, None, f"{where} data {d}") for d, r in roots.items())
            checker.report.versions.append(c.uuid)
            if history:
                todo += [parse_object_id(p) for p in c.parents if p]
    return checker.report


def verify_all(
    peer: Peer, *, workers: int = 4, progress: Callable[[int, int], None] | None = None
) -> VerifyReport:
    """Every version of every repo, and every published snapshot, in the store."""
    checker = Checker(peer, workers=workers, progress=progress)
    records = PeerRecords(peer)
    for root in repo_roots(peer):
        try:
            repo = records.read(root)
        except NotFoundError as exc:
            checker.report.missing.append(f"repo record of {root}: {exc}")
            continue
        except DECODE_FAULTS as exc:
            checker.report.corrupt.append(f"repo record of {root}: {exc}")
            continue
        nodes = list(repo.all_nodes())
        table = (repo.locked, None, f"repo {root} table of locked versions")
        checker.trees([table, *_repo_roots(checker, repo, nodes)])
        checker.report.versions += nodes
    try:
        pins = published(peer)
    except DECODE_FAULTS as exc:
        checker.report.corrupt.append(f"published manifests: {exc}")
        pins = {}
    for cid, pin in pins.items():
        checker.commits([parse_object_id(cid)])
        where = f"published snapshot {cid}"
        checker.trees((r, None, f"{where} data {d}") for d, r in pin.roots.items())
    return checker.report
