"""Proofreading edits of a labelmap: merge, cleave and renumber bodies, as plans.

Each edit is one plan (versions/heads.py): it reads the bodies it changes (one key
range each) from the tree it lands on and returns, in one batch, the new label index
entries, the mapping entries of the supervoxels that move, the body summaries (with
DVID's lastmod), the mutation's record in the log (mutlog.py), and the version's
last mutation id.  No voxel block is touched.  After a lost swap the plan runs again
on the winner's root, so two proofreaders editing different bodies both land, and an
edit of a body another edit just changed sees that change (and fails cleanly if the
body is gone) instead of acting on what it read before.  No lock is held.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.bodyentries import Body, make_body
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.datatypes.labelmap.mutlog import encode_record, go_now
from cas_dvid.datatypes.labelmap.writes import Ops, raise_to
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance, now
from cas_dvid.versions.heads import Reader
from cas_dvid.versions.mutids import MutationIdPool
from cas_dvid.versions.values import encode_value

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
Counts = dict[int, int]
Build = Callable[[Reader, int], tuple[Ops, dict[str, Any]]]
"""An edit's ops and the fields of its log record, from the tree and its mutation id."""


@dataclass(frozen=True, slots=True)
class ModInfo:
    """Who made an edit (DVID's ``u=`` and ``app=``) and when (lastmod and log forms)."""

    user: str = ""
    app: str = ""
    time: str = ""
    stamp: str = ""

    def stamped(self) -> ModInfo:
        """Return this with the current time, in both forms."""
        return ModInfo(self.user, self.app, self.time or now(), self.stamp or go_now())


