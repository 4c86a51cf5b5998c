"""Tree node encoding: one canonical byte form per node, decoded with a few C calls.

Layout (little-endian)::

    header  <BBBBIQHH>  version=1, level (0 = leaf), layout, 0, n, total, kw, vw
    FIXED layout (every key ``kw`` bytes, every value ``vw`` bytes):
        keys   n * kw bytes, then values  n * vw bytes
    VARIABLE layout (kw = vw = 0 in the header):
        key ends n * u32, value ends n * u32 (offsets into each blob),
        keys blob, values blob
    internal nodes (level > 0) only, after the above:
        counts n * u64  (entries under each child)

In an internal node the "values" are child ids (32 bytes) and each key is the
last key under that child. ``total`` is the number of entries under the node,
so ``count(root)`` reads one header. The layout is a pure function of the
entries (FIXED exactly when all widths agree), so equal contents encode to
equal bytes: the root id depends on the entries alone.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import NamedTuple

import blake3

from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects.ids import ID_SIZE, Kind, ObjectId, content_id, to_hex

VERSION = 1
FIXED = 0
VARIABLE = 1
_HDR = struct.Struct("<BBBBIQHH")
HEADER_SIZE = _HDR.size


class Node(NamedTuple):
    """A decoded node; immutable by contract (it is shared through the cache).

    Tuples, not lists: the garbage collector stops tracking a tuple of bytes,
    so a full node cache adds nothing to collection pauses.
    ``vals`` holds values in a leaf and child ids in an internal node;
    ``counts`` is ``None`` in a leaf. ``widths`` is (key width, value width)
    when all keys and all values have one width each (FIXED layout), else None.
    """

    level: int
    keys: tuple[bytes, ...]
    vals: tuple[bytes, ...]
    counts: tuple[int, ...] | None
    total: int
    widths: tuple[int, int] | None


@functools.lru_cache(maxsize=4096)
def _fixed_struct(kw: int, vw: int, n: int) -> struct.Struct:
    # PERF: one unpack call makes all 2n bytes objects; ~4 us for 64 entries.
    return struct.Struct(f"<{f'{kw}s' * n}{f'{vw}s' * n}")


@functools.lru_cache(maxsize=4096)
def _ints(code: str, n: int) -> struct.Struct:
    return struct.Struct(f"<{n}{code}")


def _uniform_width(items: Sequence[bytes], joined: bytes) -> int:
    """Return the common length of ``items`` (``joined`` is their concatenation), or -1."""
    if not items:
        return 0
    w = len(items[0])
    # All lengths >= w and summing to n * w means all equal: one pass, not two.
    return w if len(joined) == w * len(items) and min(map(len, items)) == w else -1


def encode(
    level: int,
    keys: Sequence[bytes],
    vals: Sequence[bytes],
    counts: Sequence[int] | None = None,
    *,
    widths: tuple[int, int] | None = None,
) -> bytes:
    """Encode one node (copies). ``widths`` = known (kw, vw) when all keys/values agree.

    The layout is chosen from the entries alone, so equal entries give equal bytes.
    """
    n = len(keys)
    kb = b"".join(keys)
    vb = b"".join(vals)
    if widths is None:
        vw = ID_SIZE if counts is not None else _uniform_width(vals, vb)
        widths = (_uniform_width(keys, kb), vw)
    kw, vw = widths
    total = n if counts is None else sum(counts)
    tail = b"" if counts is None else _ints("Q", n).pack(*counts)
    if kw >= 0 and vw >= 0 and kw < 0x10000 and vw < 0x10000:
        return b"".join((_HDR.pack(VERSION, level, FIXED, 0, n, total, kw, vw), kb, vb, tail))
    ends = _ints("I", 2 * n).pack(*accumulate(map(len, keys)), *accumulate(map(len, vals)))
    head = _HDR.pack(VERSION, level, VARIABLE, 0, n, total, 0, 0)
    return b"".join((head, ends, kb, vb, tail))


_TREE_PREFIX = bytes((int(Kind.TREE),))


def _fast_node_id(data: bytes) -> ObjectId:
    # PERF: one blake3 call over prefix + data is ~2x faster than content_id's
    # two-step hashing on 3 KiB nodes; it must give the same id (checked below).
    return ObjectId(blake3.blake3(_TREE_PREFIX + data).digest())


def content_node_id(data: bytes) -> ObjectId:
    """Return the id of node bytes by the objects layer's own definition (the plain twin)."""
    return content_id(Kind.TREE, data)


