"""Writes of the label index and the mapping: POST mappings, POST index, POST indices.

Each is one plan (versions/heads.py), so blocks, index, summaries and mapping never
disagree.  A plan can only read keys, but these writes need whole bodies (a key
range), so they scan the bodies on the current root first and the plan checks the
scan is still true: every scanned key still there and the body's summary still
counting as many blocks as when scanned.  Every index write goes through
``BlockPlanner.entry_ops``, which moves the block count with the keys, so a body
whose key set changed fails the check; the write is then scanned and planned again.

POST mappings differs from DVID's on purpose: DVID only records the mapping and
leaves its label indices as they were (clients POST indices to match).  Here the
index is kept by body, so mapping a supervoxel to a body moves its index entries
from the body it was in to the new one (merging into entries the target already
has for that block, the supervoxel's count replacing any it held there), and
mapping it to 0 (retired) drops them, as reads then show those voxels as 0.  The
DVID ingest order (POST indices, then POST mappings) gives the same index as DVID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from cas_dvid.datatypes.base import decode_values
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.bodyentries import read_body_keys
from cas_dvid.datatypes.labelmap.labelindex import decode_block_indices
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.datatypes.labelmap.writes import Counts, Ops, raise_to
from cas_dvid.errors import ConflictError, InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.proto.labelops_pb2 import LabelIndex, MappingOps
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Plan, Reader, TreeReader

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
Entry = dict[int, int]  # supervoxel -> voxels in one block
MAX_RESCANS = 50
_MAPPINGS = 'POST on endpoint "mappings"'
_INDICES = 'POST on endpoint "indices"'


class StaleScanError(ConflictError):
    """A body a write had scanned changed before the write landed (it is scanned again)."""


@dataclass(frozen=True, slots=True)
class Scan:
    """The index keys and block counts of some bodies, as seen on one root."""

    keys: dict[int, list[bytes]]
    blocks: dict[int, int]

    def fresh(self, read: Reader) -> dict[bytes, bytes]:
        """Return the scanned keys' current values; raise StaleScanError if a key set moved."""
        bodies = sorted(self.keys)
        summaries = read([K.body_key(b) for b in bodies])
        values = read([k for b in bodies for k in self.keys[b]])
        for b in bodies:
            gone = any(k not in values for k in self.keys[b])
            if gone or _blocks(summaries.get(K.body_key(b))) != self.blocks[b]:
                raise StaleScanError(f"label index of body {b} changed during the write")
        return values


def _blocks(summary: bytes | None) -> int:
    return 0 if summary is None else K.decode_summary(summary).blocks


def mapping_targets(ops: MappingOps) -> dict[int, int]:
    """Supervoxel -> body of a MappingOps, later ops winning as DVID applies them in order."""
    out: dict[int, int] = {}
    for op in ops.mappings:
        for sv in op.original:
            if sv == 0:
                raise InvalidInputError("supervoxel 0 is the background and cannot be mapped")
            out[int(sv)] = int(op.mapped)
    return out


def owners_of(read: Reader, svs: Sequence[int]) -> dict[int, int]:
    """Body of each supervoxel by the mapping: itself when unnamed, 0 when retired."""
    keys = [K.mapping_key(sv) for sv in svs]
    found = read(keys)
    return {
        sv: K.decode_label_value(found[k]) if k in found else sv
        for sv, k in zip(svs, keys, strict=True)
    }


def _entry(payload: bytes) -> Entry:
    pairs = K.decode_pairs(payload)
    return dict(zip(pairs["sv"].tolist(), pairs["n"].tolist(), strict=True))


def _counts(entry: Entry) -> Counts:
    svs = np.fromiter(entry.keys(), np.uint64, len(entry))
    return svs, np.fromiter(entry.values(), np.int64, len(entry))