class Mutations:
    """The proofreading edits of one LabelStore."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.store = labels.store
        self.versions = labels.versions
        self.ids = MutationIdPool(labels.store.backend)

    # -- the edits ---------------------------------------------------------------------

    def merge(
        self, at: At, inst: Instance, target: int, others: Sequence[int], info: ModInfo
    ) -> int:
        """POST merge ``[target, other...]``: the others' supervoxels join ``target``."""
        merged = merge_set(target, others)

        def build(read: Reader, mid: int) -> tuple[Ops, dict[str, Any]]:
            return self._merge_ops(read, mid, target, merged, info)

        return self.run(at, inst, "merge", info, build)

    def renumber(self, at: At, inst: Instance, new: int, old: int, info: ModInfo) -> int:
        """POST renumber ``[new, old]``: body ``old`` takes the free label ``new``."""
        check_label(new, "renumber")
        check_label(old, "renumber")

        def build(read: Reader, mid: int) -> tuple[Ops, dict[str, Any]]:
            return self._renumber_ops(read, mid, new, old, info)

        self.check_editable(at, inst, "renumber")
        self.labels.counters(inst).raise_max(new)  # first: no reservation hands ``new`` out
        return self.run(at, inst, "renumber", info, build)

    def cleave(
        self, at: At, inst: Instance, label: int, svs: Sequence[int], info: ModInfo
    ) -> tuple[int, int]:
        """POST cleave/{label} ``[sv...]``: those supervoxels become a new body.

        Returns (the new body's label, the mutation id).  The label is reserved
        repo-wide before the plan runs, so a retried plan reuses it.
        """
        check_label(label, "cleave")
        if not svs:
            raise InvalidInputError("no cleave supervoxels JSON was POSTed")
        self.check_editable(at, inst, "cleave")
        new = self.labels.counters(inst).reserve(1)[0]
        cleave = [int(s) for s in svs]

        def build(read: Reader, mid: int) -> tuple[Ops, dict[str, Any]]:
            return self._cleave_ops(read, mid, inst, label, cleave, new, info)

        return new, self.run(at, inst, "cleave", info, build)

    # -- running an edit ---------------------------------------------------------------

    def check_editable(self, at: At, inst: Instance, action: str) -> None:
        """Refuse edits of instances without a mapping and index, and of locked nodes."""
        lay = layout_of(inst)
        if not lay.mapped or not lay.indexed:
            raise InvalidInputError(
                f"{action} needs a labelmap with IndexedLabels (not {inst.typename})"
            )
        self.versions.check_writable(at, inst, f'POST on endpoint "{action}"')

    def run(self, at: At, inst: Instance, action: str, info: ModInfo, build: Build) -> int:
        """Apply one edit as a plan with its log record; return its mutation id."""
        self.check_editable(at, inst, action)
        info = info.stamped()
        ids = self.ids.of(at.repo.root)
        used: list[int] = []

        def plan(read: Reader) -> Ops:
            last = read([K.LAST_MUTID_KEY]).get(K.LAST_MUTID_KEY)
            mid = ids.next_above(0 if last is None else K.decode_label_value(last))
            ops, fields = build(read, mid)
            record: dict[str, Any] = {
                "Action": f"{action}-complete",
                "MutationID": mid,
                "UUID": at.uuid,
                **fields,
                "Timestamp": info.stamp,
            }
            if info.user:
                record["User"] = info.user
            if info.app:
                record["App"] = info.app
            ops[K.mutation_key(mid)] = encode_value(self.store, encode_record(record))[0]
            ops[K.LAST_MUTID_KEY] = K.encode_label_value(mid)
            used[:] = [mid]
            return ops

        self.versions.write(at, inst, plan, f'POST on endpoint "{action}"')
        return used[0]

    def body(self, read: Reader, label: int) -> Body | None:
        """Return the index entries of ``label`` as the plan sees them."""
        lo, hi = K.index_range(label)
        items = read.range(lo, hi)
        return make_body(self.store, label, items) if items else None

    def summary(self, read: Reader, label: int) -> K.Summary | None:
        """Return the summary of body ``label``, or None."""
        raw = read([K.body_key(label)]).get(K.body_key(label))
        return None if raw is None else K.decode_summary(raw)

    def entry(self, counts: Counts) -> bytes:
        """Return the tree value of an index entry holding ``counts`` (sv -> voxels)."""
        svs = np.fromiter(counts, np.uint64, len(counts))
        n = np.fromiter(counts.values(), np.int64, len(counts))
        return encode_value(self.store, K.encode_pairs(svs, n))[0]

    def summary_value(self, voxels: int, blocks: int, mid: int, info: ModInfo) -> bytes:
        """Return a body summary with this edit as its last modification."""
        return K.encode_summary(K.Summary(voxels, blocks, mid, info.time, info.user, info.app))

    # -- plans -------------------------------------------------------------------------

    def _merge_ops(
        self, read: Reader, mid: int, target: int, merged: list[int], info: ModInfo
    ) -> tuple[Ops, dict[str, Any]]:
        bodies = []
        for label in merged:
            b = self.body(read, label)
            if b is None:
                raise InvalidInputError(f"can't merge non-existent label {label}")
            bodies.append(b)
        tbody = self.body(read, target)
        if tbody is None:
            raise InvalidInputError(f"can't merge into a non-existent label {target}")
        ops: Ops = {}
        to_target = K.encode_label_value(target)
        for b in bodies:
            svs = b.supervoxels()
            ops.update(dict.fromkeys(b.keys))
            ops.update(dict.fromkeys(K.mapping_keys(svs), to_target))
            if (svs == np.uint64(target)).any():
                ops[K.mapping_key(target)] = None  # (supervoxel ``target`` maps to itself)
            ops[K.body_key(b.label)] = None
        coords, entries = merged_entries(tbody, bodies)
        for (x, y, z), payload in zip(coords.tolist(), entries, strict=True):
            ops[K.index_key(target, x, y, z)] = encode_value(self.store, payload)[0]
        voxels = tbody.voxels + sum(b.voxels for b in bodies)
        blocks = len(np.unique(_rows(np.concatenate([x.coords for x in (tbody, *bodies)]))))
        ops[K.body_key(target)] = self.summary_value(voxels, blocks, mid, info)
        return ops, {"Target": target, "Labels": merged}

    def _renumber_ops(
        self, read: Reader, mid: int, new: int, old: int, info: ModInfo
    ) -> tuple[Ops, dict[str, Any]]:
        if self.summary(read, new) is not None or self.body(read, new) is not None:
            raise InvalidInputError(f"target label for renumber ({new}) already exists in mapping")
        body = self.body(read, old)
        if body is None:
            raise InvalidInputError(f"can't renumber non-existent body with label {old}")
        ops: Ops = {K.body_key(old): None}
        blocks = dict(body.per_block())
        for coord, counts in blocks.items():
            ops[K.index_key(old, *coord)] = None
            ops[K.index_key(new, *coord)] = self.entry(counts)
        for sv in body.supervoxels().tolist():
            ops[K.mapping_key(sv)] = None if sv == new else K.encode_label_value(new)
        ops[K.body_key(new)] = self.summary_value(body.voxels, len(blocks), mid, info)
        ops[K.MAXLABEL_KEY] = raise_to(new)
        return ops, {"NewLabel": new, "OrigLabel": old}

    def _cleave_ops(
        self,
        read: Reader,
        mid: int,
        inst: Instance,
        label: int,
        svs: list[int],
        new: int,
        info: ModInfo,
    ) -> tuple[Ops, dict[str, Any]]:
        body = self.body(read, label)
        if body is None:
            raise InvalidInputError(f"cannot cleave non-existent label {label}")
        have = set(body.supervoxels().tolist())
        cleave = set(svs)
        for sv in svs:
            if sv not in have:
                raise InvalidInputError(
                    f"cannot cleave supervoxel {sv}, which does not exist in label {label}"
                    f" ({inst.name})"
                )
        if have <= cleave:
            raise InvalidInputError(f"cannot cleave all supervoxels from the label {label}")
        ops: Ops = {}
        kept_vox = cleaved_vox = kept_blocks = cleaved_blocks = 0
        for coord, counts in body.per_block():
            gone = {s: n for s, n in counts.items() if s in cleave}
            kept = {s: n for s, n in counts.items() if s not in cleave}
            if gone:
                ops[K.index_key(new, *coord)] = self.entry(gone)
                ops[K.index_key(label, *coord)] = self.entry(kept) if kept else None
                cleaved_vox += sum(gone.values())
                cleaved_blocks += 1
            kept_vox += sum(kept.values())
            kept_blocks += 1 if kept else 0
        for sv in cleave:
            ops[K.mapping_key(sv)] = None if sv == new else K.encode_label_value(new)
        ops[K.body_key(label)] = self.summary_value(kept_vox, kept_blocks, mid, info)
        ops[K.body_key(new)] = self.summary_value(cleaved_vox, cleaved_blocks, mid, info)
        ops[K.MAXLABEL_KEY] = raise_to(new)
        fields = {
            "OrigLabel": label,
            "CleavedLabel": new,
            "CleavedSupervoxels": svs,
            "CleavedSize": cleaved_vox,
            "RemainSize": kept_vox,
        }
        return ops, fields


