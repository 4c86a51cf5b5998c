"""A bounded, thread-safe LRU cache of decoded objects, sized in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Least-recently-used map holding at most ``max_bytes`` of values.

    Values are immutable (objects never change), so a hit returns the cached value
    itself; nothing is copied.  A value larger than a quarter of the budget is not
    cached, so one huge object cannot flush the working set.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """Return the cached value or None, marking it recently used."""
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: K, value: V, size: int) -> None:
        """Insert ``value`` costing ``size`` bytes, evicting the oldest entries."""
        if size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._data[key] = (value, size)
            self._size += size
            while self._size > self.max_bytes:
                _, (_, evicted) = self._data.popitem(last=False)
                self._size -= evicted

    def discard(self, key: K) -> None:
        """Drop ``key`` if present."""
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= old[1]

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._data.clear()
            self._size = 0

    @property
    def size(self) -> int:
        """Bytes currently held."""
        return self._size

    def __len__(self) -> int:
        return len(self._data)