def _pick_node_id() -> Callable[[bytes], ObjectId]:
    probes = (b"", bytes(range(256)) * 20)
    same = all(_fast_node_id(p) == content_node_id(p) for p in probes)
    return _fast_node_id if same else content_node_id


node_id: Callable[[bytes], ObjectId] = _pick_node_id()
"""The id a node is stored under: ``content_id(Kind.TREE, data)``."""


def decode(data: bytes, oid: bytes | None = None) -> Node:
    """Decode node bytes; raise ``CorruptObjectError`` (naming ``oid``) if malformed."""
    try:
        node = _decode(data)
    except (struct.error, ValueError, IndexError) as exc:
        raise CorruptObjectError(f"malformed tree node {_name(oid)}: {exc}") from exc
    return node


def _name(oid: bytes | None) -> str:
    return to_hex(oid) if oid is not None else "(unknown id)"


def _decode(data: bytes) -> Node:
    version, level, layout, _, n, total, kw, vw = _HDR.unpack_from(data)
    if version != VERSION:
        raise ValueError(f"expected node format version {VERSION}, got {version}")
    off = HEADER_SIZE
    widths: tuple[int, int] | None = None
    if layout == FIXED:
        s = _fixed_struct(kw, vw, n)
        fields = s.unpack_from(data, off)
        keys, vals = fields[:n], fields[n:]
        off += s.size
        widths = (kw, vw)
    elif layout == VARIABLE:
        keys, vals, off = _decode_variable(data, off, n)
    else:
        raise ValueError(f"expected layout 0 or 1, got {layout}")
    counts: tuple[int, ...] | None = None
    if level:
        counts = _ints("Q", n).unpack_from(data, off)
        off += 8 * n
        if (vw != ID_SIZE or layout != FIXED) and any(len(v) != ID_SIZE for v in vals):
            raise ValueError("internal node child id is not 32 bytes")
    if off != len(data) or total != (n if counts is None else sum(counts)):
        raise ValueError(f"length or count mismatch ({off} vs {len(data)} bytes)")
    return Node(level, keys, vals, counts, total, widths)


def _decode_variable(
    data: bytes, off: int, n: int
) -> tuple[tuple[bytes, ...], tuple[bytes, ...], int]:
    ends = _ints("I", 2 * n).unpack_from(data, off)
    off += 8 * n
    kends, vends = ends[:n], ends[n:]
    klen = kends[-1] if n else 0
    vlen = vends[-1] if n else 0
    kblob = data[off : off + klen]
    vblob = data[off + klen : off + klen + vlen]
    if len(kblob) != klen or len(vblob) != vlen:
        raise ValueError("blob shorter than its offsets")
    keys = tuple([kblob[s:e] for s, e in zip((0, *kends), kends, strict=False)])
    vals = tuple([vblob[s:e] for s, e in zip((0, *vends), vends, strict=False)])
    return keys, vals, off + klen + vlen


FixedHeader = tuple[int, int, int, int, int]
"""``(level, n, total, kw, vw)`` of a FIXED-layout node."""


def fixed_header(data: bytes, oid: bytes | None = None) -> FixedHeader | None:
    """Header of FIXED-layout node bytes, checked as ``decode`` would; None for VARIABLE.

    PERF: lets apply and diff work on a node's bytes without decoding its
    entries. The checks match ``decode`` (version, layout, length, counts
    summing to ``total``), so corrupt bytes fail here just as they would there.
    """
    try:
        version, level, layout, _, n, total, kw, vw = _HDR.unpack_from(data)
        if version != VERSION or layout not in (FIXED, VARIABLE):
            _decode(data)  # raises the precise error
        if layout == VARIABLE:
            return None
        size = HEADER_SIZE + n * (kw + vw + (8 if level else 0))
        _check_shape(data, size, level, n, total, ids_ok=vw == ID_SIZE)
    except (struct.error, ValueError, IndexError) as exc:
        raise CorruptObjectError(f"malformed tree node {_name(oid)}: {exc}") from exc
    return level, n, total, kw, vw


def _check_shape(data: bytes, size: int, level: int, n: int, total: int, *, ids_ok: bool) -> None:
    """Make the length and count checks of ``decode``, shared by both header readers."""
    if len(data) != size:
        raise ValueError(f"length mismatch ({size} vs {len(data)} bytes)")
    if level:
        if not ids_ok:
            raise ValueError("internal node child id is not 32 bytes")
        if sum(_ints("Q", n).unpack_from(data, size - 8 * n)) != total:
            raise ValueError("entry counts do not sum to the total")
    elif total != n:
        raise ValueError("leaf entry count mismatch")