def _rows(coords: NDArray[np.int64]) -> NDArray[np.void]:
    """Return each (x, y, z) row of ``coords`` as one comparable value."""
    c = np.ascontiguousarray(coords, np.int64)
    return c.view(np.dtype((np.void, 24))).ravel()


def merged_entries(target: Body, merged: Sequence[Body]) -> tuple[NDArray[np.int64], list[bytes]]:
    """Return the target's new index entries: the blocks the merged bodies touch.

    PERF: one sort of every (block, supervoxel, count) row instead of a dict per
    block; entries are slices of one pairs buffer, sorted by supervoxel as
    ``keys.encode_pairs`` writes them (a merge of two ~1000-block bodies is ~10 ms
    less).  The target's blocks the merge does not touch keep their entries.
    """
    bodies = (target, *merged)
    coords = np.concatenate([b.coords[b.block] for b in bodies])
    svs = np.concatenate([b.svs for b in bodies])
    counts = np.concatenate([b.counts for b in bodies])
    uniq, inv = np.unique(_rows(coords), return_inverse=True)
    inv = inv.ravel()
    touched = np.zeros(len(uniq), bool)
    touched[inv[len(target.svs) :]] = True
    keep = touched[inv]
    inv, svs, counts = inv[keep], svs[keep], counts[keep]
    order = np.lexsort((svs, inv))
    inv = inv[order]
    pairs = np.empty(len(order), K.PAIR)
    pairs["sv"], pairs["n"] = svs[order], counts[order]
    buf = pairs.tobytes()
    which = np.flatnonzero(touched)
    bounds = np.searchsorted(inv, np.append(which, len(uniq))) * K.PAIR.itemsize
    out = [buf[bounds[i] : bounds[i + 1]] for i in range(len(which))]
    return uniq[which].view(np.int64).reshape(-1, 3), out


def check_label(label: int, what: str) -> None:
    """Refuse label 0 (the background) as the subject of an edit."""
    if label == 0:
        raise InvalidInputError(
            f"Label 0 is protected background value and cannot be used as {what} target"
        )


def merge_set(target: int, others: Sequence[int]) -> list[int]:
    """Return the labels merged into ``target``, checked as DVID checks them, ascending."""
    if not others:
        raise InvalidInputError(
            f"invalid merge tuple [{target}], need at least target and to-merge labels"
        )
    merged = sorted({int(o) for o in others})
    if target == 0 or 0 in merged:
        raise InvalidInputError(
            f"invalid merge tuple {_go_list([target, *others])}, cannot contain background label 0"
        )
    if target in merged:
        raise InvalidInputError(f"can't merge label {target} with itself")
    return merged


def _go_list(values: Sequence[int]) -> str:
    """Return a list as Go's %v prints it: ``[1 2 3]``."""
    return "[" + " ".join(str(v) for v in values) + "]"
