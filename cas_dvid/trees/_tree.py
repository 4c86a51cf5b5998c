"""``Tree``: the ordered Merkle map's operations over a ``NodeStore``, with a node cache."""

from __future__ import annotations

import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects.ids import ObjectId
from cas_dvid.trees import _apply, _diff
from cas_dvid.trees._build import (
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    NodeWriter,
    build_columns,
    check_entries,
    check_sorted,
)
from cas_dvid.trees._node import (
    EMPTY,
    EMPTY_NODE,
    EMPTY_ROOT,
    VARIABLE,
    Loaders,
    Node,
    RouteView,
    decode,
    route_view,
)
from cas_dvid.trees.abc import NodeStore

Puts = Mapping[bytes, bytes] | Iterable[tuple[bytes, bytes]]
Change = tuple[bytes, bytes | None, bytes | None]

DEFAULT_CACHE_NODES = 8192
"""Nodes kept per ``Tree``: bytes always (~3 KiB for a 64-entry leaf of block keys),
plus the decoded form (~8 KiB more) once a read needed it."""

BUILD_FLUSH_NODES = 4096
"""A bulk build hands nodes to the store in batches of this many."""


class _Entry:
    """One cached node: its bytes, plus its decoded form and routing view once asked for.

    PERF: apply and diff mostly work on the bytes; a node they create or
    load is decoded only if a read needs it, which saves decoding and makes
    an entry a few objects, cheap to evict, instead of one per key and value.
    Routing through an internal node needs only its keys (``route_view``).
    """

    __slots__ = ("data", "node", "route")

    def __init__(self, data: bytes, node: Node | None) -> None:
        self.data = data
        self.node = node
        self.route: RouteView | None = None


