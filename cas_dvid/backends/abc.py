"""The backend contract: immutable objects put-if-absent, plus a few CAS-swapped refs."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cas_dvid.errors import InvalidInputError

BytesLike = bytes | bytearray | memoryview
Parts = Sequence[BytesLike]

_KEY_RE = re.compile(r"[0-9a-f]{4,128}")
_REF_RE = re.compile(r"[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` (inclusive) to ``end`` (exclusive, None = to the end) of an object."""

    start: int
    end: int | None = None

    def __post_init__(self) -> None:
        if self.start < 0 or (self.end is not None and self.end < self.start):
            raise InvalidInputError(f"bad byte range {self.start}..{self.end}")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key, stored size and last-modified time (epoch seconds)."""

    key: str
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class Ref:
    """A mutable ref's value and the opaque token a compare-and-swap must present."""

    value: bytes
    token: str


def check_key(key: str) -> str:
    """Object keys are lower-case hex (an id); reject anything else before it reaches disk."""
    if not _KEY_RE.fullmatch(key):
        raise InvalidInputError(f"object key must be lower-case hex, got {key[:80]!r}")
    return key


def check_ref_name(name: str) -> str:
    """Ref names are '/'-separated words of [A-Za-z0-9_.=-], never '.' or '..'."""
    if not _REF_RE.fullmatch(name) or any(p in (".", "..") for p in name.split("/")):
        raise InvalidInputError(f"bad ref name {name[:80]!r}")
    if name.endswith(".lock") or name.endswith(".partial"):
        raise InvalidInputError(f"ref name {name!r} uses a reserved suffix")
    return name


class Backend(ABC):
    """Where stored objects and refs live.

    Objects are written once and never changed, so ``put_if_absent`` is idempotent
    and safe under retries and concurrent writers.  Refs are the only mutable state;
    they change only through ``cas_ref``, which wins for exactly one of racing writers.
    """

    url: str

    @property
    def parallelism(self) -> int:
        """How many requests are worth having in flight at once (1 = no pool)."""
        return 4

    @property
    def min_parallel_batch(self) -> int:
        """Batches smaller than this run inline: a pool hand-off costs ~100 us."""
        return 16

    @abstractmethod
    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        """Return the stored bytes of ``key`` (or a range of them); NotFoundError if absent."""

    @abstractmethod
    def put_if_absent(self, key: str, parts: Parts) -> bool:
        """Store the concatenation of ``parts`` under ``key`` unless present; True if written."""

    @property
    def pack_min(self) -> int:
        """Batches of at least this many objects are worth one ``put_batch`` (0: never)."""
        return 0

    def put_batch(self, items: Sequence[tuple[str, Parts]]) -> list[bool]:
        """``put_if_absent`` for many objects at once; a backend may store them as one unit.

        Returns, for each item, whether it was written.  Objects put together are still
        read, listed and deleted one by one.
        """
        return [self.put_if_absent(key, parts) for key, parts in items]

    @abstractmethod
    def has_many(self, keys: Sequence[str]) -> list[bool]:
        """For each key, whether it is stored."""

    @abstractmethod
    def list_prefix(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Iterate stored objects whose key starts with ``prefix`` (order unspecified)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object (garbage collection only); absent keys are fine."""

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove many objects (garbage collection only); backends may batch (S3: 1,000 a call)."""
        for key in keys:
            self.delete(key)

    @abstractmethod
    def get_ref(self, name: str) -> Ref:
        """Return a ref's value and token; NotFoundError if it does not exist."""

    @abstractmethod
    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Set ``name`` to ``value`` if its token is ``expected`` (None: must not exist).

        Returns the new token.  Raises ConflictError carrying the current value and
        token when another writer got there first.  Tokens follow the value (a hash
        or an S3 ETag): swapping in the value already there leaves the token as it
        was, which is harmless for refs that name immutable objects.
        """

    @abstractmethod
    def delete_ref(self, name: str, expected: str) -> None:
        """Delete ``name`` if its token is still ``expected``; ConflictError otherwise."""

    @abstractmethod
    def list_refs(self, prefix: str = "") -> Iterator[str]:
        """Iterate ref names starting with ``prefix``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and pools."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
