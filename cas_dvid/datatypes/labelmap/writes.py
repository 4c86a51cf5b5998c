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

import dataclasses
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def bodies_of(read: Reader, svs: Iterable[int], mapped: bool) -> dict[int, int]:
    """Body of each supervoxel: its mapping entry, else itself (retired 0 reads as itself)."""
    svs = list(svs)
    if not mapped or not svs:
        return {sv: sv for sv in svs}
    found = read([K.mapping_key(sv) for sv in svs])
    out = {}
    for sv in svs:
        value = found.get(K.mapping_key(sv))
        body = 0 if value is None else K.decode_label_value(value)
        out[sv] = body or sv
    return out


def entries_by_body(counts: Counts, bodies: Mapping[int, int]) -> dict[int, Counts]:
    """Split one block's supervoxel counts by body."""
    svs, n = counts
    if not len(svs):
        return {}
    owner = np.fromiter((bodies[int(s)] for s in svs), np.uint64, len(svs))
    out: dict[int, Counts] = {}
    for body in np.unique(owner):
        pick = owner == body
        out[int(body)] = (svs[pick], n[pick])
    return out


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
        same: dict[Coord, Counts] = {}
        if write.reindex:
            same = {
                c: b.counts for c, b in write.blocks.items() if olds.get(c) == blob_value(b.oid)
            }
        old_counts = {**self.old_counts({c: v for c, v in olds.items() if c not in same}), **same}
        svs = {int(s) for c in old_counts.values() for s in c[0]}
        svs |= {int(s) for b in write.blocks.values() for s in b.counts[0]}
        bodies = bodies_of(read, svs, write.mapped)
        new_entries: dict[tuple[int, Coord], Counts] = {}
        touched: set[tuple[int, Coord]] = set()
        for coord, new in write.blocks.items():
            for body, entry in entries_by_body(new.counts, bodies).items():
                new_entries[(body, coord)] = entry
            for body in entries_by_body(old_counts.get(coord, _EMPTY), bodies):
                touched.add((body, coord))
        touched |= set(new_entries)
        return self.entry_ops(read, touched, new_entries)

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
        ikeys = [K.index_key(b, *c) for b, c in pairs]
        stored = read(ikeys)
        before = self.entry_totals([stored.get(k) for k in ikeys])
        ops: Ops = {}
        dvox: dict[int, int] = {}
        dblk: dict[int, int] = {}
        for (body, coord), key, had in zip(pairs, ikeys, before, strict=True):
            entry = new_entries.get((body, coord))
            now = int(entry[1].sum()) if entry is not None else 0
            if entry is not None and now:
                ops[key] = encode_value(self.store, K.encode_pairs(*entry))[0]
            elif key in stored:
                ops[key] = None
            dvox[body] = dvox.get(body, 0) + now - had
            dblk[body] = dblk.get(body, 0) + (1 if now else 0) - (1 if key in stored else 0)
        ops.update(summary_ops(read, dvox, dblk))
        return ops

    def entry_totals(self, values: Sequence[bytes | None]) -> list[int]:
        """Voxels each stored index entry counts (0 for a missing one)."""
        present = [v for v in values if v is not None]
        payloads = iter(decode_values(self.store, present))
        return [0 if v is None else int(K.decode_pairs(next(payloads))["n"].sum()) for v in values]


_EMPTY: Counts = (np.zeros(0, np.uint64), np.zeros(0, np.int64))


def summary_ops(read: Reader, dvox: Mapping[int, int], dblk: Mapping[int, int]) -> Ops:
    """Summary updates of bodies whose voxels or blocks changed by ``dvox`` / ``dblk``."""
    bodies = sorted(b for b in dvox if dvox[b] or dblk.get(b))
    keys = [K.body_key(b) for b in bodies]
    stored = read(keys)
    ops: Ops = {}
    for body, key in zip(bodies, keys, strict=True):
        old = K.decode_summary(stored[key]) if key in stored else K.Summary(0, 0)
        voxels = max(0, old.voxels + dvox[body])
        blocks = max(0, old.blocks + dblk.get(body, 0))
        new = dataclasses.replace(old, voxels=voxels, blocks=blocks)
        ops[key] = K.encode_summary(new) if voxels else None
    return ops


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
