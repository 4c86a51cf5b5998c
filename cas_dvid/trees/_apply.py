r"""Copy-on-write batch apply that ends in the same tree a fresh build would make.

The batch is applied one level at a time, leaves first. At each level only the
nodes that hold an edited key are loaded ("touched"); each is merged with its
edits and re-split at content-defined boundaries; the nodes it turns into
become the edits of the level above (delete the old last key, put the new
nodes' last keys). Untouched nodes keep their ids and are shared.

Why the result is canonical: inside a node no key but the last is a boundary,
so re-splitting only needs the hashes of inserted keys and of the old last
key. A node's tail can run past its old end only when its old last key (a
boundary) was deleted; the node after it is then touched too (by routing
``key + b"\\x00"``, the smallest key after it), so the carried tail always
meets a boundary, or the level's end, exactly where a fresh build would.

PERF: a touched node that stays one node (the usual case) is spliced on its
bytes (``_patch``) rather than merged and re-split; a batch of one key walks
its path alone (``_apply_one``). Both give the bytes the general path would.
"""

from __future__ import annotations

import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, Literal

from cas_dvid.objects.ids import ID_SIZE, ObjectId
from cas_dvid.trees._build import NodeWriter, build_up
from cas_dvid.trees._chunk import is_boundary, key_hash, key_hash_list, threshold
from cas_dvid.trees._node import (
    _HDR,
    EMPTY_NODE,
    EMPTY_ROOT,
    Loaders,
    Node,
    RouteView,
    decode,
    encode,
    header_widths,
)
from cas_dvid.trees._patch import patch_fixed, patch_node
from cas_dvid.trees._splice_variable import is_variable, patch_variable

Loader = Callable[[bytes], Node]
Op = tuple[bytes, Any]  # (key, new value | None for delete | _TOUCH); internal values: (id, count)
# node id, its slice [lo, hi) of the level's ops, whether it is the level's last node
Touched = tuple[bytes, int, int, bool]

_TOUCH: Any = object()
FAST_PATHS = os.environ.get("CAS_DVID_TREE_FAST_PATHS", "1") != "0"
"""Splice nodes' bytes (``_patch``, ``_splice_variable``) and the one-put path; with
``CAS_DVID_TREE_FAST_PATHS=0`` every apply takes the general merge and re-split, which
must give the same bytes (``make test`` runs the tree tests both ways)."""
_DICT_MERGE_OVER = 16  # PERF: bisect+insert per op beats a dict rebuild below this many ops.


def apply_ops(ld: Loaders, writer: NodeWriter, root: ObjectId, ops: list[Op]) -> ObjectId:
    """Apply sorted, unique ``ops`` (value ``None`` deletes) to ``root``; return the new root."""
    root_view = ld.route(root)
    if len(ops) == 1 and FAST_PATHS:
        new_root = _apply_one(ld, writer, root, root_view, *ops[0])
        if new_root is not None:
            return new_root
        writer.pending.clear()  # (the general path below redoes what the attempt wrote)
    height = root_view[0]
    for level in range(height + 1):
        bounds = _boundaries(ops, level)
        level_ops = _with_touches(ops, bounds)
        touched: list[Touched] = []
        keys = [k for k, _ in level_ops]
        _route(ld.route, root, root_view, level, keys, 0, len(keys), True, touched)
        old, added = _rechunk(ld, touched, level, level_ops, bounds, writer)
        if not old and not added:
            return root
        if level == height:
            return _new_root(ld.node, writer, added, height)
        ops = _parent_ops(old, added)
    raise AssertionError("unreachable: the loop returns at the root level")


def _apply_one(
    ld: Loaders,
    writer: NodeWriter,
    root: ObjectId,
    root_view: RouteView,
    key: bytes,
    value: bytes | None,
) -> ObjectId | None:
    """Apply one put or delete along its path, when every node on it stays one node.

    PERF: a single-key write (a keyvalue POST) skips the batch machinery:
    it patches the leaf, then each ancestor's entry for it, bottom up.
    Returns None when the leaf would split or end at another key; the caller
    then drops what was queued and takes the general path.
    """
    path: list[tuple[bytes, bytes]] = []  # (node id, key of the child taken) from the root down
    oid: bytes = root
    level, keys, data, off = root_view
    while level:
        i = bisect_left(keys, key)
        if i == len(keys):
            return None  # past the last key: the rightmost nodes' ends move
        path.append((oid, keys[i]))
        oid = data[off + ID_SIZE * i : off + ID_SIZE * i + ID_SIZE]
        if level == 1:
            break  # (the leaf is read below, as bytes when it can be)
        level, keys, data, off = ld.route(oid)
    op: list[Op] = [(key, value)]
    bounds = (key,) if value is not None and key_hash(key) < threshold(0) else ()
    level = 0
    while True:
        data = ld.data(oid)
        # A VARIABLE node is patched decoded: finding keys in its bytes is slow.
        patched = None
        if not is_variable(data):
            patched = patch_fixed(data, oid, level, op, 0, 1, bounds, _TOUCH)
        if patched is None:
            spliced = patch_node(ld.node(oid), data, op, 0, 1, bounds, _TOUCH)
            if spliced is None:
                return None
            if spliced is False:
                return root
            _, data, total, new_node = spliced
            new_id = writer.add(data, new_node)
        elif patched is False:
            return root
        else:
            _, data, total = patched
            new_id = writer.add(data)
        if not path:
            return new_id
        oid, child_key = path.pop()
        # The child keeps its last key, which is inside this node or its last,
        # so the update cannot add a boundary: no bounds to check from here up.
        op = [(child_key, (new_id, total))]
        bounds = ()
        level += 1


