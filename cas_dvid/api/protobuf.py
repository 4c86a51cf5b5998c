"""Just enough of the protobuf wire format for DVID's keyvalue messages.

``KeyValue{string key=1; bytes value=2}``, ``KeyValues{repeated KeyValue kvs=1}``,
``Keys{repeated string keys=1; repeated KeyRange key_ranges=2}`` and
``KeyRange{string key=1; uint64 byte_start=2; uint64 byte_end=3}`` (an inclusive byte
range within one key's value, not a range of keys).  Unknown fields are skipped, as
protobuf requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cas_dvid.errors import InvalidInputError

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InvalidInputError("malformed protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(data: bytes | memoryview) -> Iterator[tuple[int, bytes | int]]:
    """(field number, value) for each field: bytes for length-delimited, int otherwise."""
    buf = memoryview(data)
    pos = 0
    while pos < len(buf):
        tag, pos = _read_varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos)
            yield num, value
        elif wire == _LEN:
            n, pos = _read_varint(buf, pos)
            if pos + n > len(buf):
                raise InvalidInputError("malformed protobuf: field runs past the end")
            yield num, bytes(buf[pos : pos + n])
            pos += n
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
        else:
            raise InvalidInputError(f"malformed protobuf: unsupported wire type {wire}")
    if pos != len(buf):
        raise InvalidInputError("malformed protobuf: trailing bytes")


def _len_field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | _LEN) + _varint(len(payload)) + payload


def _text(value: bytes | int, what: str) -> str:
    if not isinstance(value, bytes):
        raise InvalidInputError(f"malformed protobuf: {what} is not a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"malformed protobuf: {what} is not UTF-8") from None


def encode_keyvalues(items: Iterable[tuple[str, bytes]]) -> bytes:
    """Return a ``KeyValues`` message."""
    parts = []
    for key, value in items:
        kv = _len_field(1, key.encode("utf-8")) + (_len_field(2, value) if value else b"")
        parts.append(_len_field(1, kv))
    return b"".join(parts)


def decode_keyvalues(data: bytes) -> list[tuple[str, bytes]]:
    """Parse a ``KeyValues`` message."""
    out = []
    for num, value in fields(data):
        if num != 1 or not isinstance(value, bytes):
            continue
        key, val = "", b""
        for n2, v2 in fields(value):
            if n2 == 1:
                key = _text(v2, "key")
            elif n2 == 2 and isinstance(v2, bytes):
                val = v2
        out.append((key, val))
    return out


def decode_keys(data: bytes) -> tuple[list[str], list[tuple[str, int, int]]]:
    """Parse a ``Keys`` message: whole-value keys and (key, byte_start, byte_end) reads."""
    keys: list[str] = []
    ranges: list[tuple[str, int, int]] = []
    for num, value in fields(data):
        if num == 1:
            keys.append(_text(value, "key"))
        elif num == 2 and isinstance(value, bytes):
            key, start, end = "", 0, 0
            for n2, v2 in fields(value):
                if n2 == 1:
                    key = _text(v2, "key")
                elif n2 == 2 and isinstance(v2, int):
                    start = v2
                elif n2 == 3 and isinstance(v2, int):
                    end = v2
            ranges.append((key, start, end))
    return keys, ranges


def encode_keys(keys: Iterable[str], ranges: Iterable[tuple[str, int, int]] = ()) -> bytes:
    """Return a ``Keys`` message (clients, tests); zero byte offsets are left out, as in proto3."""
    out = [_len_field(1, k.encode("utf-8")) for k in keys]
    for key, start, end in ranges:
        body = _len_field(1, key.encode())
        body += (_varint(2 << 3) + _varint(start)) if start else b""
        body += (_varint(3 << 3) + _varint(end)) if end else b""
        out.append(_len_field(2, body))
    return b"".join(out)
