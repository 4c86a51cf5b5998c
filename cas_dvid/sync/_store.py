"""A peer that is a store reached directly: ``file://``, ``s3://`` or ``memory://``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cas_dvid.backends import Backend, Ref
from cas_dvid.errors import NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.objects.ids import BytesLike
from cas_dvid.sync.abc import Peer
from cas_dvid.versions.refs import have_closures

T = TypeVar("T")
R = TypeVar("R")


class StorePeer(Peer):
    """Objects and refs of a backend, verified on the way in."""

    def __init__(self, store: ObjectStore | Backend, *, own: bool = False) -> None:
        super().__init__()
        self.store = store if isinstance(store, ObjectStore) else ObjectStore(store, cache_bytes=0)
        self.backend = self.store.backend
        self.url = self.backend.url
        self._own = own
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @property
    def parallelism(self) -> int:
        """As many as the backend likes in flight."""
        return max(1, self.backend.parallelism)

    def _map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        if len(items) < 8 or self.parallelism <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(
                        self.parallelism, thread_name_prefix="sync-store"
                    )
        return list(self._pool.map(fn, items))

    # -- refs -------------------------------------------------------------------------

    def get_ref(self, name: str) -> Ref | None:
        """Return a ref, or None."""
        try:
            return self.backend.get_ref(name)
        except NotFoundError:
            return None

    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Compare-and-swap on the backend."""
        return self.backend.cas_ref(name, expected, value)

    def delete_ref(self, name: str, expected: str) -> None:
        """Delete on the backend."""
        self.backend.delete_ref(name, expected)

    def list_refs(self, prefix: str = "") -> list[str]:
        """Ref names."""
        return list(self.backend.list_refs(prefix))

    # -- objects ----------------------------------------------------------------------

    def has(self, ids: Sequence[ObjectId]) -> list[bool]:
        """Tell, for each id, whether it is stored and not listed as incomplete."""
        self.stats.add(requests=1, have_requests=1, have_ids=len(ids))
        return have_closures(self.store, ids)

    def fetch(self, ids: Sequence[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """Return stored forms as the backend holds them (the receiver verifies)."""
        out = self._map(lambda i: (i, self.store.get_stored(i)), list(ids))
        self.stats.add(requests=1, objects_out=len(out), bytes_out=sum(len(s) for _, s in out))
        return out

    def get_stored(self, oid: ObjectId) -> bytes:
        """One stored form; NotFoundError names the id."""
        return self.store.get_stored(oid)

    def put_one(self, oid: ObjectId, stored: BytesLike) -> bool:
        """``put`` of one object, in the caller's thread."""
        written = self.store.put_stored(oid, stored)
        self.stats.add(objects_in=1, bytes_in=memoryview(stored).nbytes)
        return written

    def put(self, items: Sequence[tuple[ObjectId, BytesLike]]) -> int:
        """Re-hash each object, then put it if absent."""
        written = self._map(lambda it: self.store.put_stored(it[0], it[1]), list(items))
        self.stats.add(
            requests=1, objects_in=len(items), bytes_in=sum(memoryview(s).nbytes for _, s in items)
        )
        return sum(written)

    def close(self) -> None:
        """Stop the pool (and the store, if this peer opened it)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._own:
            self.store.close()