def _boundaries(ops: list[Op], level: int) -> set[bytes]:
    """Return the keys of ``ops`` that end a node at ``level``."""
    keys = [k for k, _ in ops]
    t = threshold(level)
    return {k for k, h in zip(keys, key_hash_list(keys), strict=True) if h < t}


def _with_touches(ops: list[Op], bounds: set[bytes]) -> list[Op]:
    """Add a touch after every deleted boundary key, so the node after it is re-split too."""
    touches = [k + b"\x00" for k, v in ops if v is None and k in bounds]
    if not touches:
        return ops
    merged = dict(ops)
    for key in touches:
        merged.setdefault(key, _TOUCH)
    return sorted(merged.items(), key=itemgetter(0))


def _route(
    route: Callable[[bytes], RouteView],
    oid: bytes,
    view: RouteView,
    level: int,
    keys: Sequence[bytes],
    lo: int,
    hi: int,
    rightmost: bool,
    out: list[Touched],
) -> None:
    """Append, in key order, each node at ``level`` that ``keys[lo:hi]`` fall into.

    Nodes above ``level`` are read as routing views (keys, not values); the
    nodes found are not read here: the caller reads their bytes.
    """
    node_level, nkeys, data, off = view
    if node_level == level:
        out.append((oid, lo, hi, rightmost))
        return
    last = len(nkeys) - 1
    leafward = node_level == level + 1
    i = lo
    while i < hi:
        c = bisect_left(nkeys, keys[i])
        if c >= last:
            c, j = last, hi
        else:
            j = bisect_right(keys, nkeys[c], i, hi)
        child = data[off + ID_SIZE * c : off + ID_SIZE * c + ID_SIZE]
        if leafward:  # PERF: no recursive call for the level most nodes are on.
            out.append((child, i, j, rightmost and c == last))
        else:
            _route(route, child, route(child), level, keys, i, j, rightmost and c == last, out)
        i = j


def _rechunk(
    ld: Loaders,
    touched: list[Touched],
    level: int,
    ops: list[Op],
    bounds: set[bytes],
    writer: NodeWriter,
) -> tuple[dict[bytes, bytes], list[tuple[bytes, ObjectId, int]]]:
    """Merge and re-split the touched nodes of one level.

    Returns the replaced nodes (old last key -> old id) and the new nodes
    (last key, id, entry count), both in key order.
    """
    old: dict[bytes, bytes] = {}
    added: list[tuple[bytes, ObjectId, int]] = []
    pk: list[bytes] = []
    pv: list[Any] = []
    for oid, lo, hi, rightmost in touched:
        if not pk and FAST_PATHS:  # PERF: most nodes stay one node; splice their bytes.
            spliced = _splice(ld, oid, level, ops, lo, hi, bounds)
            if spliced is False:
                continue
            if spliced is not None:
                last, data, total, new_node = spliced
                old[last] = oid
                added.append((last, writer.add(data, new_node), total))
                continue
        node = ld.node(oid)
        node_ops = [op for op in ops[lo:hi] if op[1] is not _TOUCH]
        vals = _entry_vals(node)
        mk, mv, changed = _merge(node.keys, vals, node_ops)
        if not changed and not pk:
            continue
        if node.keys:
            old[node.keys[-1]] = oid
        widths = None if pk else _widths(node, node_ops)
        base = len(pk)
        ks, vs = (pk + mk, pv + mv) if pk else (mk, mv)
        start = 0
        for p in _cuts(mk, node_ops, node.keys, bounds, rightmost, level):
            end = base + p + 1
            added.append(_emit(level, ks[start:end], vs[start:end], writer, widths))
            start = end
        pk, pv = (ks[start:], vs[start:]) if start < len(ks) else ([], [])
    if pk:
        added.append(_emit(level, pk, pv, writer, None))
    return old, added


def _splice(
    ld: Loaders, oid: bytes, level: int, ops: list[Op], lo: int, hi: int, bounds: set[bytes]
) -> tuple[bytes, bytes, int, Node | None] | Literal[False] | None:
    """Patch one touched node in place of merge and re-split, when it stays one node.

    Returns ``(last key, bytes, total, decoded node or None)``, False when
    nothing changes, None when the general path is needed.
    """
    if level:  # (routing read this node's keys already)
        _, keys, data, _ = ld.route(oid)
    else:
        keys, data = None, ld.data(oid)
    patch = patch_variable if is_variable(data) else patch_fixed
    patched = patch(data, oid, level, ops, lo, hi, bounds, _TOUCH, keys)
    if patched is None:  # (a layout change is spliced decoded)
        return patch_node(ld.node(oid), data, ops, lo, hi, bounds, _TOUCH)
    return patched and (*patched, None)


