"""Diff of two leaves that hold the same key span, on their bytes when both are FIXED.

PERF: two versions of a leaf usually differ in one or two entries. When both
leaves have the FIXED layout with the same widths, their key columns and value
columns are compared as byte ranges: equal ranges are skipped with one
``memcmp``; unequal ones are cut into chunks of a few slots compared in C,
and only differing chunks are cut into entries. The usual shapes (same keys,
one key inserted or deleted) never decode a leaf; others decode only the
differing middle, or whole leaves of other layouts, and merge them run by run
(``diff_entries``). Changes are appended to a list: no generator per leaf.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator, Sequence
from itertools import compress, count, islice
from operator import ne

from cas_dvid.objects.ids import ID_SIZE
from cas_dvid.trees._node import HEADER_SIZE, Node, RouteView, column_struct, fixed_header

Change = tuple[bytes, bytes | None, bytes | None]
_CHUNK = 8  # PERF: slots compared at once before a differing chunk is cut into slots
_H = HEADER_SIZE


def leaf_changes(
    load: Callable[[bytes], Node],
    load_bytes: Callable[[bytes], bytes],
    a: bytes,
    b: bytes,
    out: list[Change],
) -> None:
    """Append ``(key, old, new)`` for each differing entry of leaves ``a`` and ``b``."""
    da, db = load_bytes(a), load_bytes(b)
    ha, hb = fixed_header(da, a), fixed_header(db, b)
    if ha is None or hb is None or ha[3:] != hb[3:]:
        node_a, node_b = load(a), load(b)
        out.extend(diff_entries(node_a.keys, node_a.vals, node_b.keys, node_b.vals))
        return
    na, nb, kw, vw = ha[1], hb[1], ha[3], ha[4]
    # Offsets of the value columns; the key columns start at _H on both sides.
    # PERF: ranges are compared in place (startswith on a memoryview), not sliced.
    va, vb = _H + na * kw, _H + nb * kw
    mb = memoryview(db)
    if na == nb and da.startswith(mb[_H:vb], _H):  # (0-byte keys: equal columns, unequal counts)
        _slot_changes(da, mb, _H, va, vb, na, kw, vw, out)
        return
    p = _first_diff(da, mb, _H, _H, min(na, nb), kw)  # keys [0, p) are equal on both sides
    if not da.startswith(mb[vb : vb + p * vw], va):
        _slot_changes(da, mb, _H, va, vb, p, kw, vw, out)
    if nb == na + 1 and da.startswith(mb[_H + (p + 1) * kw : vb], _H + p * kw):  # p inserted
        out.append((db[_H + p * kw : _H + p * kw + kw], None, db[vb + p * vw : vb + p * vw + vw]))
        ka, oa, ob, n = _H + p * kw, va + p * vw, vb + (p + 1) * vw, na - p
    elif na == nb + 1 and da.startswith(mb[_H + p * kw : vb], _H + (p + 1) * kw):  # p deleted
        out.append((da[_H + p * kw : _H + p * kw + kw], da[va + p * vw : va + p * vw + vw], None))
        ka, oa, ob, n = _H + (p + 1) * kw, va + (p + 1) * vw, vb + p * vw, nb - p
    else:
        out.extend(
            diff_entries(
                column_struct(kw, na - p).unpack_from(da, _H + p * kw),
                column_struct(vw, na - p).unpack_from(da, va + p * vw),
                column_struct(kw, nb - p).unpack_from(db, _H + p * kw),
                column_struct(vw, nb - p).unpack_from(db, vb + p * vw),
            )
        )
        return
    if not da.startswith(mb[ob : ob + n * vw], oa):
        _slot_changes(da, mb, ka, oa, ob, n, kw, vw, out)


def changed_children(a: RouteView, b: RouteView) -> list[tuple[bytes, bytes]] | None:
    """Pairs of differing child ids of two internal nodes with equal keys, else None.

    With equal keys child ``i`` spans the same keys on both sides. PERF: read
    from the routing views (keys column and ids compared as bytes, in place),
    so neither node is decoded.
    """
    _, ka, da, oa = a
    _, kb, db, ob = b
    n = len(ka)
    mb = memoryview(db)
    # [_H, ids) holds the keys (FIXED), or the end offsets and keys (VARIABLE):
    # equal iff the keys are, as the ids' end offsets are 32, 64, ... on both sides.
    if oa != ob or n != len(kb) or not da.startswith(mb[_H:ob], _H):
        return None
    out: list[tuple[bytes, bytes]] = []
    s = _chunks(ID_SIZE, n)
    for c in compress(count(), map(ne, s.unpack_from(da, oa), s.unpack_from(mb, ob))):
        base = c * _CHUNK
        cs = column_struct(ID_SIZE, min(_CHUNK, n - base))
        xa = cs.unpack_from(da, oa + base * ID_SIZE)
        xb = cs.unpack_from(mb, ob + base * ID_SIZE)
        out.extend((xa[d], xb[d]) for d in compress(count(), map(ne, xa, xb)))
    return out


@functools.lru_cache(maxsize=4096)
def _chunks(width: int, n: int) -> struct.Struct:
    """Struct cutting ``n`` slots of ``width`` bytes into chunks of ``_CHUNK`` slots."""
    q, r = divmod(n, _CHUNK)
    return struct.Struct(f"<{f'{_CHUNK * width}s' * q}{f'{r * width}s' if r else ''}")


def _first_diff(da: bytes, mb: memoryview, oa: int, ob: int, n: int, w: int) -> int:
    """First of ``n`` ``w``-byte slots that differ (a's at ``oa``, b's at ``ob``), or ``n``."""
    s = _chunks(w, n)
    c = next(compress(count(), map(ne, s.unpack_from(da, oa), s.unpack_from(mb, ob))), None)
    if c is None:
        return n
    base = c * _CHUNK
    s = column_struct(w, min(_CHUNK, n - base))
    off = base * w
    pairs = map(ne, s.unpack_from(da, oa + off), s.unpack_from(mb, ob + off))
    return base + next(compress(count(), pairs))


def _slot_changes(
    da: bytes,
    mb: memoryview,
    ka: int,
    oa: int,
    ob: int,
    n: int,
    kw: int,
    vw: int,
    out: list[Change],
) -> None:
    """Append the changes among ``n`` entries whose keys are equal on both sides.

    ``da`` and ``mb`` (a view of b) are FIXED leaves with ``kw``/``vw``
    widths; the entries' keys start at offset ``ka`` of ``da``, their values
    at ``oa``/``ob``. PERF: the values are compared a chunk of slots at a
    time in C (few objects), and only differing chunks are cut into slots.
    """
    s = _chunks(vw, n)
    for c in compress(count(), map(ne, s.unpack_from(da, oa), s.unpack_from(mb, ob))):
        base = c * _CHUNK
        cs = column_struct(vw, min(_CHUNK, n - base))
        xa = cs.unpack_from(da, oa + base * vw)
        xb = cs.unpack_from(mb, ob + base * vw)
        for d in compress(count(), map(ne, xa, xb)):
            k = ka + (base + d) * kw
            out.append((da[k : k + kw], xa[d], xb[d]))


def diff_entries(
    ka: Sequence[bytes], va: Sequence[bytes], kb: Sequence[bytes], vb: Sequence[bytes]
) -> Iterator[Change]:
    """Diff two sorted entry lists holding the same key span: a sorted merge, run by run.

    PERF: leaves that differ usually share long runs of equal keys; each run
    is found and its values compared by C iterators (``map(ne, ...)``), so the
    Python loop turns once per differing entry, not once per entry.
    """
    if ka == kb:
        for d in compress(count(), map(ne, va, vb)):
            yield ka[d], va[d], vb[d]
        return
    i = j = 0
    na_, nb_ = len(ka), len(kb)
    while i < na_ and j < nb_:
        run = next(compress(count(), map(ne, islice(ka, i, None), islice(kb, j, None))), None)
        m = min(na_ - i, nb_ - j) if run is None else run
        for d in compress(count(), map(ne, islice(va, i, i + m), islice(vb, j, j + m))):
            yield ka[i + d], va[i + d], vb[j + d]
        i += m
        j += m
        if i < na_ and j < nb_:
            if ka[i] < kb[j]:
                yield ka[i], va[i], None
                i += 1
            else:
                yield kb[j], None, vb[j]
                j += 1
    yield from ((k, v, None) for k, v in zip(ka[i:], va[i:], strict=True))
    yield from ((k, None, v) for k, v in zip(kb[j:], vb[j:], strict=True))
