"""Heads: the one mutable ref per (unlocked node, instance), and the writer that moves them.

A head's value is one state byte and a 32-byte tree root: ``W`` (writable) or ``L``
(sealed by a commit).  A write reads the head, applies its batch to the tree and
swaps the head by compare-and-swap; a loser re-applies on the winner's root, so no
acknowledged write is lost.  Commit seals a head with the same swap, so a write
either lands before the seal (and is in the commit) or sees the seal and is refused.

Within one process, concurrent writers to the same head are grouped: whoever holds
the head's lock applies every batch waiting for it in one tree apply and one swap
(group commit), which turns N racing swaps into one.

A write is a batch of ops, or a ``Plan``: a function that reads the tree as it is
when the write is applied and returns the ops.  A plan runs again on the winner's
root after a lost swap, so a read-modify-write over many keys (a labelmap write
updating blocks, label index and counters together) never acts on stale values, and
of two writers whose plans conflict the second sees the first's result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cas_dvid.backends import Backend
from cas_dvid.errors import ConflictError, CorruptObjectError, LockedError, NotFoundError
from cas_dvid.objects import ObjectId
from cas_dvid.trees import Tree
from cas_dvid.versions.refs import head_ref

OPEN = b"W"
SEALED = b"L"
MAX_SWAP_ATTEMPTS = 1000

Update = Callable[[bytes | None], bytes | None]
"""A read-modify-write op: old value (None if absent) -> new value (None deletes)."""

Ops = Mapping[bytes, "bytes | None | Update"]
"""key -> value, None to delete, or an ``Update`` run on the value current at apply time."""


class Reader(Protocol):
    """The tree as the write about to be applied sees it (earlier writes of its batch too)."""

    def __call__(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the values of the present keys among ``keys``."""
        ...

    def range(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        """Return the entries with ``start <= key < end`` (None: no end), in key order."""
        ...


Plan = Callable[[Reader], Ops]
"""A write computed from the current tree: called (again after a lost swap) with a reader."""

Write = Ops | Plan


@dataclass(frozen=True, slots=True)
class Head:
    """A head as read: its root, whether it is sealed, and the token to swap it with."""

    root: ObjectId
    sealed: bool
    token: str


def _parse(name: str, value: bytes, token: str) -> Head:
    if len(value) != 33 or value[:1] not in (OPEN, SEALED):
        raise CorruptObjectError(f"head {name} holds {len(value)} unreadable bytes")
    return Head(ObjectId(value[1:]), value[:1] == SEALED, token)


class Heads:
    """Read and swap head refs on a backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def read(self, node_uuid: str, data_uuid: str) -> Head | None:
        """Return the head, or None if nothing was written at this node yet."""
        name = head_ref(node_uuid, data_uuid)
        try:
            ref = self.backend.get_ref(name)
        except NotFoundError:
            return None
        return _parse(name, ref.value, ref.token)

    def swap(
        self,
        node_uuid: str,
        data_uuid: str,
        expected: Head | None,
        root: ObjectId,
        *,
        seal: bool = False,
    ) -> Head:
        """Compare-and-swap a head (``expected=None``: it must not exist yet)."""
        value = (SEALED if seal else OPEN) + bytes(root)
        token = self.backend.cas_ref(
            head_ref(node_uuid, data_uuid), None if expected is None else expected.token, value
        )
        return Head(root, seal, token)

    def seal(self, node_uuid: str, data_uuid: str, start: ObjectId) -> ObjectId:
        """Seal a head (creating it at ``start`` if absent); return the sealed root."""
        for _ in range(MAX_SWAP_ATTEMPTS):
            head = self.read(node_uuid, data_uuid)
            if head is not None and head.sealed:
                return head.root
            root = start if head is None else head.root
            try:
                self.swap(node_uuid, data_uuid, head, root, seal=True)
                return root
            except ConflictError:
                continue
        raise ConflictError(f"could not seal head {head_ref(node_uuid, data_uuid)}")

    def delete(self, node_uuid: str, data_uuid: str) -> None:
        """Remove a head (instance or repo deletion)."""
        head = self.read(node_uuid, data_uuid)
        if head is not None:
            self.backend.delete_ref(head_ref(node_uuid, data_uuid), head.token)


@dataclass(slots=True)
class _Pending:
    write: Write
    done: bool = False
    root: ObjectId | None = None
    error: BaseException | None = None


class _Overlay:
    """The writes of one batch so far, over the base root: what the next write reads (a Reader).

    PERF: ``range`` merges the batch's changes by scanning them; batches are small.
    """

    def __init__(self, tree: Tree, base: ObjectId) -> None:
        self.tree = tree
        self.base = base
        self.changes: dict[bytes, bytes | None] = {}

    def __call__(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the values of the present keys among ``keys``."""
        out: dict[bytes, bytes] = {}
        missing = []
        for k in keys:
            if k in self.changes:
                v = self.changes[k]
                if v is not None:
                    out[k] = v
            else:
                missing.append(k)
        if missing:
            out.update(self.tree.get_many(self.base, missing))
        return out

    def range(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        """Return the entries with ``start <= key < end``, this batch's changes merged in."""
        merged = dict(self.tree.range(self.base, start, end))
        for k, v in self.changes.items():
            if k >= start and (end is None or k < end):
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
        return sorted(merged.items())

    def add(self, write: Write) -> None:
        """Resolve one write against what is here; nothing changes if it raises."""
        ops = write(self) if callable(write) else write
        updates = [k for k, v in ops.items() if callable(v)]
        current = self(updates) if updates else {}
        resolved = {k: v(current.get(k)) if callable(v) else v for k, v in ops.items()}
        self.changes.update(resolved)

    def split(self) -> tuple[dict[bytes, bytes], list[bytes]]:
        puts = {k: v for k, v in self.changes.items() if v is not None}
        return puts, [k for k, v in self.changes.items() if v is None]


@dataclass(slots=True)
class _Queue:
    """The writers waiting on one head, and what this process last swapped into it.

    ``last`` is the head this process's last successful swap left; ``trusted`` says the
    head read before the swap after it found ``last`` unchanged (nobody else writes
    this head), so the next apply may start from ``last`` without reading the ref.
    The swap is a compare-and-swap on ``last``'s token either way: a head moved or
    sealed by anyone else fails it, and the batch is re-applied on a fresh read.
    """

    lock: threading.Lock = field(default_factory=threading.Lock)
    items: list[_Pending] = field(default_factory=list)
    items_lock: threading.Lock = field(default_factory=threading.Lock)
    last: Head | None = None
    trusted: bool = False


class TreeReader:
    """A Reader of one tree root (what reads share with plans)."""

    def __init__(self, tree: Tree, root: ObjectId) -> None:
        self.tree = tree
        self.root = root

    def __call__(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Return the values of the present keys among ``keys``."""
        return self.tree.get_many(self.root, keys)

    def range(self, start: bytes, end: bytes | None) -> list[tuple[bytes, bytes]]:
        """Return the entries with ``start <= key < end``, in key order."""
        return list(self.tree.range(self.root, start, end))


class HeadWriter:
    """Applies write batches to heads with group commit and CAS retry."""

    def __init__(self, heads: Heads, tree: Tree) -> None:
        self.heads = heads
        self.tree = tree
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._lock = threading.Lock()

    def write(
        self,
        node_uuid: str,
        data_uuid: str,
        write: Write,
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> ObjectId:
        """Apply ``write`` (ops, or a plan) at the head; return the root that includes it.

        ``start`` gives the root to begin from when the head does not exist yet;
        ``locked_msg`` is the LockedError message if the head turns out sealed.
        """
        key = (node_uuid, data_uuid)
        with self._lock:
            q = self._queues.setdefault(key, _Queue())
        me = _Pending(write)
        with q.items_lock:
            q.items.append(me)
        with q.lock:
            if not me.done:
                with q.items_lock:
                    batch, q.items = q.items, []
                self._apply(q, node_uuid, data_uuid, batch, start, locked_msg)
        if me.error is not None:
            raise me.error
        assert me.root is not None
        return me.root

    def _apply(
        self,
        q: _Queue,
        node_uuid: str,
        data_uuid: str,
        batch: list[_Pending],
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> None:
        try:
            root, failed = self._swap_in(q, node_uuid, data_uuid, batch, start, locked_msg)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting writer
            for p in batch:
                p.error, p.done = exc, True
            return
        for i, p in enumerate(batch):
            p.error = failed.get(i)
            p.root = None if p.error is not None else root
            p.done = True

    def _swap_in(
        self,
        q: _Queue,
        node_uuid: str,
        data_uuid: str,
        batch: list[_Pending],
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> tuple[ObjectId, dict[int, Exception]]:
        """Resolve every write on the current root and swap; again on the winner's if lost.

        PERF: a head only this process writes is not read before each apply (``_Queue``):
        a keyvalue POST saves one ref read.
        """
        for _ in range(MAX_SWAP_ATTEMPTS):
            if q.trusted and q.last is not None:
                head: Head | None = q.last
            else:
                head = self.heads.read(node_uuid, data_uuid)
                q.trusted = head is not None and head == q.last
            if head is not None and head.sealed:
                raise LockedError(locked_msg)
            base = start() if head is None else head.root
            overlay = _Overlay(self.tree, base)
            failed: dict[int, Exception] = {}
            for i, p in enumerate(batch):
                try:
                    overlay.add(p.write)
                except Exception as exc:  # noqa: BLE001 - that writer's own error
                    failed[i] = exc
            if len(failed) == len(batch):
                return base, failed
            puts, deletes = overlay.split()
            new_root = self.tree.apply(base, puts, deletes)
            try:
                q.last = self.heads.swap(node_uuid, data_uuid, head, new_root)
                return new_root, failed
            except ConflictError:
                q.last, q.trusted = None, False
                continue  # another process moved the head: re-apply on its root
        raise ConflictError(
            f"gave up after {MAX_SWAP_ATTEMPTS} lost swaps on {head_ref(node_uuid, data_uuid)}"
        )
