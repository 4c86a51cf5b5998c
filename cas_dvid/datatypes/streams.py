"""DVID's block record stream: ``int32 bx, by, bz, int32 nbytes`` (LE), then the payload.

``GET subvolblocks``/``specificblocks``/``blocks`` answer with it and labelmap's
``POST blocks`` takes it.  Record order is unspecified, as in DVID.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects.ids import BytesLike

RECORD = struct.Struct("<iiii")

Coord = tuple[int, int, int]
"""Block coordinate, x y z."""


def pack_records(items: Iterable[tuple[Coord, BytesLike]]) -> list[BytesLike]:
    """Return the parts of a record stream, in order (payloads are not copied)."""
    parts: list[BytesLike] = []
    for (x, y, z), payload in items:
        parts.append(RECORD.pack(x, y, z, memoryview(payload).nbytes))
        parts.append(payload)
    return parts


def parse_records(body: BytesLike) -> Iterator[tuple[Coord, memoryview]]:
    """Iterate the records of a complete stream; a cut-off or negative-length record is a 400."""
    mv = memoryview(body).cast("B")
    pos, n = 0, mv.nbytes
    while pos < n:
        if n - pos < RECORD.size:
            raise InvalidInputError(f"block stream cut off in a record header at byte {pos}")
        x, y, z, size = RECORD.unpack_from(mv, pos)
        pos += RECORD.size
        if size < 0 or pos + size > n:
            raise InvalidInputError(
                f"block ({x}, {y}, {z}) at byte {pos - RECORD.size} says {size} bytes, "
                f"{n - pos} remain"
            )
        yield (x, y, z), mv[pos : pos + size]
        pos += size
