"""Diff of two trees that never loads a subtree whose id both sides share, and 3-way merge.

Each side is a stack of pending items in key order: a subtree
``(level, last_key, id, low)`` whose entries all lie in ``(low, last_key]``,
or an entry ``(-1, key, value, None)``. Everything already popped is below
every pending key on both sides, so when both tops are the same subtree it
covers the same entries on both sides and is skipped unloaded. Otherwise the
higher subtree is opened first, which keeps the two sides at the same level;
two nodes of one level that end at the same key are compared child by child,
and children with equal id and equal key interval are dropped unloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import compress, repeat
from operator import ne
from typing import Any

from cas_dvid.objects.ids import ObjectId
from cas_dvid.trees._leafdiff import changed_children, leaf_changes
from cas_dvid.trees._node import Loaders, Node

Loader = Callable[[bytes], Node]
Change = tuple[bytes, bytes | None, bytes | None]
Item = tuple[int, Any, Any, Any]  # (level | -1, key, id | value, low | None)
_ENTRY = -1


def diff(ld: Loaders, a: ObjectId, b: ObjectId) -> Iterator[Change]:
    """Yield ``(key, old, new)`` for each key whose value differs, in key order."""
    load = ld.node
    if a == b:
        return
    sa: list[Item] = [(ld.route(a)[0], None, a, None)]
    sb: list[Item] = [(ld.route(b)[0], None, b, None)]
    while sa and sb:
        x, y = sa[-1], sb[-1]
        lx, ly = x[0], y[0]
        if lx == _ENTRY and ly == _ENTRY:
            yield from _step_entries(sa, sb, x, y)
        elif lx == _ENTRY:
            if y[3] is not None and x[1] <= y[3]:
                sa.pop()
                yield x[1], x[2], None
            else:
                _expand(load, sb.pop(), sb)
        elif ly == _ENTRY:
            if x[3] is not None and y[1] <= x[3]:
                sb.pop()
                yield y[1], None, y[2]
            else:
                _expand(load, sa.pop(), sa)
        elif x[2] == y[2]:
            sa.pop()
            sb.pop()
        elif lx > ly:
            _expand(load, sa.pop(), sa)
        elif ly > lx:
            _expand(load, sb.pop(), sb)
        elif x[1] == y[1]:
            yield from _aligned(ld, sa.pop(), sb.pop(), sa, sb)
        else:
            _expand(load, sa.pop(), sa)
            _expand(load, sb.pop(), sb)
    yield from _drain(load, sa, old_side=True)
    yield from _drain(load, sb, old_side=False)


def _step_entries(sa: list[Item], sb: list[Item], x: Item, y: Item) -> Iterator[Change]:
    kx, ky = x[1], y[1]
    if kx == ky:
        sa.pop()
        sb.pop()
        if x[2] != y[2]:
            yield kx, x[2], y[2]
    elif kx < ky:
        sa.pop()
        yield kx, x[2], None
    else:
        sb.pop()
        yield ky, None, y[2]


def _expand(load: Loader, item: Item, stack: list[Item]) -> None:
    """Replace a subtree item by its children (or entries), pushed so the first pops first."""
    node = load(item[2])
    keys, n = node.keys, len(node.keys)
    vals = reversed(node.vals)
    if node.level == 0:
        stack.extend(zip(repeat(_ENTRY, n), reversed(keys), vals, repeat(None, n), strict=True))
        return
    lows = reversed([item[3], *keys[:-1]])
    stack.extend(zip(repeat(node.level - 1, n), reversed(keys), vals, lows, strict=True))


def _aligned(ld: Loaders, x: Item, y: Item, sa: list[Item], sb: list[Item]) -> Iterator[Change]:
    """Compare two same-level nodes ending at the same key: they hold the same key span."""
    load, load_bytes = ld.node, ld.data
    if x[0] == 0:
        out: list[Change] = []
        leaf_changes(load, load_bytes, x[2], y[2], out)
        yield from out
        return
    if x[0] == 1:
        # PERF: equal keys mean child i spans the same keys on both sides: diff
        # those leaf pairs here instead of a round trip through the stacks.
        pairs = changed_children(ld.route(x[2]), ld.route(y[2]))
        if pairs is not None:
            out = []
            for a, b in pairs:
                leaf_changes(load, load_bytes, a, b, out)
            yield from out
            return
    na, nb = load(x[2]), load(y[2])
    ka, kb = na.keys, nb.keys
    if ka == kb:
        keep_a = keep_b = list(compress(range(len(ka)), map(ne, na.vals, nb.vals)))
    else:
        # Children are equal when id and span (previous key, last key) agree; the
        # first child's span starts at the common stream head on both sides.
        ta = list(zip([None, *ka[:-1]], ka, na.vals, strict=True))
        tb = list(zip([None, *kb[:-1]], kb, nb.vals, strict=True))
        common = set(ta).intersection(tb)
        keep_a = [i for i, t in enumerate(ta) if t not in common]
        keep_b = [i for i, t in enumerate(tb) if t not in common]
    _push(na, x[3], keep_a, sa)
    _push(nb, y[3], keep_b, sb)


def _push(node: Node, low: Any, keep: list[int], stack: list[Item]) -> None:
    keys, ids, level = node.keys, node.vals, node.level - 1
    stack.extend((level, keys[i], ids[i], keys[i - 1] if i else low) for i in reversed(keep))


def _drain(load: Loader, stack: list[Item], *, old_side: bool) -> Iterator[Change]:
    """Everything left on one side exists on that side only."""
    while stack:
        item = stack.pop()
        if item[0] != _ENTRY:
            _expand(load, item, stack)
        elif old_side:
            yield item[1], item[2], None
        else:
            yield item[1], None, item[2]


def merge_changes(
    ours: Iterator[Change], theirs: Iterator[Change]
) -> tuple[dict[bytes, bytes], list[bytes], list[bytes]]:
    """Join two diffs from one base: (their puts, their deletes, conflicting keys).

    A key both sides changed to the same new value (or both deleted) is no
    conflict; a key they changed differently is, and ours wins in the merge.
    """
    puts: dict[bytes, bytes] = {}
    deletes: list[bytes] = []
    conflicts: list[bytes] = []
    o = next(ours, None)
    for key, _, new in theirs:
        while o is not None and o[0] < key:
            o = next(ours, None)
        if o is not None and o[0] == key:
            if o[2] != new:
                conflicts.append(key)
            continue
        if new is None:
            deletes.append(key)
        else:
            puts[key] = new
    return puts, deletes, conflicts
