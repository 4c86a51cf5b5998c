"""Writing label blocks: one plan updates blocks, label index, summaries and counters together.

A block write is a ``Plan`` (see versions/heads.py): it reads the blocks it replaces,
their supervoxels' bodies and the index entries they touch from the tree it is
applied to, and returns every change in one batch.  After a lost swap it runs again
on the winner's root, so the index can never disagree with the voxels, even with
writers racing on one store (DVID lost label indices after an ingest crash).

Index entries are kept per (body, block): the supervoxels of the body in that block
and their voxel counts.  Body summaries (voxels, blocks) change by the difference
between the old and the new entries, as read from the index itself, so a write over
blocks ingested with ``noindexing`` never drives a count below zero.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.base import (
    blob_value,
    decode_values,
    encode_value,
    inline_payload,
    inline_value,
)
from cas_dvid.datatypes.geometry import Box3
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.counts import block_label_counts
from cas_dvid.objects import Kind, ObjectId, ObjectStore
from cas_dvid.trees.keys import block_key
from cas_dvid.versions.heads import Reader, Update

Coord = tuple[int, int, int]
Counts = tuple[NDArray[np.uint64], NDArray[np.int64]]
Ops = dict[bytes, Any]


@dataclass(slots=True)
class NewBlock:
    """A block about to be written: its stored object and its supervoxel counts (no 0)."""

    oid: ObjectId
    counts: Counts


@dataclass(slots=True)
class BlockWrite:
    """What a plan writes: blocks at ``scale`` and whether to index them.

    ``extra`` ops join the same batch (lower-res blocks from ``downres``, dirty marks).
    """

    blocks: dict[Coord, NewBlock]
    scale: int = 0
    index: bool = True
    mapped: bool = True
    box: Box3 | None = None
    extra: Ops = field(default_factory=dict)
    reindex: bool = False
    """The blocks are already stored (indexing after ``noindexing``): where the tree
    still holds the same object, its counts are the ones given, not read again."""


def nonzero(counts: Counts) -> Counts:
    """Return counts without label 0 (the index leaves the background out)."""
    labels, n = counts
    keep = labels != 0
    return labels[keep], n[keep]


def bodies_of(read: Reader, svs: NDArray[np.uint64], mapped: bool) -> NDArray[np.uint64]:
    """Body of each supervoxel in ``svs``: its mapping entry, else itself (retired 0 too)."""
    bodies = svs.copy()
    if not mapped or not len(svs):
        return bodies
    keys = K.mapping_keys(svs)
    found = read(keys)
    if found:
        pos = {k: i for i, k in enumerate(keys)}
        for key, value in found.items():
            body = K.decode_label_value(value)
            if body:
                bodies[pos[key]] = body
    return bodies


def _rows(
    counts: Sequence[Counts],
) -> tuple[NDArray[np.uint64], NDArray[np.int64], NDArray[np.int64]]:
    """Concatenated (supervoxels, voxel counts, position of their block in ``counts``)."""
    lens = [len(c[0]) for c in counts]
    if not counts or not sum(lens):
        return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    svs = np.concatenate([c[0] for c in counts]).astype(np.uint64, copy=False)
    n = np.concatenate([c[1] for c in counts]).astype(np.int64, copy=False)
    return svs, n, np.repeat(np.arange(len(counts)), lens)


_PAIR_KEY = np.dtype([("body", "<u8"), ("block", "<i8")])


class BlockPlanner:
    """Builds the plan of a ``BlockWrite`` for one instance."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def plan(self, write: BlockWrite) -> Callable[[Reader], Ops]:
        """Return the plan: call it with a reader of the tree the write lands on."""

        def run(read: Reader) -> Ops:
            ops: Ops = dict(write.extra)
            coords = list(write.blocks)
            keys = [K.LABEL_BLOCK_CLASS + block_key(write.scale, z, y, x) for x, y, z in coords]
            for key, new in zip(keys, write.blocks.values(), strict=True):
                ops[key] = blob_value(new.oid)
            if write.index and write.scale == 0:
                old = read(keys)
                olds = {c: old.get(k) for c, k in zip(coords, keys, strict=True)}
                ops.update(self._index_ops(read, write, olds))
            labels = [
                int(c[0].max()) for c in (b.counts for b in write.blocks.values()) if len(c[0])
            ]
            if labels:
                ops[K.MAXLABEL_KEY] = raise_to(max(labels))
            if write.box is not None:
                ops[K.LABEL_EXTENTS_KEY] = grow_extents(write.box)
            return ops

        return run

    def old_counts(self, olds: Mapping[Coord, bytes | None]) -> dict[Coord, Counts]:
        """Supervoxel counts of the blocks being replaced, from their stored Blocks."""
        present = [(c, v) for c, v in olds.items() if v is not None]
        blobs = self.store.get_many([ObjectId(v[1:]) for _, v in present], Kind.BLOB)
        return {c: nonzero(block_label_counts(b)) for (c, _), b in zip(present, blobs, strict=True)}

    def _index_ops(
        self, read: Reader, write: BlockWrite, olds: Mapping[Coord, bytes | None]
    ) -> Ops:
        """Index and summary changes of a block write, computed over all its blocks at once.

        Every (body, block) pair the new or the replaced blocks hold is touched; the new
        blocks' pairs get entries, the rest are deleted (see ``apply_entries``).
        """
        same: dict[Coord, Counts] = {}
        if write.reindex:
            same = {
                c: b.counts for c, b in write.blocks.items() if olds.get(c) == blob_value(b.oid)
            }
        old_counts = {**self.old_counts({c: v for c, v in olds.items() if c not in same}), **same}
        coords = list(write.blocks)
        xyz = np.array(coords, np.int64).reshape(-1, 3)
        at = {c: i for i, c in enumerate(coords)}
        new_sv, new_n, new_blk = _rows([b.counts for b in write.blocks.values()])
        old_sv, _, old_pos = _rows(list(old_counts.values()))
        old_blk = np.array([at[c] for c in old_counts], np.int64)[old_pos]
        svs = np.unique(np.concatenate([new_sv, old_sv]))
        bodies = bodies_of(read, svs, write.mapped)
        new_body = bodies[np.searchsorted(svs, new_sv)]
        old_body = bodies[np.searchsorted(svs, old_sv)]
        # Blocks in key order (z, y, x) so that (body, rank) sorts as the index keys do.
        order = np.lexsort((xyz[:, 0], xyz[:, 1], xyz[:, 2]))
        rank = np.empty(len(coords), np.int64)
        rank[order] = np.arange(len(coords))
        new_rank = rank[new_blk]
        # New entries: rows sorted by body, block, supervoxel; one entry per (body, block).
        o = np.lexsort((new_sv, new_rank, new_body))
        new_body, new_rank, new_sv, new_n = new_body[o], new_rank[o], new_sv[o], new_n[o]
        rows = len(new_sv)
        cut = np.flatnonzero((new_body[1:] != new_body[:-1]) | (new_rank[1:] != new_rank[:-1]))
        starts = np.concatenate([[0], cut + 1]).astype(np.int64) if rows else cut
        ends = np.append(starts[1:], rows)
        pairs = np.empty(rows, K.PAIR)
        pairs["sv"], pairs["n"] = new_sv, new_n
        buf, step = pairs.tobytes(), K.PAIR.itemsize
        payloads = [
            buf[i * step : j * step] for i, j in zip(starts.tolist(), ends.tolist(), strict=True)
        ]
        voxels = np.add.reduceat(new_n, starts) if rows else new_n
        # Touched: the new entries' pairs and the replaced blocks' pairs, in key order.
        keyed = np.empty(len(starts) + len(old_body), _PAIR_KEY)
        keyed["body"] = np.concatenate([new_body[starts], old_body])
        keyed["block"] = np.concatenate([new_rank[starts], rank[old_blk]])
        touched, inverse = np.unique(keyed, return_inverse=True)
        which = np.full(len(touched), -1, np.int64)
        which[inverse.reshape(-1)[: len(starts)]] = np.arange(len(starts))
        now = np.zeros(len(touched), np.int64)
        now[which >= 0] = voxels[which[which >= 0]]
        keys = K.index_keys(touched["body"], xyz[order][touched["block"]])
        entries = [None if w < 0 else payloads[w] for w in which.tolist()]
        return self.apply_entries(read, keys, touched["body"], entries, now)

    def entry_ops(
        self,
        read: Reader,
        touched: set[tuple[int, Coord]],
        new_entries: Mapping[tuple[int, Coord], Counts],
    ) -> Ops:
        """Put ``new_entries``, delete the other ``touched`` entries, and move the summaries.

        The summaries change by what the index held before, read here.
        """
        pairs = sorted(touched)
        keys = [K.index_key(b, *c) for b, c in pairs]
        bodies = np.array([b for b, _ in pairs], np.uint64)
        entries: list[bytes | None] = []
        now = np.zeros(len(pairs), np.int64)
        for i, pair in enumerate(pairs):
            entry = new_entries.get(pair)
            if entry is not None and len(entry[0]):
                entries.append(K.encode_pairs(*entry))
                now[i] = int(entry[1].sum())
            else:
                entries.append(None)
        return self.apply_entries(read, keys, bodies, entries, now)

    def apply_entries(
        self,
        read: Reader,
        keys: Sequence[bytes],
        bodies: NDArray[np.uint64],
        entries: Sequence[bytes | None],
        now: NDArray[np.int64],
    ) -> Ops:
        """Index ops for ``keys`` (sorted, unique; ``bodies`` theirs) and the summary moves.

        ``entries[i]`` is the new payload of ``keys[i]`` counting ``now[i]`` voxels, or
        None: the entry goes.  Each body's summary moves by the difference between the
        voxels and blocks it had in these keys, as read here, and what it has now.
        """
        stored = read(keys)
        values = [stored.get(k) for k in keys]
        had = np.array(self.entry_totals(values), np.int64)
        was = np.array([v is not None for v in values], np.int64)
        ops: Ops = {}
        for key, entry, n, value in zip(keys, entries, now.tolist(), values, strict=True):
            if entry is not None and n:
                ops[key] = encode_value(self.store, entry)[0]
            elif value is not None:
                ops[key] = None
        if len(keys):
            cut = np.flatnonzero(bodies[1:] != bodies[:-1]) + 1
            starts = np.concatenate([[0], cut]).astype(np.int64)
            dvox = np.add.reduceat(now - had, starts)
            dblk = np.add.reduceat((now > 0).astype(np.int64) - was, starts)
            ops.update(summary_ops(read, bodies[starts], dvox, dblk))
        return ops

    def entry_totals(self, values: Sequence[bytes | None]) -> list[int]:
        """Voxels each stored index entry counts (0 for a missing one)."""
        present = [v for v in values if v is not None]
        payloads = iter(decode_values(self.store, present))
        return [0 if v is None else int(K.decode_pairs(next(payloads))["n"].sum()) for v in values]


