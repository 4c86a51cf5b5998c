"""Apply's fast paths: splice a node's encoding instead of decode, merge, re-split, encode.

Most nodes a batch touches get one or a few edits that leave them one node:
no put key is a new boundary, the last key stays, and (FIXED layout) every
key and value keeps the node's widths. Such a node is rewritten by joining
byte ranges of its old encoding around the edits; the result is byte for byte
what ``encode`` gives the merged entries, so ids do not change.

- ``patch_fixed``: FIXED bytes; only the keys are unpacked, to find positions.
- ``patch_variable`` (in ``_splice_variable``): VARIABLE bytes.
- ``patch_node``: a decoded node of either layout; splices its entry tuples
  too, so the new node enters the cache decoded (one-key applies use it).

Any other case returns ``None`` and apply takes its general path.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Container, Sequence
from itertools import chain
from typing import Any, Literal, TypeVar

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
from cas_dvid.trees._splice_variable import Patched, _count, patch_variable

T = TypeVar("T")


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
    if hi - lo == 1:
        if not level:  # PERF: the usual leaf edit, in a few slices
            return _patch_leaf_once(data, n, kw, vw, *ops[lo], bounds, touch)
        if type(ops[lo][1]) is tuple:  # PERF: and its parents' entries for the new child
            return _patch_child_once(data, level, n, total, kw, vw, *ops[lo], bounds)
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
    lo = _bisect_keys(data, n, kw, k)
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


def _bisect_keys(data: bytes, n: int, kw: int, k: bytes) -> int:
    """Where ``k`` goes among a FIXED node's ``n`` keys of width ``kw`` (bisect_left).

    PERF: on the key column in place; unpacking it costs more.
    """
    h = HEADER_SIZE
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if data[h + mid * kw : h + mid * kw + kw] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _patch_child_once(
    data: bytes,
    level: int,
    n: int,
    total: int,
    kw: int,
    vw: int,
    k: bytes,
    v: tuple[bytes, int],
    bounds: Container[bytes],
) -> Patched | Literal[False] | None:
    """``patch_fixed`` of a FIXED internal node for one ``(child id, count)`` put."""
    h, vo = HEADER_SIZE, HEADER_SIZE + n * kw
    co = vo + n * vw
    lo = _bisect_keys(data, n, kw, k)
    if lo == n:
        return None  # past the last key: the node's end moves
    ki, vi, ci = h + lo * kw, vo + lo * vw, co + 8 * lo
    last = data[vo - kw : vo]
    if len(k) != kw or (k in bounds and k != last):
        return None  # the layout changes, or a new boundary splits the node
    new_id, count = v
    if data[ki : ki + kw] == k:
        old = int.from_bytes(data[ci : ci + 8], "little")
        if old == count and data[vi : vi + vw] == new_id:
            return False
        total += count - old
        header = _HDR.pack(VERSION, level, FIXED, 0, n, total, kw, vw)
        parts = (data[h:vi], new_id, data[vi + vw : ci], count.to_bytes(8, "little"))
        return last, b"".join((header, *parts, data[ci + 8 :])), total
    total += count
    header = _HDR.pack(VERSION, level, FIXED, 0, n + 1, total, kw, vw)
    grown = (data[h:ki], k, data[ki:vi], new_id, data[vi:ci], count.to_bytes(8, "little"))
    return last, b"".join((header, *grown, data[ci:])), total


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
