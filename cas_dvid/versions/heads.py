"""Heads: the one mutable ref per (unlocked node, instance), and the writer that moves them.

A head's value is one state byte and a 32-byte tree root: ``W`` (writable) or ``L``
(sealed by a commit).  A write reads the head, applies its batch to the tree and
swaps the head by compare-and-swap; a loser re-applies on the winner's root, so no
acknowledged write is lost.  Commit seals a head with the same swap, so a write
either lands before the seal (and is in the commit) or sees the seal and is refused.

Within one process, concurrent writers to the same head are grouped: whoever holds
the head's lock applies every batch waiting for it in one tree apply and one swap
(group commit), which turns N racing swaps into one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

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

Ops = dict[bytes, "bytes | None | Update"]
"""key -> value, None to delete, or an ``Update`` run on the value current at apply time."""


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
    ops: Ops
    done: bool = False
    root: ObjectId | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class _Queue:
    lock: threading.Lock = field(default_factory=threading.Lock)
    items: list[_Pending] = field(default_factory=list)
    items_lock: threading.Lock = field(default_factory=threading.Lock)


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
        ops: Ops,
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> ObjectId:
        """Apply ``ops`` at the head; return the root that includes them.

        ``start`` gives the root to begin from when the head does not exist yet;
        ``locked_msg`` is the LockedError message if the head turns out sealed.
        """
        key = (node_uuid, data_uuid)
        with self._lock:
            q = self._queues.setdefault(key, _Queue())
        me = _Pending(ops)
        with q.items_lock:
            q.items.append(me)
        with q.lock:
            if not me.done:
                with q.items_lock:
                    batch, q.items = q.items, []
                self._apply(node_uuid, data_uuid, batch, start, locked_msg)
        if me.error is not None:
            raise me.error
        assert me.root is not None
        return me.root

    def _apply(
        self,
        node_uuid: str,
        data_uuid: str,
        batch: list[_Pending],
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> None:
        merged: Ops = {}
        for p in batch:
            for k, v in p.ops.items():
                merged[k] = _compose(merged[k], v) if k in merged and callable(v) else v
        try:
            root = self._swap_in(node_uuid, data_uuid, merged, start, locked_msg)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting writer
            for p in batch:
                p.error, p.done = exc, True
            return
        for p in batch:
            p.root, p.done = root, True

    def _swap_in(
        self,
        node_uuid: str,
        data_uuid: str,
        ops: Ops,
        start: Callable[[], ObjectId],
        locked_msg: str,
    ) -> ObjectId:
        for _ in range(MAX_SWAP_ATTEMPTS):
            head = self.heads.read(node_uuid, data_uuid)
            if head is not None and head.sealed:
                raise LockedError(locked_msg)
            base = start() if head is None else head.root
            puts, deletes = self._resolve(base, ops)
            new_root = self.tree.apply(base, puts, deletes)
            try:
                self.heads.swap(node_uuid, data_uuid, head, new_root)
                return new_root
            except ConflictError:
                continue  # another process moved the head: re-apply on its root
        raise ConflictError(
            f"gave up after {MAX_SWAP_ATTEMPTS} lost swaps on {head_ref(node_uuid, data_uuid)}"
        )

    def _resolve(self, base: ObjectId, ops: Ops) -> tuple[dict[bytes, bytes], list[bytes]]:
        """Split ops into puts and deletes, running updates against ``base``'s values."""
        updates = [k for k, v in ops.items() if callable(v)]
        current = self.tree.get_many(base, updates) if updates else {}
        puts: dict[bytes, bytes] = {}
        deletes: list[bytes] = []
        for k, v in ops.items():
            value = v(current.get(k)) if callable(v) else v
            if value is None:
                deletes.append(k)
            else:
                puts[k] = value
        return puts, deletes


def _compose(first: bytes | None | Update, then: Update) -> Update:
    if callable(first):
        return lambda old: then(first(old))
    return lambda _old: then(first)
