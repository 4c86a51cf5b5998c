"""Apply's fast path for VARIABLE nodes: splice the bytes around the edits.

The end offsets after an edit are shifted all at once as one big integer (no
per-entry Python ints). Split from ``_patch`` (FIXED and decoded nodes); the
result is byte for byte what ``encode`` gives the merged entries.
"""

from __future__ import annotations

import functools
import struct
from bisect import bisect_left
from collections.abc import Callable, Container, Sequence
from typing import Any, Literal

from cas_dvid.trees._node import (
    _HDR,
    HEADER_SIZE,
    VARIABLE,
    VERSION,
    variable_header,
)

Patched = tuple[bytes, bytes, int]
"""``(last key, new node bytes, new total)`` of a patched node."""


def _count(data: bytes, co: int, i: int) -> int:
    """Return the u64 count of entry ``i`` from the count column at ``co``."""
    return int.from_bytes(data[co + 8 * i : co + 8 * i + 8], "little")


_END = struct.Struct("<I")
_ENDS = struct.Struct("<II")


@functools.lru_cache(maxsize=1024)
def _lanes(m: int) -> int:
    """Return the integer whose ``m`` little-endian u32 lanes are all 1."""
    return int.from_bytes(b"\x01\x00\x00\x00" * m, "little")


def _shift(ends: bytes, delta: int) -> bytes:
    """Add ``delta`` to every u32 of ``ends`` at once, as one big integer.

    PERF: no per-entry Python ints. No lane carries or borrows: every
    result is a real offset of the new node, in 0 .. 2**32.
    """
    if not delta or not ends:
        return ends
    m = len(ends) // 4
    return (int.from_bytes(ends, "little") + delta * _lanes(m)).to_bytes(4 * m, "little")


def _end(data: bytes, ends: int, i: int) -> int:
    """End offset of entry ``i`` (0 for ``i = -1``) from the u32 column at ``ends``."""
    return _END.unpack_from(data, ends + 4 * i)[0] if i >= 0 else 0


def patch_variable(
    data: bytes,
    oid: bytes,
    level: int,
    ops: Sequence[tuple[bytes, Any]],
    lo: int,
    hi: int,
    bounds: Container[bytes],
    touch: object,
    keys: Sequence[bytes] | None = None,
) -> Patched | Literal[False] | None:
    """``patch_fixed`` for VARIABLE-layout bytes: splice blobs, shift the end offsets.

    Keys are found by bisection on the bytes (no entry is decoded), or in
    ``keys`` (the node's, decoded) when given; the ends after each edit move
    by the bytes it added or removed, all at once (``_shift``). Returns None
    also when the node might turn uniform (FIXED).
    """
    _, n, total, klen, vlen = variable_header(data, oid)
    if not n:
        return None
    if hi - lo == 1 and keys is not None:  # PERF: one edit, in a few slices
        return _patch_variable_once(
            data, level, n, total, klen, vlen, *ops[lo], keys, bounds, touch
        )
    ke = HEADER_SIZE  # key ends, then value ends
    ve = ke + 4 * n
    kb = ve + 4 * n  # key blob, then value blob, then counts
    vb = kb + klen
    co = vb + vlen

    def raw_key(i: int) -> bytes:
        s, e = _ENDS.unpack_from(data, ke + 4 * i - 4) if i else (0, _END.unpack_from(data, ke)[0])
        return data[kb + s : kb + e]

    key_at: Callable[[int], bytes] = raw_key if keys is None else keys.__getitem__
    last = key_at(n - 1)
    kends: list[bytes] = []
    vends: list[bytes] = []
    kparts: list[bytes] = []
    vparts: list[bytes] = []
    cparts: list[bytes] = []
    prev = dn = dtotal = dk = dv = 0
    ks = vs = 0  # blob offsets where entry ``prev`` starts
    changed = maybe_uniform = False
    for k, v in ops[lo:hi]:
        if v is touch:
            continue
        if keys is None:
            i = bisect_left(range(n), k, prev, key=raw_key)
        else:
            i = bisect_left(keys, k, prev)
        if i == n:
            if v is None:
                continue  # deleting an absent key
            return None  # past the last key: the node's end moves
        hit = key_at(i) == k
        if v is None and not hit:
            continue
        if v is not None and k in bounds and k != last:
            return None  # a new boundary splits the node
        if hit and i == n - 1 and v is None:
            return None  # deleting the last key moves the node's end
        ki, vi = _end(data, ke, i - 1), _end(data, ve, i - 1)  # where entry i starts
        kj, vj = (_end(data, ke, i), _end(data, ve, i)) if hit else (ki, vi)  # ... and ends
        new_v = v
        if v is None:
            dtotal -= _count(data, co, i) if level else 1
        elif level:
            new_v, count = v
            old_count = _count(data, co, i) if hit else 0
            if hit and old_count == count and data[vb + vi : vb + vj] == new_v:
                continue
            dtotal += count - old_count
        else:
            if hit and data[vb + vi : vb + vj] == v:
                continue
            dtotal += not hit
        changed = True
        # Entries prev..i-1 are unchanged: their blobs as they are, their ends shifted.
        kends.append(_shift(data[ke + 4 * prev : ke + 4 * i], dk))
        vends.append(_shift(data[ve + 4 * prev : ve + 4 * i], dv))
        kparts.append(data[kb + ks : kb + ki])
        vparts.append(data[vb + vs : vb + vi])
        if level:
            cparts.append(data[co + 8 * prev : co + 8 * i])
        start_k, start_v = ki + dk, vi + dv  # where entry i goes in the new blobs
        if hit:  # drop the old entry i
            dk -= kj - ki
            dv -= vj - vi
            dn -= 1
            maybe_uniform = maybe_uniform or v is None or len(new_v) != vj - vi
        ks, vs, prev = kj, vj, i + hit
        if v is not None:  # put the new entry i
            dk += len(k)
            dv += len(new_v)
            dn += 1
            kends.append(_END.pack(start_k + len(k)))
            vends.append(_END.pack(start_v + len(new_v)))
            kparts.append(k)
            vparts.append(new_v)
            if level:
                cparts.append(count.to_bytes(8, "little"))
    if not changed:
        return False
    kends.append(_shift(data[ke + 4 * prev : ve], dk))
    vends.append(_shift(data[ve + 4 * prev : kb], dv))
    kparts.append(data[kb + ks : vb])
    vparts.append(data[vb + vs : co])
    if level:
        cparts.append(data[co + 8 * prev :])
    n += dn
    total += dtotal
    ends = b"".join((*kends, *vends))
    if maybe_uniform:
        # Variable widths survive an edit unless one was deleted or replaced:
        # the layout stays VARIABLE if the new blobs are not n times the first width.
        k0, v0 = _END.unpack_from(ends)[0], _END.unpack_from(ends, 4 * n)[0]
        if klen + dk == n * k0 and (level or vlen + dv == n * v0):
            return None
    header = _HDR.pack(VERSION, level, VARIABLE, 0, n, total, 0, 0)
    return last, b"".join((header, ends, *kparts, *vparts, *cparts)), total