VariableHeader = tuple[int, int, int, int, int]
"""``(level, n, total, key blob size, value blob size)`` of a VARIABLE-layout node."""

_END = struct.Struct("<I")


def variable_header(data: bytes, oid: bytes | None = None) -> VariableHeader:
    """Header of VARIABLE-layout node bytes, checked for length and counts as ``decode`` does."""
    try:
        version, level, layout, _, n, total, _, _ = _HDR.unpack_from(data)
        if version != VERSION or layout != VARIABLE:
            raise ValueError(f"expected a version {VERSION} VARIABLE node")
        klen = _END.unpack_from(data, HEADER_SIZE + 4 * n - 4)[0] if n else 0
        vlen = _END.unpack_from(data, HEADER_SIZE + 8 * n - 4)[0] if n else 0
        size = HEADER_SIZE + 8 * n + klen + vlen + (8 * n if level else 0)
        _check_shape(data, size, level, n, total, ids_ok=vlen == ID_SIZE * n)
    except (struct.error, ValueError, IndexError) as exc:
        raise CorruptObjectError(f"malformed tree node {_name(oid)}: {exc}") from exc
    return level, n, total, klen, vlen


RouteView = tuple[int, tuple[bytes, ...], bytes, int]
"""``(level, keys, node bytes, offset of the child ids)``: what routing keys down a tree reads."""


def route_view(data: bytes, node: Node | None, oid: bytes | None = None) -> RouteView:
    """Return the routing view of node bytes ``data`` (``node``: its decoded form, if at hand).

    PERF: routing needs an internal node's keys, and the one child id it
    descends to; unpacking only the keys of a FIXED node is ~6x cheaper than
    decoding it (child ids and counts are most of the work). Child ``i``'s id
    is ``data[off + 32 * i : off + 32 * i + 32]`` in both layouts.
    """
    head = fixed_header(data, oid)
    if head is not None:
        level, n, _, kw, _ = head
        keys = (
            node.keys if node is not None else column_struct(kw, n).unpack_from(data, HEADER_SIZE)
        )
        return level, keys, data, HEADER_SIZE + n * kw
    level, n, _, klen, _ = variable_header(data, oid)
    keys = (node if node is not None else decode(data, oid)).keys
    return level, keys, data, HEADER_SIZE + 8 * n + klen


class Loaders(NamedTuple):
    """How apply reads a node by id, each through the tree's cache."""

    node: Callable[[bytes], Node]
    """The node decoded."""
    data: Callable[[bytes], bytes]
    """The node's bytes (not decoded)."""
    route: Callable[[bytes], RouteView]
    """The node's keys and bytes, for routing (see ``route_view``)."""


@functools.lru_cache(maxsize=4096)
def column_struct(width: int, n: int) -> struct.Struct:
    """Struct unpacking ``n`` consecutive ``width``-byte fields (one column of a FIXED node)."""
    return struct.Struct(f"<{f'{width}s' * n}")


def header_widths(data: bytes) -> tuple[int, int] | None:
    """(key width, value width) from a node header, or None for the VARIABLE layout."""
    _, _, layout, _, _, _, kw, vw = _HDR.unpack_from(data)
    return (kw, vw) if layout == FIXED else None


def node_level(data: bytes) -> int:
    """Level of raw node bytes: 0 for a leaf, >0 for an internal node (reads the header)."""
    try:
        return int(_HDR.unpack_from(data)[1])
    except struct.error as exc:
        raise CorruptObjectError(f"malformed tree node: {exc}") from exc


def is_leaf(data: bytes) -> bool:
    """Tell whether raw node bytes are a leaf (whose values are not node ids)."""
    return node_level(data) == 0


def children(data: bytes) -> list[ObjectId]:
    """Child node ids of raw node bytes, in key order; empty for a leaf."""
    node = decode(data)
    return [ObjectId(v) for v in node.vals] if node.level else []


EMPTY_NODE: bytes = encode(0, [], [])
"""The bytes of the empty leaf, the root of every empty tree."""

EMPTY_ROOT: ObjectId = node_id(EMPTY_NODE)
"""Root id of the empty tree; a tree never needs to load it from a store."""

EMPTY: Node = Node(0, (), (), None, 0, (0, 0))