class BodyWrites:
    """POST mappings / index / indices for one LabelStore."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.store = labels.store
        self.tree = labels.tree

    def _write(self, at: At, inst: Instance, make: Callable[[ObjectId], Plan], what: str) -> None:
        """Scan on the current root, write the plan; scan again while the scan goes stale."""
        for _ in range(MAX_RESCANS):
            try:
                self.labels.versions.write(at, inst, make(self.labels.root(at, inst)), what)
                return
            except StaleScanError:
                continue
        raise ConflictError(f"gave up {what} after {MAX_RESCANS} concurrent changes to its bodies")

    def scan(self, root: ObjectId, bodies: Iterable[int]) -> Scan:
        """Scan the index keys and summaries of ``bodies`` at ``root``."""
        bodies = sorted(set(bodies))
        found = self.tree.get_many(root, [K.body_key(b) for b in bodies])
        return Scan(
            {b: read_body_keys(self.tree, root, b) for b in bodies},
            {b: _blocks(found.get(K.body_key(b))) for b in bodies},
        )

    def _decode(self, values: dict[bytes, bytes], keys: Sequence[bytes]) -> dict[bytes, Entry]:
        present = [k for k in keys if k in values]
        payloads = decode_values(self.store, [values[k] for k in present])
        return {k: _entry(p) for k, p in zip(present, payloads, strict=True)}

    # -- POST mappings ------------------------------------------------------------------

    def post_mappings(self, at: At, inst: Instance, ops: MappingOps) -> int:
        """Apply a MappingOps: set each supervoxel's body, moving its index entries.

        Returns the number of supervoxels named.
        """
        targets = mapping_targets(ops)
        if targets and layout_of(inst).mapped:
            self._write(at, inst, lambda root: self._mapping_plan(root, targets), _MAPPINGS)
        return len(targets)

    def _mapping_plan(self, root: ObjectId, targets: dict[int, int]) -> Plan:
        svs = sorted(targets)
        before = owners_of(TreeReader(self.tree, root), svs)
        moving = {sv for sv in svs if before[sv] != targets[sv]}
        scan = self.scan(root, {before[sv] for sv in moving} - {0})

        def plan(read: Reader) -> Ops:
            if owners_of(read, svs) != before:
                raise StaleScanError("the mapping changed during the write")
            ops = self._move_entries(read, scan, moving, targets)
            for sv in sorted(moving):
                body = targets[sv]
                ops[K.mapping_key(sv)] = None if body == sv else K.encode_label_value(body)
            return ops

        return plan

    def _move_entries(
        self, read: Reader, scan: Scan, moving: set[int], targets: dict[int, int]
    ) -> Ops:
        """Index ops moving ``moving`` supervoxels' entries from their bodies to their targets."""
        values = scan.fresh(read)
        entries = self._decode(values, [k for ks in scan.keys.values() for k in ks])
        state: dict[tuple[int, Coord], Entry] = {}
        arriving: dict[tuple[int, Coord], Entry] = {}
        for key, entry in entries.items():
            leaving = moving.intersection(entry)
            if not leaving:
                continue
            body, coord = K.parse_index_key(key)
            state[(body, coord)] = {sv: n for sv, n in entry.items() if sv not in leaving}
            for sv in leaving:
                if targets[sv]:
                    arriving.setdefault((targets[sv], coord), {})[sv] = entry[sv]
        fresh = [k for k in arriving if k not in state]
        fkeys = [K.index_key(b, *c) for b, c in fresh]
        stored = self._decode(read(fkeys), fkeys)
        for k, key in zip(fresh, fkeys, strict=True):
            state[k] = stored.get(key, {})
        for k, entry in arriving.items():
            state[k].update(entry)
        new = {k: _counts(e) for k, e in state.items() if e}
        return self.labels.planner.entry_ops(read, set(state), new)

    # -- POST index / indices ------------------------------------------------------------

    def post_indices(
        self, at: At, inst: Instance, indices: Sequence[LabelIndex], what: str = _INDICES
    ) -> tuple[int, int]:
        """Store (or, with no blocks, delete) each label's whole index; (added, deleted).

        Raises:
            InvalidInputError: an index for label 0 (nothing is changed).

        """
        by_label: dict[int, LabelIndex] = {}
        for i, idx in enumerate(indices):
            if idx.label == 0:
                raise InvalidInputError(f"index {i} had label 0, which is a reserved label")
            by_label[int(idx.label)] = idx
        if not by_label:
            return 0, 0
        self._write(at, inst, lambda root: self._index_plan(root, by_label), what)
        added = [label for label, idx in by_label.items() if idx.blocks]
        if added and layout_of(inst).kind != "labelblk":
            self.labels.counters(inst).raise_max(max(added))
        return len(added), len(by_label) - len(added)

    def _index_plan(self, root: ObjectId, by_label: dict[int, LabelIndex]) -> Plan:
        scan = self.scan(root, by_label)
        posted = {label: index_entries(idx) for label, idx in by_label.items()}

        def plan(read: Reader) -> Ops:
            scan.fresh(read)
            touched = {K.parse_index_key(k) for keys in scan.keys.values() for k in keys} | {
                (label, c) for label, blocks in posted.items() for c in blocks
            }
            new = {
                (label, c): entry for label, blocks in posted.items() for c, entry in blocks.items()
            }
            ops = self.labels.planner.entry_ops(read, touched, new)
            for label, blocks in posted.items():
                ops[K.body_key(label)] = _summary(by_label[label], blocks)
            added = [label for label, blocks in posted.items() if blocks]
            if added:
                ops[K.MAXLABEL_KEY] = raise_to(max(added))
            return ops

        return plan


def index_entries(idx: LabelIndex) -> dict[Coord, Counts]:
    """Return a posted LabelIndex as block -> supervoxel counts, dropping zeros and sv 0."""
    block_ids = list(idx.blocks)
    coords = decode_block_indices(np.array(block_ids, np.uint64)).tolist()
    out: dict[Coord, Counts] = {}
    for block_id, (x, y, z) in zip(block_ids, coords, strict=True):
        entry = {int(sv): int(n) for sv, n in idx.blocks[block_id].counts.items() if n and sv}
        if entry:
            out[(x, y, z)] = _counts(entry)
    return out


def _summary(idx: LabelIndex, blocks: dict[Coord, Counts]) -> bytes | None:
    """Return the summary value of a posted index (its own last mutation); None if empty."""
    voxels = sum(int(c[1].sum()) for c in blocks.values())
    if not voxels:
        return None
    s = K.Summary(
        voxels, len(blocks), idx.last_mutid, idx.last_mod_time, idx.last_mod_user, idx.last_mod_app
    )
    return K.encode_summary(s)
