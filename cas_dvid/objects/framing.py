"""The framed object stream of sync requests: many ``(id, stored bytes)`` in one body.

Each frame is the 32-byte object id, the stored length as a little-endian u64, then
the stored form (header + payload) exactly as a backend holds it::

    id[32] | length u64 | stored[length] | id[32] | length u64 | ...

The receiver re-hashes every object before it keeps it, so a frame needs no checksum
of its own.  Bodies are parsed in place (``memoryview`` slices, never copied).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.objects.ids import ID_SIZE, BytesLike

_LEN = struct.Struct("<Q")
FRAME_HEAD = ID_SIZE + _LEN.size
CONTENT_TYPE = "application/x-cas-dvid-objects"


def frame_parts(items: Iterable[tuple[bytes, BytesLike]]) -> list[BytesLike]:
    """Parts to send in order (payloads are not copied)."""
    parts: list[BytesLike] = []
    for oid, stored in items:
        parts.append(bytes(oid) + _LEN.pack(memoryview(stored).nbytes))
        parts.append(stored)
    return parts


def encode_frames(items: Iterable[tuple[bytes, BytesLike]]) -> bytes:
    """One body holding every frame (copies)."""
    return b"".join(frame_parts(items))


def parse_frames(body: BytesLike) -> Iterator[tuple[ObjectId, memoryview]]:
    """Frames of a complete body; a truncated one raises ``InvalidInputError``."""
    mv = memoryview(body).cast("B")
    off, n = 0, mv.nbytes
    while off < n:
        if n - off < FRAME_HEAD:
            raise InvalidInputError(f"object stream cut off in a frame header at byte {off}")
        oid = ObjectId(bytes(mv[off : off + ID_SIZE]))
        (length,) = _LEN.unpack_from(mv, off + ID_SIZE)
        start = off + FRAME_HEAD
        if start + length > n:
            raise InvalidInputError(
                f"object stream cut off in object {oid.hex()}: {n - start} of {length} bytes"
            )
        yield oid, mv[start : start + length]
        off = start + length


def read_frames(stream: BinaryIO) -> Iterator[tuple[ObjectId, bytes]]:
    """Frames read one by one from a stream (an HTTP response), until it ends."""
    while True:
        head = _read_exact(stream, FRAME_HEAD, allow_eof=True)
        if not head:
            return
        oid = ObjectId(head[:ID_SIZE])
        (length,) = _LEN.unpack_from(head, ID_SIZE)
        yield oid, _read_exact(stream, length)


def _read_exact(stream: BinaryIO, n: int, *, allow_eof: bool = False) -> bytes:
    buf = stream.read(n)
    if len(buf) == n or (allow_eof and not buf):
        return buf
    parts = [buf]
    got = len(buf)
    while got < n:
        more = stream.read(n - got)
        if not more:
            raise InvalidInputError(f"object stream cut off: got {got} of {n} bytes")
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def pack_ids(ids: Iterable[bytes]) -> bytes:
    """Ids as one body of concatenated 32-byte ids."""
    return b"".join(ids)


def unpack_ids(body: BytesLike) -> list[ObjectId]:
    """Return the ids of a body of concatenated 32-byte ids."""
    raw = bytes(body)
    if len(raw) % ID_SIZE:
        raise InvalidInputError(f"expected concatenated 32-byte ids, got {len(raw)} bytes")
    return [ObjectId(raw[i : i + ID_SIZE]) for i in range(0, len(raw), ID_SIZE)]


def pack_bits(flags: Iterable[bool]) -> bytes:
    """Return flags as a bitmap, first flag in the high bit of the first byte."""
    out = bytearray()
    acc, nbits = 0, 0
    for f in flags:
        acc = (acc << 1) | bool(f)
        nbits += 1
        if nbits == 8:
            out.append(acc)
            acc, nbits = 0, 0
    if nbits:
        out.append(acc << (8 - nbits))
    return bytes(out)


def unpack_bits(data: bytes, n: int) -> list[bool]:
    """Return the first ``n`` flags of a bitmap made by ``pack_bits``."""
    if len(data) * 8 < n:
        raise InvalidInputError(f"expected a bitmap of {n} flags, got {len(data)} bytes")
    return [bool(data[i >> 3] & (0x80 >> (i & 7))) for i in range(n)]
