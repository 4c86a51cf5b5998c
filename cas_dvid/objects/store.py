"""The object store: typed immutable objects, named by BLAKE3, verified on read."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cas_dvid.backends.abc import Backend, ObjectInfo
from cas_dvid.errors import CorruptObjectError, MissingObjectError, NotFoundError
from cas_dvid.objects._malloc import tune_malloc
from cas_dvid.objects.cache import LRUCache
from cas_dvid.objects.codec import Codec, decode, encode, parse_codec
from cas_dvid.objects.ids import BytesLike, Kind, ObjectId, content_id, parse_object_id, to_hex

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CACHE_BYTES = 256 << 20


class ObjectStore:
    """Put and get immutable objects on a backend.

    ``get`` re-hashes what it reads (unless ``verify=False``) and raises
    ``CorruptObjectError`` naming the expected and actual ids on a mismatch, so
    wrong bytes are never returned.  Decoded objects are kept in a bounded LRU
    cache; a hit is a dict lookup.  Batch calls run on a thread pool sized by the
    backend's ``parallelism`` (hashing, lz4 and I/O all release the GIL).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        codec: Codec | str = Codec.LZ4,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        verify: bool = True,
        threads: int | None = None,
    ) -> None:
        tune_malloc()
        self.backend = backend
        self.codec = parse_codec(codec)
        self.verify = verify
        self.cache: LRUCache[ObjectId, tuple[Kind, memoryview]] = LRUCache(cache_bytes)
        self._threads = backend.parallelism if threads is None else threads
        self._min_batch = max(2, backend.min_parallel_batch)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- batching -------------------------------------------------------------

    def _map(
        self, fn: Callable[[T], R], items: Sequence[T], min_batch: int | None = None
    ) -> list[R]:
        if len(items) < (self._min_batch if min_batch is None else min_batch) or self._threads <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            with self._pool_lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="objects")
        return list(self._pool.map(fn, items))

    # -- writing --------------------------------------------------------------

    def put(self, kind: Kind, data: BytesLike, codec: Codec | None = None) -> ObjectId:
        """Store ``data`` as ``kind`` and return its id (idempotent)."""
        oid = content_id(kind, data)
        self.backend.put_if_absent(
            to_hex(oid), encode(kind, data, self.codec if codec is None else codec)
        )
        return oid

    def put_many(
        self, items: Iterable[tuple[Kind, BytesLike]], codec: Codec | None = None
    ) -> list[ObjectId]:
        """Store many objects; ids come back in input order."""
        return self._map(lambda kd: self.put(kd[0], kd[1], codec), list(items))

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``fn`` over ``items`` on the store's pool (work that does I/O, hashing or copies).

        Unlike the batch calls, any batch of two or more goes to the pool: callers group
        their work into a few chunks themselves.
        """
        return self._map(fn, items, min_batch=2)

    @property
    def threads(self) -> int:
        """Size of the pool batch calls use."""
        return self._threads

    def put_known(self, kind: Kind, objects: Mapping[ObjectId, BytesLike]) -> None:
        """Store objects whose ids the caller computed with ``content_id`` (tree nodes).

        On a backend that batches (``pack_min``), they go down in one ``put_batch``
        (the file store: one pack file, or for a few one append to its log), encoded on
        the pool first.
        """
        codec = self.codec
        items = list(objects.items())
        if self.backend.pack_min > 0:
            encoded = self._map(lambda it: (to_hex(it[0]), encode(kind, it[1], codec)), items)
            self.backend.put_batch(encoded)
            return

        def one(item: tuple[ObjectId, BytesLike]) -> None:
            self.backend.put_if_absent(to_hex(item[0]), encode(kind, item[1], codec))

        self._map(one, items)

    def put_stored(self, oid: ObjectId, stored: BytesLike) -> bool:
        """Accept an object in stored form from elsewhere (sync): decode and re-hash first."""
        self._check(oid, stored)
        return self.backend.put_if_absent(to_hex(oid), [stored])

    # -- reading --------------------------------------------------------------

    def _check(self, oid: ObjectId, stored: BytesLike) -> tuple[Kind, memoryview]:
        kind, raw = decode(stored, f"object {to_hex(oid)}")
        if self.verify:
            actual = content_id(kind, raw)
            if actual != oid:
                raise CorruptObjectError(
                    f"checksum mismatch for {to_hex(oid)}: got {to_hex(actual)}"
                )
        return kind, memoryview(raw).toreadonly()

    def get_object(self, oid: ObjectId) -> tuple[Kind, memoryview]:
        """Return ``(kind, raw bytes)`` of an object, verified; the view is read-only."""
        hit = self.cache.get(oid)
        if hit is not None:
            return hit
        try:
            stored = self.backend.get(to_hex(oid))
        except MissingObjectError:
            raise
        except NotFoundError as exc:
            raise MissingObjectError(
                f"store damaged: object {to_hex(oid)} is missing from {self.backend.url}"
            ) from exc
        entry = self._check(oid, stored)
        self.cache.put(oid, entry, entry[1].nbytes)
        return entry

    def get(self, oid: ObjectId, kind: Kind | None = None) -> memoryview:
        """Return an object's raw bytes as a read-only view (never copies a cached object).

        With ``kind``, an object of another kind is an error rather than data.
        """
        got, data = self.get_object(oid)
        if kind is not None and got is not kind:
            raise CorruptObjectError(f"object {to_hex(oid)} is a {got.name}, expected {kind.name}")
        return data

    def get_many(self, oids: Sequence[ObjectId], kind: Kind | None = None) -> list[memoryview]:
        """``get`` for many ids, in input order."""
        return self._map(lambda o: self.get(o, kind), list(oids))

    def get_stored(self, oid: ObjectId) -> bytes:
        """Return the stored form (header + payload) as on the backend, for transfer; unverified."""
        return self.backend.get(to_hex(oid))

    def has(self, oid: ObjectId) -> bool:
        """Whether an object is stored."""
        return self.backend.has_many([to_hex(oid)])[0]

    def has_many(self, oids: Sequence[ObjectId]) -> list[bool]:
        """Membership for many ids in one backend call."""
        return self.backend.has_many([to_hex(o) for o in oids])

    def missing(self, oids: Sequence[ObjectId]) -> list[ObjectId]:
        """Return the ids among ``oids`` that are not stored."""
        return [o for o, h in zip(oids, self.has_many(oids), strict=True) if not h]

    # -- maintenance ----------------------------------------------------------

    def iter_objects(self, prefix: str = "") -> Iterator[tuple[ObjectId, ObjectInfo]]:
        """Every stored object (id, size, mtime) whose hex id starts with ``prefix``."""
        for info in self.backend.list_prefix(prefix):
            try:
                yield parse_object_id(info.key), info
            except ValueError:
                continue

    def delete(self, oid: ObjectId) -> None:
        """Remove an object (garbage collection only)."""
        self.cache.discard(oid)
        self.backend.delete(to_hex(oid))

    def delete_many(self, oids: Sequence[ObjectId]) -> None:
        """Remove many objects (garbage collection only), batched where the backend can."""
        for oid in oids:
            self.cache.discard(oid)
        self.backend.delete_many([to_hex(o) for o in oids])

    def require(self, oid: ObjectId) -> None:
        """Raise NotFoundError unless ``oid`` is stored."""
        if not self.has(oid):
            raise NotFoundError(f"object {to_hex(oid)} not found in {self.backend.url}")

    def close(self) -> None:
        """Stop the pool and close the backend."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.backend.close()
