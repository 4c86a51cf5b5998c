"""Bulk build of a canonical tree from sorted entries, and the node writer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import lt

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects.ids import ID_SIZE, ObjectId
from cas_dvid.trees._chunk import chunk_ends, key_hashes
from cas_dvid.trees._node import EMPTY_NODE, EMPTY_ROOT, Node, encode, node_id
from cas_dvid.trees.abc import NodeStore

MAX_KEY_SIZE = 1024
"""Longest key accepted, in bytes."""

MAX_VALUE_SIZE = 1024
"""Longest inline value accepted, in bytes; store bigger payloads as blobs and put their id."""


class NodeWriter:
    """Collects the nodes one operation creates and hands them to the store in batches.

    A batch is written only after every node it references was handed over in
    an earlier or the same batch (children are made before parents), so a
    store never holds a parent whose children were not offered to it first.
    """

    def __init__(
        self,
        store: NodeStore,
        *,
        flush_every: int = 0,
        remember: Callable[[ObjectId, bytes, Node | None], None] | None = None,
    ) -> None:
        self.store = store
        self.pending: dict[ObjectId, bytes] = {}
        self.flush_every = flush_every
        self.remember = remember

    def add(self, data: bytes, node: Node | None = None) -> ObjectId:
        """Queue one encoded node; return its id (``node`` is its decoded form, if known)."""
        oid = node_id(data)
        self.pending[oid] = data
        if self.remember is not None:
            self.remember(oid, data, node)
        if self.flush_every and len(self.pending) >= self.flush_every:
            self.flush()
        return oid

    def discard(self, oid: ObjectId) -> None:
        """Forget a queued node that the final tree does not reference."""
        self.pending.pop(oid, None)

    def flush(self) -> None:
        """Write the queued nodes in one ``store_nodes`` call."""
        if self.pending:
            self.store.store_nodes(self.pending)
            self.pending = {}


def check_entries(keys: Sequence[bytes], vals: Sequence[bytes]) -> None:
    """Raise ``InvalidInputError`` unless keys/values are bytes within the size limits."""
    if not keys:
        return
    if set(map(type, keys)) != {bytes} or set(map(type, vals)) != {bytes}:
        raise InvalidInputError("expected bytes keys and values")
    longest = max(map(len, keys))
    if longest > MAX_KEY_SIZE:
        raise InvalidInputError(f"expected keys of at most {MAX_KEY_SIZE} bytes, got {longest}")
    longest = max(map(len, vals))
    if longest > MAX_VALUE_SIZE:
        raise InvalidInputError(
            f"expected inline values of at most {MAX_VALUE_SIZE} bytes, got {longest}"
            " (store it as a blob and put its id)"
        )


def check_sorted(keys: Sequence[bytes]) -> None:
    """Raise ``InvalidInputError`` unless ``keys`` strictly increase."""
    if not all(map(lt, keys, keys[1:])):
        bad = next(i for i in range(1, len(keys)) if not keys[i - 1] < keys[i])
        raise InvalidInputError(
            f"expected strictly increasing keys, got {keys[bad - 1]!r} then {keys[bad]!r}"
        )


def _width(items: Sequence[bytes]) -> int:
    w = len(items[0])
    return w if min(map(len, items)) == w == max(map(len, items)) else -1


def build_columns(keys: list[bytes], vals: list[bytes], writer: NodeWriter) -> ObjectId:
    """Build the canonical tree of sorted, checked ``keys``/``vals``; return its root."""
    if not keys:
        writer.add(EMPTY_NODE)
        return EMPTY_ROOT
    hashes = key_hashes(keys)
    kw, vw = _width(keys), _width(vals)
    # NOTE: a node is FIXED iff its own widths agree; a hint is only safe when
    # the whole batch agrees, otherwise each node decides for itself.
    widths = (kw, vw) if kw >= 0 and vw >= 0 else None
    ends = chunk_ends(hashes, 0)
    ids: list[ObjectId] = []
    start = 0
    for end in ends:
        ids.append(writer.add(encode(0, keys[start:end], vals[start:end], widths=widths)))
        start = end
    last = [e - 1 for e in ends]
    counts = np.diff(np.array([0, *ends])).tolist()
    return build_up([keys[i] for i in last], ids, counts, 1, writer, hashes[last])


def build_up(
    keys: list[bytes],
    ids: list[ObjectId],
    counts: list[int],
    level: int,
    writer: NodeWriter,
    hashes: npt.NDArray[np.uint32] | None = None,
) -> ObjectId:
    """Stack internal levels, starting at ``level``, over one level's nodes; return the root.

    ``keys[i]``/``ids[i]``/``counts[i]`` describe the i-th node of level ``level - 1``.
    """
    kw = _width(keys)
    widths = (kw, ID_SIZE) if kw >= 0 else None
    while len(ids) > 1:
        if hashes is None:
            hashes = key_hashes(keys)
        ends = chunk_ends(hashes, level)
        nkeys: list[bytes] = []
        nids: list[ObjectId] = []
        ncounts: list[int] = []
        start = 0
        for end in ends:
            cs = counts[start:end]
            nids.append(
                writer.add(encode(level, keys[start:end], ids[start:end], cs, widths=widths))
            )
            nkeys.append(keys[end - 1])
            ncounts.append(sum(cs))
            start = end
        hashes = hashes[[e - 1 for e in ends]]
        keys, ids, counts = nkeys, nids, ncounts
        level += 1
    return ids[0]