_EMPTY: Counts = (np.zeros(0, np.uint64), np.zeros(0, np.int64))


def summary_ops(
    read: Reader, bodies: NDArray[np.uint64], dvox: NDArray[np.int64], dblk: NDArray[np.int64]
) -> Ops:
    """Summary updates of ``bodies`` (ascending, unique) whose voxels or blocks moved."""
    moved = (dvox != 0) | (dblk != 0)
    pick = bodies[moved].tolist()
    keys = [K.body_key(b) for b in pick]
    stored = read(keys)
    return {
        key: K.moved_summary(stored.get(key), v, b)
        for key, v, b in zip(keys, dvox[moved].tolist(), dblk[moved].tolist(), strict=True)
    }


def raise_to(label: int) -> Update:
    """Return an update keeping the larger of the stored max label and ``label``."""

    def update(old: bytes | None) -> bytes:
        current = 0 if old is None else K.decode_label_value(old)
        return K.encode_label_value(max(current, label))

    return update


def grow_extents(box: Box3) -> Update:
    """Return an update growing the stored extents (MinPoint, MaxPoint inclusive) to ``box``."""

    def grow(old: bytes | None) -> bytes:
        lo, hi = list(box.start), [v - 1 for v in box.stop]
        if old is not None:
            doc = json.loads(inline_payload(old))
            lo = [min(a, b) for a, b in zip(lo, doc["MinPoint"], strict=True)]
            hi = [max(a, b) for a, b in zip(hi, doc["MaxPoint"], strict=True)]
        return inline_value(json.dumps({"MinPoint": lo, "MaxPoint": hi}).encode())

    return grow
