"""Apply's fast paths: splice a node's encoding instead of decode, merge, re-split, encode.

Most nodes a batch touches get one or a few edits that leave them one node:
no put key is a new boundary, the last key stays, and (FIXED layout) every
key and value keeps the node's widths. Such a node is rewritten by joining
byte ranges of its old encoding around the edits; the result is byte for byte
what ``encode`` gives the merged entries, so ids do not change.

- ``patch_fixed``: FIXED bytes; only the keys are unpacked, to find positions.
- ``patch_variable``: VARIABLE bytes; the end offsets after an edit are
  shifted all at once as one big integer (no per-entry Python ints).
- ``patch_node``: a decoded node of either layout; splices its entry tuples
  too, so the new node enters the cache decoded (one-key applies use it).

Any other case returns ``None`` and apply takes its general path.
"""

from __future__ import annotations

import functools
import struct
from bisect import bisect_left
from collections.abc import Callable, Container, Sequence
from itertools import chain
from typing import Any, Literal, TypeVar

from cas_dvid.trees._node import (
    _HDR,
    FIXED,
    HEADER_SIZE,
    VARIABLE,
    VERSION,
    Node,
    column_struct,
    encode,
    fixed_header,
    header_widths,
    variable_header,
)

T = TypeVar("T")
Patched = tuple[bytes, bytes, int]
"""``(last key, new node bytes, new total)`` of a patched node."""


def patch_fixed(
    data: bytes,
    oid: bytes,
    level: int,
    ops: Sequence[tuple[bytes, Any]],
    lo: int,
    hi: int,
    bounds: Container[bytes],
    touch: object,
    keys: tuple[bytes, ...] | None = None,
) -> Patched | Literal[False] | None:
    """Apply ``ops[lo:hi]`` to node bytes ``data`` when the result is still one FIXED node.

    Values of ``ops`` are: new value (leaf) or ``(child id, count)`` (internal
    node), ``None`` to delete, ``touch`` to ignore. ``bounds`` holds the op
    keys that are boundaries at ``level``. Returns the patched node, ``False``
    when no op changes anything, or ``None`` when the general path is needed.
    """
    head = fixed_header(data, oid)
    if head is None or not head[1]:
        return None
    _, n, total, kw, vw = head
    if hi - lo == 1 and not level:  # PERF: the usual leaf edit, in a few slices
        return _patch_leaf_once(data, n, kw, vw, *ops[lo], bounds, touch)
    ko = HEADER_SIZE
    vo = ko + n * kw
    co = vo + n * vw
    if keys is None:  # (``keys``: the node's keys when the caller has them at hand)
        keys = column_struct(kw, n).unpack_from(data, ko)
    last = keys[-1]
    kparts: list[bytes] = []
    vparts: list[bytes] = []
    cparts: list[bytes] = []
    prev = dn = dtotal = 0
    changed = False
    for k, v in ops[lo:hi]:
        if v is touch:
            continue
        i = bisect_left(keys, k, prev)
        if i == n:
            if v is None:
                continue  # deleting an absent key
            return None  # past the last key: the node's end moves
        hit = keys[i] == k
        if v is None:
            if not hit:
                continue
            if i == n - 1:
                return None  # deleting the last key moves the node's end
            dn -= 1
            dtotal -= _count(data, co, i) if level else 1
        elif len(k) != kw or (k in bounds and k != last):
            return None  # a new boundary splits the node, or the layout changes
        elif level:
            new_id, count = v
            old_count = _count(data, co, i) if hit else 0
            if hit and old_count == count and data[vo + i * vw : vo + i * vw + vw] == new_id:
                continue
            dtotal += count - old_count
        else:
            if len(v) != vw:
                return None
            if hit and data[vo + i * vw : vo + i * vw + vw] == v:
                continue
            dtotal += not hit
        changed = True
        if i > prev:
            kparts.append(data[ko + prev * kw : ko + i * kw])
            vparts.append(data[vo + prev * vw : vo + i * vw])
            if level:
                cparts.append(data[co + prev * 8 : co + i * 8])
        if v is not None:
            kparts.append(k)
            if level:
                vparts.append(new_id)
                cparts.append(count.to_bytes(8, "little"))
            else:
                vparts.append(v)
            dn += not hit
        prev = i + 1 if hit else i
    if not changed:
        return False
    kparts.append(data[ko + prev * kw : vo])
    vparts.append(data[vo + prev * vw : co])
    if level:
        cparts.append(data[co + prev * 8 :])
    total += dtotal
    header = _HDR.pack(VERSION, level, FIXED, 0, n + dn, total, kw, vw)
    return last, b"".join((header, *kparts, *vparts, *cparts)), total