class Tree:
    """Ordered map from byte keys to byte values, stored as a prolly tree in a ``NodeStore``.

    A tree is named by its root id; every method takes the root to work on,
    and writes return a new root (old roots stay valid: nodes are immutable).
    Nodes are kept in a bounded LRU cache, safe because they never change.
    """

    def __init__(self, store: NodeStore, *, cache_nodes: int = DEFAULT_CACHE_NODES) -> None:
        self.store = store
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._cache_nodes = cache_nodes
        self._lock = threading.Lock()
        self._loaders = Loaders(self.node, self._node_bytes, self._route_view)

    # -- nodes -------------------------------------------------------------------

    def node(self, oid: bytes) -> Node:
        """Return node ``oid`` decoded (cached); raise ``NotFoundError``/``CorruptObjectError``."""
        entry = self._hit(oid) or self._load(oid)
        node = entry.node
        if node is None:
            node = entry.node = decode(entry.data, oid)
        return node

    def _node_bytes(self, oid: bytes) -> bytes:
        """Return the bytes of node ``oid`` (cached, not decoded); raise ``NotFoundError``."""
        return (self._hit(oid) or self._load(oid)).data

    def _route_view(self, oid: bytes) -> RouteView:
        """Return the routing view of node ``oid`` (cached): its keys without its values."""
        entry = self._hit(oid) or self._load(oid)
        view = entry.route
        if view is None:
            node = entry.node
            if node is None and len(entry.data) > 2 and entry.data[2] == VARIABLE:
                node = entry.node = decode(entry.data, oid)  # (its keys need decoding anyway)
            view = entry.route = route_view(entry.data, node, oid)
        return view

    def _load(self, oid: bytes) -> _Entry:
        if oid == EMPTY_ROOT:
            entry = _Entry(EMPTY_NODE, EMPTY)
        else:
            entry = _Entry(self.store.load_node(ObjectId(oid)), None)
        self._put(oid, entry)
        return entry

    def _remember(self, oid: bytes, data: bytes, node: Node | None) -> None:
        """Cache a node this tree just made (``node`` = its decoded form, if at hand)."""
        entry = self._hit(oid)
        if entry is None:
            self._put(oid, _Entry(data, node))
        elif entry.node is None:
            entry.node = node

    def _hit(self, oid: bytes) -> _Entry | None:
        """Return the cached entry of ``oid``, marked recently used (None on a miss)."""
        with self._lock:  # waitress calls one Tree from many threads
            entry = self._cache.get(oid)
            if entry is not None:
                self._cache.move_to_end(oid)
            return entry

    def _put(self, oid: bytes, entry: _Entry) -> None:
        with self._lock:
            cache = self._cache
            cache[oid] = entry
            if len(cache) > self._cache_nodes:
                cache.popitem(last=False)

    def clear_cache(self) -> None:
        """Drop every cached node (tests use it to count cold loads)."""
        with self._lock:
            self._cache.clear()

    # -- reads -------------------------------------------------------------------

    def get(self, root: ObjectId, key: bytes) -> bytes | None:
        """Return the value of ``key``, or ``None`` when absent."""
        node = self.node(root)
        while node.level:
            i = bisect_left(node.keys, key)
            if i == len(node.keys):
                return None
            node = self.node(node.vals[i])
        i = bisect_left(node.keys, key)
        return node.vals[i] if i < len(node.keys) and node.keys[i] == key else None

    def get_many(self, root: ObjectId, keys: Iterable[bytes]) -> dict[bytes, bytes]:
        """Values of the present ``keys`` (absent keys are left out), in one pass down the tree."""
        wanted = sorted(set(keys))
        out: dict[bytes, bytes] = {}
        if wanted:
            self._get_many(self.node(root), wanted, 0, len(wanted), out)
        return out

    def _get_many(
        self, node: Node, keys: list[bytes], lo: int, hi: int, out: dict[bytes, bytes]
    ) -> None:
        nkeys, n = node.keys, len(node.keys)
        if not node.level:
            vals, i = node.vals, 0
            for k in keys[lo:hi]:
                i = bisect_left(nkeys, k, i)
                if i < n and nkeys[i] == k:
                    out[k] = vals[i]
            return
        i = lo
        while i < hi:
            c = bisect_left(nkeys, keys[i])
            if c == n:
                return
            j = bisect_right(keys, nkeys[c], i, hi)
            self._get_many(self.node(node.vals[c]), keys, i, j, out)
            i = j

    def range(
        self,
        root: ObjectId,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """Entries with ``start <= key < end`` in key order (``None`` = unbounded).

        ``start_inclusive=False`` makes the start bound strict; ``end_inclusive=True``
        includes ``end``. Loads leaves lazily, at most one past the end.
        """
        cut = bisect_right if end_inclusive else bisect_left
        for leaf, pos in self._leaves_from(root, start, start_inclusive):
            keys = leaf.keys
            stop = len(keys) if end is None else cut(keys, end, pos)
            yield from zip(keys[pos:stop], leaf.vals[pos:stop], strict=True)
            if stop < len(keys):
                return

    def _leaves_from(
        self, root: ObjectId, start: bytes | None, inclusive: bool
    ) -> Iterator[tuple[Node, int]]:
        """Leaves from the one holding ``start`` on, each with the first position to read."""
        stack: list[tuple[Node, int]] = []
        node = self.node(root)
        while node.level:
            i = 0 if start is None else bisect_left(node.keys, start)
            if i == len(node.keys):
                return
            stack.append((node, i))
            node = self.node(node.vals[i])
        first = bisect_left if inclusive else bisect_right
        yield node, 0 if start is None else first(node.keys, start)
        while stack:
            parent, i = stack.pop()
            if i + 1 == len(parent.keys):
                continue
            stack.append((parent, i + 1))
            node = self.node(parent.vals[i + 1])
            while node.level:
                stack.append((node, 0))
                node = self.node(node.vals[0])
            yield node, 0

    def count(self, root: ObjectId) -> int:
        """Return the number of entries (read from the root's header)."""
        return self.node(root).total

    def height(self, root: ObjectId) -> int:
        """Return the number of node levels from the root to the leaves (1 for a lone leaf)."""
        return self.node(root).level + 1

    # -- writes ------------------------------------------------------------------

    def build(self, sorted_items: Iterable[tuple[bytes, bytes]]) -> ObjectId:
        """Build a tree from entries in strictly increasing key order; return its root.

        The root equals what any sequence of ``apply`` calls reaching the same
        entries would give. Raises ``InvalidInputError`` on unsorted keys or
        oversized keys/values.
        """
        items = sorted_items if isinstance(sorted_items, list) else list(sorted_items)
        keys = [k for k, _ in items]
        vals = [v for _, v in items]
        check_entries(keys, vals)
        check_sorted(keys)
        writer = NodeWriter(self.store, flush_every=BUILD_FLUSH_NODES)
        root = build_columns(keys, vals, writer)
        writer.flush()
        return root

    def apply(self, root: ObjectId, puts: Puts = (), deletes: Iterable[bytes] = ()) -> ObjectId:
        """Put and delete a batch of keys copy-on-write; return the new root.

        Only nodes on the paths to changed keys are rewritten; the rest are
        shared with ``root``. Deleting an absent key is a no-op. Raises
        ``InvalidInputError`` when a key is both put and deleted, or a key or
        value is over its size limit.
        """
        ops = _parse_batch(puts, deletes)
        if not ops:
            return root
        if root == EMPTY_ROOT:
            return self.build([(k, v) for k, v in ops if v is not None])
        writer = NodeWriter(self.store, remember=self._remember)
        new_root = _apply.apply_ops(self._loaders, writer, root, ops)
        writer.flush()
        return new_root

    # -- comparisons -------------------------------------------------------------

    def diff(self, root_a: ObjectId, root_b: ObjectId) -> Iterator[Change]:
        """Yield ``(key, old, new)`` for every key whose value differs, in key order.

        ``old`` is ``None`` for a key only in ``root_b``, ``new`` for one only in
        ``root_a``. A subtree whose id both sides share is never loaded.
        """
        return _diff.diff(self._loaders, root_a, root_b)

    def merge3(
        self, base: ObjectId, ours: ObjectId, theirs: ObjectId
    ) -> tuple[ObjectId, list[bytes]]:
        """Three-way merge: ``ours`` plus the changes ``theirs`` made since ``base``.

        A key changed on both sides to different values (a delete counts as a
        change) is a conflict: the merged root keeps our value and the key is
        listed, in key order. The same change on both sides is not a conflict.
        """
        if theirs in (base, ours):
            return ours, []
        if ours == base:
            return theirs, []
        puts, deletes, conflicts = _diff.merge_changes(
            self.diff(base, ours), self.diff(base, theirs)
        )
        return self.apply(ours, puts, deletes), conflicts

    # -- walking (sync, verify, gc) --------------------------------------------------

    def iter_node_ids(
        self,
        root: ObjectId,
        *,
        exclude: Callable[[Sequence[ObjectId]], Collection[ObjectId]] | None = None,
    ) -> Iterator[ObjectId]:
        """Every node id under ``root``, level by level from the root down.

        ``exclude`` gets each level's ids in one batch and returns those to skip
        together with their subtrees (e.g. the ones a sync peer already has).
        """
        level = [root]
        while level:
            if exclude is not None:
                skip = exclude(level)
                level = [oid for oid in level if oid not in skip]
            yield from level
            below: list[ObjectId] = []
            for oid in level:
                node = self.node(oid)
                if node.level:
                    below.extend(map(ObjectId, node.vals))
            level = below


def _parse_batch(puts: Puts, deletes: Iterable[bytes]) -> list[tuple[bytes, bytes | None]]:
    """Check a batch and return its ops sorted by key (``None`` = delete)."""
    # PERF: one-key writes (head writers hand ``deletes`` as an empty list)
    if type(puts) is dict and len(puts) == 1 and type(deletes) in (tuple, list) and not deletes:
        ((k, v),) = puts.items()
        if (
            type(k) is bytes
            and type(v) is bytes
            and len(k) <= MAX_KEY_SIZE
            and len(v) <= MAX_VALUE_SIZE
        ):
            return [(k, v)]
    p = dict(puts.items() if isinstance(puts, Mapping) else puts)
    check_entries(list(p), list(p.values()))
    ops: dict[bytes, bytes | None] = dict(p)
    dels = list(deletes)
    check_entries(dels, [b""] * len(dels))
    for k in dels:
        if k in p:
            raise InvalidInputError(f"key {k!r} is both put and deleted in one batch")
        ops[k] = None
    return sorted(ops.items(), key=itemgetter(0))
