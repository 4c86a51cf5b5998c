"""The transfer engine: walk trees top-down asking what the receiver has, send the rest bottom-up.

Discovery goes level by level from the roots, one have-check per level (split only
past ``HAVE_BATCH`` ids), and never descends into a subtree the receiver has.
Writing goes the other way, so that a stored node always has its children and
an interrupted transfer, run again, finds exactly what did not arrive:

1. blobs of missing leaves, then those leaves (leaves are handled in chunks of
   ``LEAF_CHUNK``, so memory does not grow with the data);
2. internal nodes, lowest level first (they are held until then: ~1/64 of the
   leaves' size, ~1.5 % of a volume's tree);
3. commits, manifests; the caller moves refs last.

Every object is re-hashed by the receiving peer before it is stored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cas_dvid.datatypes.regions import KeyFilter
from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects import Kind, ObjectId, to_hex
from cas_dvid.objects.ids import BytesLike
from cas_dvid.sync.abc import Peer
from cas_dvid.sync.walk import NodeDecoder, Task, child_tasks, leaf_blobs, verified
from cas_dvid.trees import EMPTY_ROOT, Node

HAVE_BATCH = 65536
LEAF_CHUNK = 4096
BATCH_BYTES = 16 << 20

Progress = Callable[[int, int], None]
"""Called with (objects, bytes) as they are sent."""


@dataclass(slots=True)
class Options:
    """How a transfer runs.

    Attributes:
        batch_bytes: target size of one upload/download batch.
        workers: batches in flight (capped by both peers' parallelism).
        rate: bytes per second to stay under (0: no limit).
        progress: called with (objects, bytes) as they are sent.

    """

    batch_bytes: int = BATCH_BYTES
    workers: int = 4
    rate: float = 0.0
    progress: Progress | None = None


@dataclass(slots=True)
class WalkResult:
    """What a walk sent and what it learnt about completeness."""

    blobs: int = 0
    nodes: int = 0
    objects: int = 0
    bytes: int = 0
    incomplete: set[ObjectId] = field(default_factory=set)
    complete: set[ObjectId] = field(default_factory=set)


class _Throttle:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.sent = 0
        self.lock = threading.Lock()

    def account(self, n: int) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            self.sent += n
            ahead = self.sent / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            time.sleep(ahead)


class Sender:
    """Copies objects from ``src`` to ``dst`` in batches, several in flight."""

    def __init__(self, src: Peer, dst: Peer, options: Options) -> None:
        self.src, self.dst, self.options = src, dst, options
        self.workers = max(1, min(options.workers, src.parallelism, dst.parallelism))
        self._throttle = _Throttle(options.rate)
        self._avg = 64 << 10
        self._lock = threading.Lock()
        self.objects = 0
        self.bytes = 0

    def _count(self, items: Sequence[tuple[ObjectId, BytesLike]]) -> None:
        n = sum(memoryview(s).nbytes for _, s in items)
        with self._lock:
            self.objects += len(items)
            self.bytes += n
            if items:
                self._avg = max(1, self.bytes // max(1, self.objects))
        self._throttle.account(n)
        if self.options.progress is not None:
            self.options.progress(len(items), n)

    def _batches(self, ids: Sequence[ObjectId]) -> list[list[ObjectId]]:
        per = max(1, min(4096, self.options.batch_bytes // max(1, self._avg)))
        per = min(per, max(1, -(-len(ids) // (2 * self.workers))))  # NOTE: keep every worker busy
        return [list(ids[i : i + per]) for i in range(0, len(ids), per)]

    def put(self, items: Sequence[tuple[ObjectId, BytesLike]]) -> None:
        """Send objects already in hand, in batches of about ``batch_bytes``."""
        batch: list[tuple[ObjectId, BytesLike]] = []
        size = 0
        for it in items:
            batch.append(it)
            size += memoryview(it[1]).nbytes
            if size >= self.options.batch_bytes:
                self.dst.put(batch)
                self._count(batch)
                batch, size = [], 0
        if batch:
            self.dst.put(batch)
            self._count(batch)

    def copy(self, ids: Sequence[ObjectId]) -> None:
        """Fetch objects from ``src`` and put them to ``dst``."""
        if not ids:
            return
        first = list(ids[: min(len(ids), 8)])
        self._copy_batch(first)  # NOTE: learns the object size before sizing batches
        rest = self._batches(ids[len(first) :])
        if self.workers == 1 or len(rest) <= 1:
            for b in rest:
                self._copy_batch(b)
            return
        with ThreadPoolExecutor(self.workers, thread_name_prefix="sync-copy") as pool:
            for _ in pool.map(self._copy_batch, rest):
                pass

    def _copy_batch(self, ids: list[ObjectId]) -> None:
        get = getattr(self.src, "get_stored", None)
        put = getattr(self.dst, "put_one", None)
        if get is not None and put is not None:
            # PERF: store to store, each object is read, re-hashed and written by one
            # thread while it is still in cache, with no hand-off to a second pool.
            items = []
            for oid in ids:
                stored = get(oid)
                put(oid, stored)
                items.append((oid, stored))
            self.src.stats.add(
                requests=1, objects_out=len(ids), bytes_out=sum(len(s) for _, s in items)
            )
            self.dst.stats.add(requests=1)
        else:
            items = self.src.fetch(ids)
            self.dst.put(items)
        self._count(items)


class Walker:
    """Finds what ``dst`` lacks under a set of roots and sends it from ``src``."""

    def __init__(
        self, src: Peer, dst: Peer, options: Options, *, watch: set[ObjectId] | None = None
    ) -> None:
        self.src, self.dst = src, dst
        self.sender = Sender(src, dst, options)
        self.decoder = NodeDecoder()
        self.result = WalkResult()
        self._watch = watch or set()  # ids the receiver lists as incomplete
        self._internal: dict[int, dict[ObjectId, bytes]] = {}
        self._leaves: list[tuple[Task, bytes, Node]] = []
        self._seen: set[tuple[ObjectId, int]] = set()
        self._kids: dict[ObjectId, list[ObjectId]] = {}
        self._pruned: set[ObjectId] = set()
        self._filtered: set[ObjectId] = set()
        self._walked: set[ObjectId] = set()
        self._probes: list[tuple[ObjectId, ObjectId]] = []  # (left-out child, its parent)

    def run(self, roots: Iterable[tuple[ObjectId, KeyFilter | None]]) -> WalkResult:
        """Send every object under ``roots`` that the receiver does not have."""
        frontier: list[Task] = []
        for root, flt in roots:
            if root != EMPTY_ROOT and self._first_visit(root, flt):
                frontier.append((root, None, flt))
        while frontier or self._probes:
            nxt: list[Task] = []
            probes, self._probes = self._probes, []
            for i in range(0, max(len(frontier), 1), HAVE_BATCH):
                nxt.extend(self._step(frontier[i : i + HAVE_BATCH], probes if i == 0 else []))
                if len(self._leaves) >= LEAF_CHUNK:
                    self._flush_leaves()
            frontier = nxt
        self._flush_leaves()
        self._send_internal()
        self._settle()
        self.result.objects = self.sender.objects
        self.result.bytes = self.sender.bytes
        return self.result

    def _first_visit(self, oid: ObjectId, flt: KeyFilter | None) -> bool:
        key = (oid, id(flt))
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def _step(self, tasks: list[Task], probes: list[tuple[ObjectId, ObjectId]]) -> list[Task]:
        """One have-check for a level, with the subtrees the filter left out one level up.

        A left-out subtree the receiver already has costs nothing and keeps its parent
        complete; one it lacks makes the parent incomplete (it is not sent).
        """
        if not tasks and not probes:
            return []
        have = self.dst.has([t[0] for t in tasks] + [p[0] for p in probes])
        for (_, parent), h in zip(probes, have[len(tasks) :], strict=True):
            if not h:
                self._pruned.add(parent)
        missing = [t for t, h in zip(tasks, have[: len(tasks)], strict=True) if not h]
        nxt: list[Task] = []
        for i in range(0, len(missing), LEAF_CHUNK):
            part = missing[i : i + LEAF_CHUNK]
            fetched = self.src.fetch([t[0] for t in part])
            for task, (oid, stored) in zip(part, fetched, strict=True):
                nxt.extend(self._visit(task, oid, stored))
        return nxt

    def _visit(self, task: Task, oid: ObjectId, stored: bytes) -> list[Task]:
        kind, raw = verified(oid, stored)
        if kind is not Kind.TREE:
            raise CorruptObjectError(f"object {to_hex(oid)} is a {kind.name}, expected a tree node")
        node = self.decoder.decode(oid, raw)
        if oid in self._watch:
            self._walked.add(oid)
        if task[2] is not None:
            self._filtered.add(oid)
        if node.level == 0:
            self._leaves.append((task, stored, node))
            return []
        self._internal.setdefault(node.level, {})[oid] = stored
        kids, outside = child_tasks(node, task[1], task[2])
        if task[2] is not None:
            self._kids[oid] = [k[0] for k in kids]
            self._probes += [(c, oid) for c in outside]
        return [k for k in kids if self._first_visit(k[0], k[2])]

    def _flush_leaves(self) -> None:
        if not self._leaves:
            return
        want: dict[ObjectId, None] = {}
        probes: dict[ObjectId, list[ObjectId]] = {}  # left-out blob -> leaves holding it
        for (oid, _, flt), _, node in self._leaves:
            blobs, outside = leaf_blobs(node, flt)
            want.update(dict.fromkeys(blobs))
            for b in outside:
                probes.setdefault(b, []).append(oid)
        ids = list(want) + [b for b in probes if b not in want]
        missing: list[ObjectId] = []
        for i in range(0, len(ids), HAVE_BATCH):
            part = ids[i : i + HAVE_BATCH]
            missing += [o for o, h in zip(part, self.dst.has(part), strict=True) if not h]
        for b in [m for m in missing if m not in want]:
            self._pruned.update(probes[b])
        missing = [m for m in missing if m in want]
        self.sender.copy(missing)
        self.result.blobs += len(missing)
        self.sender.put([(t[0], stored) for t, stored, _ in self._leaves])
        self.result.nodes += len(self._leaves)
        self._leaves = []

    def _send_internal(self) -> None:
        for level in sorted(self._internal):
            nodes = self._internal[level]
            self.sender.put(list(nodes.items()))
            self.result.nodes += len(nodes)
        self._internal = {}

    def _settle(self) -> None:
        """Which filtered nodes hold everything below them, leaves first."""
        done: dict[ObjectId, bool] = {}

        def complete(oid: ObjectId) -> bool:
            hit = done.get(oid)
            if hit is None:
                kids = [k for k in self._kids.get(oid, []) if k in self._filtered]
                hit = oid not in self._pruned and all(complete(k) for k in kids)
                done[oid] = hit
            return hit

        for oid in self._filtered:
            if not complete(oid):
                self.result.incomplete.add(oid)
        self.result.complete = {o for o in self._walked if o not in self.result.incomplete}