def _patch_leaf_once(
    data: bytes, n: int, kw: int, vw: int, k: bytes, v: Any, bounds: Container[bytes], touch: object
) -> Patched | Literal[False] | None:
    """``patch_fixed`` of a FIXED leaf (``n`` entries, widths ``kw``/``vw``) for one op."""
    if v is touch:
        return False
    h, vo = HEADER_SIZE, HEADER_SIZE + n * kw
    lo, hi = 0, n  # PERF: bisect on the key column in place; unpacking it costs more
    while lo < hi:
        mid = (lo + hi) // 2
        if data[h + mid * kw : h + mid * kw + kw] < k:
            lo = mid + 1
        else:
            hi = mid
    i, ki, vi = lo, h + lo * kw, vo + lo * vw
    if i == n:
        return False if v is None else None  # (a put past the last key moves the node's end)
    hit = data[ki : ki + kw] == k
    last = data[vo - kw : vo]
    if v is None:
        if not hit:
            return False
        if i == n - 1:
            return None  # deleting the last key moves the node's end
        header = _HDR.pack(VERSION, 0, FIXED, 0, n - 1, n - 1, kw, vw)
        return last, b"".join((header, data[h:ki], data[ki + kw : vi], data[vi + vw :])), n - 1
    if len(k) != kw or len(v) != vw or (k in bounds and k != last):
        return None  # the layout changes, or a new boundary splits the node
    if hit:
        if data[vi : vi + vw] == v:
            return False
        return last, b"".join((data[:vi], v, data[vi + vw :])), n
    header = _HDR.pack(VERSION, 0, FIXED, 0, n + 1, n + 1, kw, vw)
    return last, b"".join((header, data[h:ki], k, data[ki:vi], v, data[vi:])), n + 1


def _count(data: bytes, co: int, i: int) -> int:
    return int.from_bytes(data[co + 8 * i : co + 8 * i + 8], "little")


def patch_node(
    node: Node,
    data: bytes,
    ops: Sequence[tuple[bytes, Any]],
    lo: int,
    hi: int,
    bounds: Container[bytes],
    touch: object,
) -> tuple[bytes, bytes, int, Node] | Literal[False] | None:
    """``patch_fixed`` for a decoded node (bytes ``data``) of any layout: splice its entry tuples.

    Same cases and answers, plus the new node decoded (returned last, for the
    cache). The new bytes are spliced too when the node stays VARIABLE (its
    end offsets are slow to recompute), else encoded from the new entries.
    """
    keys, vals, counts = node.keys, node.vals, node.counts
    n = len(keys)
    if not n:
        return None
    last = keys[-1]
    kparts: list[tuple[bytes, ...]] = []
    vparts: list[tuple[bytes, ...]] = []
    cparts: list[tuple[int, ...]] = []
    prev = 0
    total = node.total
    changed = False
    for k, v in ops[lo:hi]:
        if v is touch:
            continue
        i = bisect_left(keys, k, prev)
        if i == n:
            if v is None:
                continue  # deleting an absent key
            return None  # past the last key: the node's end moves
        hit = keys[i] == k
        if v is None:
            if not hit:
                continue
            if i == n - 1:
                return None  # deleting the last key moves the node's end
            total -= counts[i] if counts is not None else 1
        elif k in bounds and k != last:
            return None  # a new boundary splits the node
        elif counts is not None:
            new_id, count = v
            if hit and counts[i] == count and vals[i] == new_id:
                continue
            total += count - (counts[i] if hit else 0)
        else:
            if hit and vals[i] == v:
                continue
            total += not hit
        changed = True
        kparts.append(keys[prev:i])
        vparts.append(vals[prev:i])
        if counts is not None:
            cparts.append(counts[prev:i])
        if v is not None:
            kparts.append((k,))
            if counts is not None:
                vparts.append((new_id,))
                cparts.append((count,))
            else:
                vparts.append((v,))
        prev = i + 1 if hit else i
    if not changed:
        return False
    kparts.append(keys[prev:])
    vparts.append(vals[prev:])
    nk, nv = _cat(kparts), _cat(vparts)
    nc: tuple[int, ...] | None = None
    if counts is not None:
        cparts.append(counts[prev:])
        nc = _cat(cparts)
    if node.widths is None:
        patched = patch_variable(data, b"", node.level, ops, lo, hi, bounds, touch, keys)
        if patched:
            return last, patched[1], total, Node(node.level, nk, nv, nc, total, None)
    new = encode(node.level, nk, nv, nc)
    return last, new, total, Node(node.level, nk, nv, nc, total, header_widths(new))


def _cat(parts: list[tuple[T, ...]]) -> tuple[T, ...]:
    """Concatenate tuples (PERF: ``+`` beats ``chain`` for the 2-3 parts of one edit)."""
    if len(parts) > 4:
        return tuple(chain.from_iterable(parts))
    out = parts[0]
    for part in parts[1:]:
        out += part
    return out


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
