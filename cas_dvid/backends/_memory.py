"""``memory://[name]``: a dict-backed backend for tests and scratch work."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import blake3

from cas_dvid.backends.abc import (
    Backend,
    ByteRange,
    ObjectInfo,
    Parts,
    Ref,
    check_key,
    check_ref_name,
)
from cas_dvid.errors import ConflictError, NotFoundError

_named: dict[str, MemoryBackend] = {}
_named_lock = threading.Lock()


def ref_token(value: bytes) -> str:
    """Token of a ref value on backends that have no native version tag."""
    return blake3.blake3(value).hexdigest()[:32]


def check_token(name: str, current: bytes | None, expected: str | None) -> None:
    """Raise ConflictError (with the current value and token) unless the token is ``expected``."""
    token = None if current is None else ref_token(current)
    if token != expected:
        raise ConflictError(
            f"ref {name} changed: expected {expected or 'absent'}, found {token or 'absent'}",
            current,
            token,
        )


class MemoryBackend(Backend):
    """Objects and refs in process memory; ``memory://NAME`` is shared within a process."""

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._objects: dict[str, tuple[bytes, float]] = {}
        self._refs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @classmethod
    def named(cls, name: str) -> MemoryBackend:
        """Return the process-wide memory backend called ``name`` (created on first use)."""
        with _named_lock:
            if name not in _named:
                _named[name] = cls(f"memory://{name}")
            return _named[name]

    @property
    def parallelism(self) -> int:
        """Memory needs no pool."""
        return 1

    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        """Return stored bytes."""
        try:
            data = self._objects[check_key(key)][0]
        except KeyError:
            raise NotFoundError(f"object {key} not found in {self.url}") from None
        if byte_range is None:
            return data
        return data[byte_range.start : byte_range.end]

    def put_if_absent(self, key: str, parts: Parts) -> bool:
        """Store unless present."""
        check_key(key)
        with self._lock:
            if key in self._objects:
                return False
            self._objects[key] = (b"".join(parts), time.time())
            return True

    def has_many(self, keys: Sequence[str]) -> list[bool]:
        """Membership for each key."""
        return [check_key(k) in self._objects for k in keys]

    def list_prefix(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Snapshot of matching objects."""
        with self._lock:
            items = [(k, v) for k, v in self._objects.items() if k.startswith(prefix)]
        for k, (data, mtime) in items:
            yield ObjectInfo(k, len(data), mtime)

    def delete(self, key: str) -> None:
        """Drop an object."""
        with self._lock:
            self._objects.pop(check_key(key), None)

    def set_mtime(self, key: str, mtime: float) -> None:
        """Backdate an object (tests of gc grace periods)."""
        with self._lock:
            data, _ = self._objects[key]
            self._objects[key] = (data, mtime)

    def get_ref(self, name: str) -> Ref:
        """Return the current value and token."""
        try:
            value = self._refs[check_ref_name(name)]
        except KeyError:
            raise NotFoundError(f"ref {name} not found in {self.url}") from None
        return Ref(value, ref_token(value))

    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Compare-and-swap under the backend lock."""
        check_ref_name(name)
        with self._lock:
            self._check(name, expected)
            self._refs[name] = bytes(value)
        return ref_token(value)

    def delete_ref(self, name: str, expected: str) -> None:
        """Delete if unchanged."""
        check_ref_name(name)
        with self._lock:
            self._check(name, expected)
            del self._refs[name]

    def _check(self, name: str, expected: str | None) -> None:
        check_token(name, self._refs.get(name), expected)

    def list_refs(self, prefix: str = "") -> Iterator[str]:
        """Snapshot of matching ref names, sorted."""
        with self._lock:
            names = sorted(n for n in self._refs if n.startswith(prefix))
        yield from names
