r"""The stored form of an object: a 16-byte header, then the (maybe compressed) payload.

Header layout (little-endian)::

    0  2  magic  b"\\xcaD"
    2  1  format version (1)
    3  1  kind (see ``Kind``)
    4  1  codec (0 none, 1 lz4 block, 2 zstd)
    5  3  reserved, zero
    8  8  raw (uncompressed) length

The id is computed over the raw bytes, so recompressing never renames an object.
"""

from __future__ import annotations

import enum
import struct
import threading
from dataclasses import dataclass

import lz4.block
import zstandard

from cas_dvid.errors import CorruptObjectError, InvalidInputError
from cas_dvid.objects.ids import BytesLike, Kind

MAGIC = b"\xcaD"
FORMAT_VERSION = 1
HEADER = struct.Struct("<2sBBB3xQ")
HEADER_SIZE = HEADER.size
# NOTE: lz4's block API takes an int size; objects are blocks and tree nodes, far below this.
MAX_RAW_SIZE = (1 << 31) - 1


class Codec(enum.IntEnum):
    """Compression applied to a stored payload."""

    NONE = 0
    LZ4 = 1
    ZSTD = 2


def parse_codec(name: str | Codec) -> Codec:
    """Map ``"none"``, ``"lz4"`` or ``"zstd"`` to a ``Codec``."""
    if isinstance(name, Codec):
        return name
    try:
        return Codec[name.strip().upper()]
    except KeyError:
        raise InvalidInputError(
            f"unknown codec {name!r}: expected one of none, lz4, zstd"
        ) from None


@dataclass(frozen=True, slots=True)
class Header:
    """The decoded header of a stored object."""

    kind: Kind
    codec: Codec
    raw_length: int


_local = threading.local()


def _zstd_c() -> zstandard.ZstdCompressor:
    # NOTE: a shared ZstdCompressor crashed the interpreter under two threads
    # (PERF-NOTES); keep one per thread.
    c = getattr(_local, "zc", None)
    if c is None:
        c = _local.zc = zstandard.ZstdCompressor(level=1)
    return c


def _zstd_d() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "zd", None)
    if d is None:
        d = _local.zd = zstandard.ZstdDecompressor()
    return d


def _compress(codec: Codec, data: BytesLike) -> bytes:
    if codec is Codec.LZ4:
        return bytes(lz4.block.compress(data, store_size=False))
    return _zstd_c().compress(data)


_PROBE = 4096
_PROBE_MIN_SIZE = 64 << 10


def worth_compressing(data: BytesLike) -> bool:
    """Cheap guess whether lz4 can shrink ``data``: try four 4 KiB slices spread across it.

    PERF: EM grayscale is incompressible for lz4, and trying costs ~30 us per 256 KiB
    block for nothing.  Slices spread over the payload still catch blocks that are
    partly background (volume edges), which do compress.
    """
    mv = memoryview(data).cast("B")
    n = mv.nbytes
    if n < _PROBE_MIN_SIZE:
        return True
    step = (n - _PROBE) // 3
    for i in range(4):
        chunk = mv[i * step : i * step + _PROBE]
        if len(lz4.block.compress(chunk, store_size=False)) < _PROBE * 0.97:
            return True
    return False


def encode(kind: Kind, data: BytesLike, codec: Codec = Codec.LZ4) -> list[BytesLike]:
    """Return the stored form as parts to write in order (the payload is never copied).

    A codec that does not shrink the payload falls back to ``Codec.NONE``, as does a
    large payload whose sampled slices do not compress (see ``worth_compressing``).
    """
    n = memoryview(data).nbytes
    if n > MAX_RAW_SIZE:
        raise InvalidInputError(f"object of {n} bytes is over the {MAX_RAW_SIZE}-byte limit")
    payload: BytesLike = data
    if codec is not Codec.NONE and n and worth_compressing(data):
        packed = _compress(codec, data)
        if len(packed) < n:
            payload = packed
        else:
            codec = Codec.NONE
    else:
        codec = Codec.NONE
    return [HEADER.pack(MAGIC, FORMAT_VERSION, int(kind), int(codec), n), payload]


def parse_header(stored: BytesLike, what: str = "object") -> Header:
    """Decode and check the header of a stored object."""
    mv = memoryview(stored)
    if mv.nbytes < HEADER_SIZE:
        raise CorruptObjectError(f"{what}: truncated, {mv.nbytes} bytes is shorter than a header")
    magic, version, kind, codec, raw_length = HEADER.unpack_from(mv)
    if magic != MAGIC:
        raise CorruptObjectError(f"{what}: bad magic {bytes(magic)!r}, not a cas_dvid object")
    if version != FORMAT_VERSION:
        raise CorruptObjectError(
            f"{what}: unknown object format version {version} (this build reads {FORMAT_VERSION})"
        )
    try:
        return Header(Kind(kind), Codec(codec), raw_length)
    except ValueError:
        raise CorruptObjectError(f"{what}: unknown kind {kind} or codec {codec}") from None


def decode(stored: BytesLike, what: str = "object") -> tuple[Kind, BytesLike]:
    """Return ``(kind, raw bytes)``; with codec none, a view into ``stored`` (never copies)."""
    h = parse_header(stored, what)
    payload = memoryview(stored)[HEADER_SIZE:]
    if h.raw_length > MAX_RAW_SIZE:
        # NOTE: a damaged length field made lz4/zstd raise OverflowError (a 500 naming nothing).
        raise CorruptObjectError(
            f"{what}: header says {h.raw_length} raw bytes, over the {MAX_RAW_SIZE}-byte limit"
        )
    try:
        if h.codec is Codec.NONE:
            raw: BytesLike = payload
        elif h.codec is Codec.LZ4:
            raw = lz4.block.decompress(payload, uncompressed_size=h.raw_length)
        else:
            raw = _zstd_d().decompress(payload, max_output_size=h.raw_length)
    except (lz4.block.LZ4BlockError, zstandard.ZstdError, OverflowError, MemoryError) as exc:
        raise CorruptObjectError(
            f"{what}: {h.codec.name.lower()} payload does not decode: {exc}"
        ) from exc
    n = memoryview(raw).nbytes
    if n != h.raw_length:
        raise CorruptObjectError(
            f"{what}: truncated, header says {h.raw_length} raw bytes, payload gives {n}"
        )
    return h.kind, raw