def _widths(node: Node, ops: list[Op]) -> tuple[int, int] | None:
    """Return the node's (key, value) widths if every put keeps them, else None."""
    if node.widths is None or not node.keys:
        return None
    kw, vw = node.widths
    if node.level:
        ok = all(len(k) == kw for k, v in ops if v is not None)
    else:
        ok = all(len(k) == kw and len(v) == vw for k, v in ops if v is not None)
    return node.widths if ok else None


def _entry_vals(node: Node) -> Sequence[Any]:
    if node.counts is None:
        return node.vals
    return list(zip(node.vals, node.counts, strict=True))


def _merge(
    keys: Sequence[bytes], vals: Sequence[Any], ops: list[Op]
) -> tuple[list[bytes], list[Any], bool]:
    """Apply sorted ops to one node's entries; return new lists and whether anything changed."""
    if len(ops) > _DICT_MERGE_OVER:
        d = dict(zip(keys, vals, strict=True))
        for k, v in ops:
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v
        mk = sorted(d)
        mv = [d[k] for k in mk]
        return mk, mv, mk != list(keys) or mv != list(vals)
    mk, mv = list(keys), list(vals)
    changed = False
    i = 0
    for k, v in ops:
        i = bisect_left(mk, k, i)
        hit = i < len(mk) and mk[i] == k
        if v is None:
            if hit:
                del mk[i], mv[i]
                changed = True
        elif not hit:
            mk.insert(i, k)
            mv.insert(i, v)
            changed = True
        elif mv[i] != v:
            mv[i] = v
            changed = True
    return mk, mv, changed


def _cuts(
    mk: list[bytes],
    ops: list[Op],
    old_keys: Sequence[bytes],
    bounds: set[bytes],
    rightmost: bool,
    level: int,
) -> list[int]:
    """Positions in ``mk`` of boundary keys: only put keys and the old last key can be one.

    The old last key of any node but the level's last is a boundary by construction.
    """
    cands = {k for k, v in ops if v is not None and k in bounds}
    if old_keys and (not rightmost or is_boundary(old_keys[-1], level)):
        cands.add(old_keys[-1])
    cuts = []
    n = len(mk)
    for k in sorted(cands):
        i = bisect_left(mk, k)
        if i < n and mk[i] == k:
            cuts.append(i)
    return cuts


def _emit(
    level: int,
    keys: list[bytes],
    vals: list[Any],
    writer: NodeWriter,
    widths: tuple[int, int] | None,
) -> tuple[bytes, ObjectId, int]:
    """Encode and queue one new node; return its parent entry (last key, id, count)."""
    kt = tuple(keys)
    if level == 0:
        vt = tuple(vals)
        data = encode(0, kt, vt, widths=widths)
        node = Node(0, kt, vt, None, len(kt), widths or header_widths(data))
        return kt[-1], writer.add(data, node), len(kt)
    ids, counts = zip(*vals, strict=True)
    data = encode(level, kt, ids, counts, widths=widths)
    node = Node(level, kt, ids, counts, sum(counts), widths or header_widths(data))
    return kt[-1], writer.add(data, node), node.total


def _parent_ops(old: dict[bytes, bytes], added: list[tuple[bytes, ObjectId, int]]) -> list[Op]:
    """Edits of the level above: drop replaced children, put new ones; skip no-ops."""
    ops: dict[bytes, Any] = dict.fromkeys(old)
    for key, oid, count in added:
        if old.get(key) == oid:
            del ops[key]
        else:
            ops[key] = (oid, count)
    return sorted(ops.items(), key=itemgetter(0))


def _new_root(
    load: Loader,
    writer: NodeWriter,
    added: list[tuple[bytes, ObjectId, int]],
    height: int,
) -> ObjectId:
    """Root over the new content of the old root's level (``added`` is all of it)."""
    if not added:
        writer.add(EMPTY_NODE)
        return EMPTY_ROOT
    if len(added) > 1:
        keys, ids, counts = (list(col) for col in zip(*added, strict=True))
        return build_up(keys, ids, counts, height + 1, writer)
    return _collapse(load, writer, added[0][1])


def _collapse(load: Loader, writer: NodeWriter, oid: ObjectId) -> ObjectId:
    """Descend through single-child roots: the canonical root is the first one-node level."""
    while True:
        data = writer.pending.get(oid)
        if data is None:
            node = load(oid)
        else:
            _, level, _, _, n, _, _, _ = _HDR.unpack_from(data)
            if not level or n != 1:  # PERF: the usual answer, read from the header alone
                return oid
            node = decode(data, oid)
        if not node.level or len(node.keys) != 1:
            return oid
        writer.discard(oid)
        oid = ObjectId(node.vals[0])