def _patch_variable_once(
    data: bytes,
    level: int,
    n: int,
    total: int,
    klen: int,
    vlen: int,
    k: bytes,
    v: Any,
    keys: Sequence[bytes],
    bounds: Container[bytes],
    touch: object,
) -> Patched | Literal[False] | None:
    """``patch_variable`` for one op, the node's ``keys`` at hand (the header's fields given)."""
    if v is touch:
        return False
    i = bisect_left(keys, k)
    if i == n:
        return False if v is None else None  # (a put past the last key moves the node's end)
    hit = keys[i] == k
    last = keys[-1]
    if v is None:
        if not hit:
            return False
        if i == n - 1:
            return None  # deleting the last key moves the node's end
    elif k in bounds and k != last:
        return None  # a new boundary splits the node
    ke, ve = HEADER_SIZE, HEADER_SIZE + 4 * n  # key ends, value ends,
    kb = ve + 4 * n  # then the key blob, the value blob, the counts
    vb, co = kb + klen, kb + klen + vlen
    ki, vi = _end(data, ke, i - 1), _end(data, ve, i - 1)  # entry i's span in the blobs
    kj, vj = (_end(data, ke, i), _end(data, ve, i)) if hit else (ki, vi)
    count = old_count = 0
    new_k = new_v = b""
    if v is not None:
        new_k, new_v = k, v
        if level:
            new_v, count = v
        if hit:
            old_count = _count(data, co, i) if level else 0
            if old_count == count and data[vb + vi : vb + vj] == new_v:
                return False
    elif level:
        old_count = _count(data, co, i)
    dk, dv = len(new_k) - (kj - ki), len(new_v) - (vj - vi)
    put = v is not None
    n2 = n + put - hit
    total2 = total + count - old_count if level else n2
    if hit and (not put or dv):  # a width went or changed: the node may turn uniform (FIXED)
        if i or not put:  # the new first entry is an old one: entry 0, or 1 if 0 went
            first = 0 if i else 1
            k0 = _end(data, ke, first) - _end(data, ke, first - 1)
            v0 = _end(data, ve, first) - _end(data, ve, first - 1)
        else:
            k0, v0 = len(new_k), len(new_v)
        if klen + dk == n2 * k0 and (level or vlen + dv == n2 * v0):
            return None
    j = i + hit  # first old entry after the edit
    parts = [
        _HDR.pack(VERSION, level, VARIABLE, 0, n2, total2, 0, 0),
        data[ke : ke + 4 * i],
        _END.pack(ki + len(new_k)) if put else b"",
        _shift(data[ke + 4 * j : ve], dk),
        data[ve : ve + 4 * i],
        _END.pack(vi + len(new_v)) if put else b"",
        _shift(data[ve + 4 * j : kb], dv),
        data[kb : kb + ki],
        new_k,
        data[kb + kj : vb],
        data[vb : vb + vi],
        new_v,
        data[vb + vj : co],
    ]
    if level:
        parts.append(data[co : co + 8 * i])
        parts.append(count.to_bytes(8, "little") if put else b"")
        parts.append(data[co + 8 * j :])
    return last, b"".join(parts), total2


def is_variable(data: bytes) -> bool:
    """Tell whether node bytes have the VARIABLE layout (False for anything malformed)."""
    return len(data) > 2 and data[2] == VARIABLE
