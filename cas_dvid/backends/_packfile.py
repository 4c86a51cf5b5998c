"""The pack and log file formats (``backends._packs`` keeps the packs of a store).

A pack is ``MAGIC``, the member count (u32), the index's length in bytes (u64), the
index (per member: the key's length (u8), the key (ASCII hex), the member's offset
in the file and its length (u64 each), all little-endian), then the members' bytes.

A log is records appended one after another, each its kind (``RECORD_OBJECT``,
``RECORD_TOUCH``, or ``RECORD_END`` last when its writer closed it), the key's
length (u8), the data's length (u32), the time it was written (f64, unix seconds),
the key, then the data: a reader parses what has been written so far, and a record
cut short is simply not there yet.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from cas_dvid.backends._files import parts_size
from cas_dvid.backends.abc import BytesLike, Parts
from cas_dvid.errors import BackendError

MAGIC = b"CASPACK1"
HEAD = struct.Struct("<8sIQ")  # magic, member count, index bytes
_ENTRY = struct.Struct("<QQ")  # offset, length (after the key)


def encode_pack(
    items: Sequence[tuple[str, Parts]],
) -> tuple[list[BytesLike], dict[str, tuple[int, int]]]:
    """Return the bytes (as parts) of a pack holding ``items`` (key, parts), and its index."""
    # PERF: one pass per member, no per-part casts; merges re-pack every member they copy.
    off = HEAD.size + sum(1 + len(key) + _ENTRY.size for key, _ in items)
    entries = []
    body: list[BytesLike] = []
    members = {}
    for key, parts in items:
        size = parts_size(parts)
        body += parts
        kb = key.encode()
        entries.append(bytes((len(kb),)) + kb + _ENTRY.pack(off, size))
        members[key] = (off, size)
        off += size
    index = b"".join(entries)
    return [HEAD.pack(MAGIC, len(items), len(index)), index, *body], members


def decode_index(data: bytes, what: str) -> dict[str, tuple[int, int]]:
    """Parse a pack's head and index (``data`` starts at the file's first byte)."""
    if len(data) < HEAD.size:
        raise BackendError(f"{what}: truncated pack head")
    magic, count, nbytes = HEAD.unpack_from(data)
    if magic != MAGIC:
        raise BackendError(f"{what}: not a pack (magic {magic!r})")
    if len(data) < HEAD.size + nbytes:
        raise BackendError(f"{what}: truncated pack index")
    members: dict[str, tuple[int, int]] = {}
    pos = HEAD.size
    for _ in range(count):
        n = data[pos]
        key = data[pos + 1 : pos + 1 + n].decode("ascii")
        pos += 1 + n
        members[key] = _ENTRY.unpack_from(data, pos)
        pos += _ENTRY.size
    return members


# -- logs: records appended one batch at a time --------------------------------------

RECORD = struct.Struct("<2sBId")  # kind, key length, data length, time written (unix s)
RECORD_OBJECT = b"CL"
RECORD_TOUCH = b"CT"  # no data: the key was put again (gc's grace starts over)
RECORD_END = b"CE"  # no key, no data: the writer closed the log, nothing follows


def encode_records(
    items: Sequence[tuple[str, Parts]], base: int, when: float, kind: bytes = RECORD_OBJECT
) -> tuple[list[BytesLike], dict[str, tuple[int, int]], int]:
    """Return the records of ``items`` for a log at offset ``base``: parts, index, bytes."""
    parts: list[BytesLike] = []
    members = {}
    off = base
    for key, data in items:
        size = parts_size(data)
        kb = key.encode()
        parts.append(RECORD.pack(kind, len(kb), size, when) + kb)
        parts += data
        off += RECORD.size + len(kb)
        members[key] = (off, size)
        off += size
    return parts, members, off - base


@dataclass
class Scanned:
    """What a scan of a log's bytes found."""

    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # key -> (offset, length)
    times: dict[str, float] = field(default_factory=dict)  # key -> when written
    touches: dict[str, float] = field(default_factory=dict)  # key -> when last put again
    used: int = 0  # bytes of whole records
    closed: bool = False  # the end record was read


def scan_records(data: BytesLike, base: int) -> Scanned:
    """Parse the whole records of ``data`` (a log's bytes from offset ``base``).

    A record cut short (still being appended, or torn by a crash) or anything not a
    record ends the scan: the next scan starts there.
    """
    out = Scanned()
    mv = memoryview(data).cast("B")
    pos, end = 0, mv.nbytes
    while pos + RECORD.size <= end:
        kind, n, size, when = RECORD.unpack_from(mv, pos)
        if kind == RECORD_END:
            out.closed = True
            pos += RECORD.size
            break
        if kind not in (RECORD_OBJECT, RECORD_TOUCH) or pos + RECORD.size + n + size > end:
            break
        try:
            key = bytes(mv[pos + RECORD.size : pos + RECORD.size + n]).decode("ascii")
        except UnicodeDecodeError:
            break
        pos += RECORD.size + n
        if kind == RECORD_OBJECT:
            out.members[key] = (base + pos, size)
            out.times[key] = when
        else:
            out.touches[key] = max(when, out.touches.get(key, when))
        pos += size
    out.used = pos
    return out
