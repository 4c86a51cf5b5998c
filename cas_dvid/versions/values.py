"""Tree values: a tag byte, then inline bytes or a blob's id; the one place that knows.

Every tree in a store (instance trees, the repo records' node tables) keeps values in
this form, so gc, verify and sync find the blobs a leaf names without knowing whose
tree it is.
"""

from __future__ import annotations

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Kind, ObjectId, ObjectStore
from cas_dvid.trees import MAX_VALUE_SIZE

INLINE = 0x00
BLOB = 0x01
JPEG_BLOB = 0x02  # a blob holding a JPEG-coded image block (DVID's lossy "jpeg" compression)
BLOB_TAGS = frozenset((BLOB, JPEG_BLOB))
MAX_INLINE = MAX_VALUE_SIZE - 1
_INLINE_TAG = bytes((INLINE,))


def encode_value(store: ObjectStore, value: bytes) -> tuple[bytes, ObjectId | None]:
    """Tree value for ``value``: inline when small, else the id of a blob object.

    Returns the tree value and the blob's id when one was written.
    """
    if len(value) <= MAX_INLINE:
        return bytes((INLINE,)) + value, None
    oid = store.put(Kind.BLOB, value)
    return bytes((BLOB,)) + oid, oid


def blob_value(oid: ObjectId, tag: int = BLOB) -> bytes:
    """Return the tree value naming blob ``oid`` (``JPEG_BLOB`` for a JPEG-coded block)."""
    return bytes((tag,)) + oid


def inline_value(payload: bytes) -> bytes:
    """Return the tree value holding ``payload`` itself (at most ``MAX_INLINE`` bytes)."""
    if len(payload) > MAX_INLINE:
        raise InvalidInputError(f"inline value of {len(payload)} bytes is over {MAX_INLINE}")
    return bytes((INLINE,)) + payload


def inline_payload(value: bytes) -> bytes:
    """Return the payload of an inline tree value."""
    if value[:1] != bytes((INLINE,)):
        raise InvalidInputError(f"expected an inline value, got tag {value[:1]!r}")
    return value[1:]


def decode_values(store: ObjectStore, values: list[bytes]) -> list[bytes]:
    """Payloads for tree values, fetching blob objects in one batch."""
    if len(values) == 1:  # PERF: one key (a keyvalue GET) skips the batch
        v = values[0]
        if v[:1] == _INLINE_TAG:
            return [v[1:]]
        ref = value_ref(v)
        if ref is not None:
            return [bytes(store.get(ref, Kind.BLOB))]
    out: list[bytes | None] = [None] * len(values)
    blob_pos, blob_ids = [], []
    for i, v in enumerate(values):
        if v[:1] == _INLINE_TAG:
            out[i] = v[1:]
        elif (ref := value_ref(v)) is not None:
            blob_pos.append(i)
            blob_ids.append(ref)
        else:
            raise InvalidInputError(f"unreadable stored value tag {v[:1]!r}")
    for i, data in zip(blob_pos, store.get_many(blob_ids, Kind.BLOB), strict=True):
        out[i] = bytes(data)
    return out  # type: ignore[return-value]


def value_ref(value: bytes) -> ObjectId | None:
    """Return the blob id a tree value points at, if any (sync and gc walk these).

    Every datatype stores values as a tag byte and a payload: ``INLINE`` bytes, or a
    32-byte blob id under one of ``BLOB_TAGS``; this is the one place that knows.
    """
    if len(value) == 33 and value[0] in BLOB_TAGS:
        return ObjectId(value[1:])
    return None


def value_tag(value: bytes) -> int:
    """Return the tag byte of a tree value (``INLINE``, ``BLOB`` or ``JPEG_BLOB``)."""
    return value[0]
