"""Apply's fast path: splice a FIXED-layout node's bytes instead of decode, merge, encode.

Most nodes a scattered batch touches get one or a few edits that leave them
one node: no put key is a new boundary, the last key stays, and every key and
value keeps the node's widths. Such a node is rewritten by joining byte ranges
of its old encoding around the edits. Only its keys are unpacked (to find
positions); the result is byte for byte what ``encode`` gives the merged
entries, so ids do not change. Any other case returns ``None`` and apply
takes its general path (decode, merge, re-split, encode).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Container, Sequence
from itertools import chain
from typing import Any, Literal

from cas_dvid.trees._node import (
    _HDR,
    FIXED,
    HEADER_SIZE,
    VERSION,
    Node,
    column_struct,
    encode,
    fixed_header,
    header_widths,
)

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
    ko = HEADER_SIZE
    vo = ko + n * kw
    co = vo + n * vw
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


def _count(data: bytes, co: int, i: int) -> int:
    return int.from_bytes(data[co + 8 * i : co + 8 * i + 8], "little")


def patch_node(
    node: Node,
    ops: Sequence[tuple[bytes, Any]],
    lo: int,
    hi: int,
    bounds: Container[bytes],
    touch: object,
) -> tuple[bytes, bytes, int, Node] | Literal[False] | None:
    """``patch_fixed`` for a decoded node of any layout: splice its entry tuples, then encode.

    Same cases and answers, plus the new node decoded (returned last, for the cache).
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
    nk = tuple(chain.from_iterable(kparts))
    nv = tuple(chain.from_iterable(vparts))
    nc: tuple[int, ...] | None = None
    if counts is not None:
        cparts.append(counts[prev:])
        nc = tuple(chain.from_iterable(cparts))
    data = encode(node.level, nk, nv, nc)
    return last, data, total, Node(node.level, nk, nv, nc, total, header_widths(data))
