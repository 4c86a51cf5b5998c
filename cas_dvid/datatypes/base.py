"""What every datatype shares: its name, URL, settings parsing and the values it stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Kind, ObjectId, ObjectStore
from cas_dvid.trees import MAX_VALUE_SIZE

TYPE_URL_ROOT = "github.com/janelia-flyem/dvid/datatype/"

INLINE = 0x00
BLOB = 0x01
JPEG_BLOB = 0x02  # a blob holding a JPEG-coded image block (DVID's lossy "jpeg" compression)
BLOB_TAGS = frozenset((BLOB, JPEG_BLOB))
MAX_INLINE = MAX_VALUE_SIZE - 1


@dataclass(frozen=True, slots=True)
class DataType:
    """A datatype's identity as DVID shows it in info and /api/server/types.

    ``check_settings`` validates (and may normalise) the lower-cased settings of a
    new instance, raising InvalidInputError with DVID's kind of message.
    """

    name: str
    url: str
    version: str
    aliases: tuple[str, ...] = ()
    check_settings: Callable[[dict[str, str]], dict[str, str]] | None = None

    @property
    def full_url(self) -> str:
        """The TypeURL field."""
        return TYPE_URL_ROOT + self.url


def parse_bool(value: Any, what: str) -> bool:
    """DVID's booleans in settings: true/false, or strings true/false/1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "false", "0"):
        return value.strip().lower() in ("true", "1")
    raise InvalidInputError(
        f"Illegal setting for '{what}' (needs to be 'false', '0', 'true', or '1'): {value}"
    )


def parse_settings(body: Mapping[str, Any], skip: Iterable[str] = ()) -> dict[str, str]:
    """Instance settings: keys are case-insensitive, values must be strings (as in DVID)."""
    skipped = {s.lower() for s in skip}
    out: dict[str, str] = {}
    for key, value in body.items():
        if key.lower() in skipped:
            continue
        if not isinstance(value, str):
            raise InvalidInputError(f"Setting for '{key}' was not a string: {json.dumps(value)}")
        out[key.lower()] = value
    return out


def parse_tags(text: str) -> dict[str, str]:
    """``"k=v,k2=v2"`` -> dict."""
    tags = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise InvalidInputError(f"bad tag {part!r}: expected key=value")
        tags[k] = v
    return tags


def encode_value(store: ObjectStore, value: bytes) -> tuple[bytes, ObjectId | None]:
    """Tree value for ``value``: inline when small, else the id of a blob object.

    Returns the tree value and the blob's id when one was written.
    """
    if len(value) <= MAX_INLINE:
        return bytes((INLINE,)) + value, None
    oid = store.put(Kind.BLOB, value)
    return bytes((BLOB,)) + oid, oid


def decode_values(store: ObjectStore, values: list[bytes]) -> list[bytes]:
    """Payloads for tree values, fetching blob objects in one batch."""
    out: list[bytes | None] = [None] * len(values)
    blob_pos, blob_ids = [], []
    for i, v in enumerate(values):
        if v[:1] == bytes((INLINE,)):
            out[i] = v[1:]
        elif v[:1] == bytes((BLOB,)) and len(v) == 33:
            blob_pos.append(i)
            blob_ids.append(ObjectId(v[1:]))
        else:
            raise InvalidInputError(f"unreadable stored value tag {v[:1]!r}")
    for i, data in zip(blob_pos, store.get_many(blob_ids, Kind.BLOB), strict=True):
        out[i] = bytes(data)
    return out  # type: ignore[return-value]


def value_ref(value: bytes) -> ObjectId | None:
    """The blob id a tree value points at, if any (sync and gc walk these).

    Every datatype stores values as a tag byte and a payload: ``INLINE`` bytes, or a
    32-byte blob id under one of ``BLOB_TAGS``; this is the one place that knows.
    """
    if len(value) == 33 and value[0] in BLOB_TAGS:
        return ObjectId(value[1:])
    return None
