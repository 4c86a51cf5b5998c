"""Object ids and kinds: an id is BLAKE3-256 over the kind byte and the raw bytes."""

from __future__ import annotations

import enum
from typing import NewType

import blake3

from cas_dvid.errors import InvalidInputError

BytesLike = bytes | bytearray | memoryview
"""What hot paths accept (``collections.abc.Buffer`` needs Python 3.12)."""

ObjectId = NewType("ObjectId", bytes)
"""32 raw bytes; hex only at the edges (``to_hex`` / ``parse_object_id``)."""

ID_SIZE = 32
_THREADED_MIN = 1 << 20  # PERF: blake3's threads halve speed below ~1 MiB (PERF-NOTES).


class Kind(enum.IntEnum):
    """What an object is; part of its id, so equal bytes of two kinds never collide."""

    BLOB = 1
    TREE = 2
    COMMIT = 3
    MANIFEST = 4


def content_id(kind: Kind, data: BytesLike) -> ObjectId:
    """Return the id of ``data`` stored as ``kind`` (never copies ``data``)."""
    mv = memoryview(data)
    threads = blake3.blake3.AUTO if mv.nbytes >= _THREADED_MIN else 1
    h = blake3.blake3(bytes((int(kind),)), max_threads=threads)
    h.update(mv)
    return ObjectId(h.digest())


def to_hex(oid: bytes) -> str:
    """Lower-case hex form of an id."""
    return oid.hex()


def parse_object_id(text: str | bytes) -> ObjectId:
    """Parse a 64-hex id (or pass 32 raw bytes through); reject anything else."""
    if isinstance(text, bytes) and len(text) == ID_SIZE:
        return ObjectId(text)
    s = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    try:
        raw = bytes.fromhex(s)
    except ValueError:
        raw = b""
    if len(raw) != ID_SIZE:
        raise InvalidInputError(f"expected a 64-hex-digit object id, got {s[:80]!r}")
    return ObjectId(raw)
