"""Splits: a supervoxel in two (split-supervoxel), a body in two (split), as plans.

Both rewrite only the scale-0 blocks the split touches and the lower-res blocks
above them; index entries, summaries, the mapping and the log record change in the
same swap (mutations.py runs them).

- ``split-supervoxel/{sv}``: the voxels of ``sv`` inside the posted sparse volume
  get a new supervoxel id (``split``), the rest another (``remain``), both in
  ``sv``'s body; ``sv`` is retired (mapped to 0), as DVID does.  Voxels of the
  volume that are not ``sv`` are left alone, as DVID's block relabel leaves them;
  the sizes reported are the voxels really relabelled (DVID reports the volume's).
- ``split/{label}``: the body's voxels inside the sparse volume become a new body.
  A supervoxel wholly inside moves to the new body by the mapping alone; one cut by
  the volume is split into two new supervoxels, one per body.  DEVIATION: DVID
  splits every touched supervoxel in two, which leaves supervoxels of 0 voxels in
  the mapping; this does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.bodyentries import Body
from cas_dvid.datatypes.labelmap.codec import decode_block
from cas_dvid.datatypes.labelmap.layout import LabelLayout, layout_of
from cas_dvid.datatypes.labelmap.mutations import ModInfo, Mutations, check_label
from cas_dvid.datatypes.labelmap.rle import parse_rles, partition_runs, runs_mask
from cas_dvid.datatypes.labelmap.writes import Ops, raise_to
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Kind
from cas_dvid.objects.ids import to_hex
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Reader
from cas_dvid.versions.values import blob_value

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
Labels = NDArray[np.uint64]
Masks = dict[Coord, NDArray[np.bool_]]


@dataclass(slots=True)
class SplitResult:
    """What a split made: the new labels and the mutation id."""

    mutid: int = 0
    split: int = 0
    remain: int = 0


class Splits:
    """The splits of one LabelStore."""

    def __init__(self, labels: LabelStore, mutations: Mutations) -> None:
        self.labels = labels
        self.mutations = mutations
        self.store = labels.store

    # -- the edits ---------------------------------------------------------------------

    def split_supervoxel(
        self,
        at: At,
        inst: Instance,
        sv: int,
        rles: bytes,
        info: ModInfo,
        *,
        split: int = 0,
        remain: int = 0,
        downres: bool = True,
    ) -> SplitResult:
        """POST split-supervoxel/{sv}: return (split id, remain id, mutation id)."""
        check_label(sv, "split")
        self.mutations.check_editable(at, inst, "split-supervoxel")
        lay = layout_of(inst)
        masks = self._masks(lay, rles)
        if not masks:
            raise InvalidInputError(
                f"split on supervoxel {sv} has zero voxels in split sparse volume"
            )
        s, r = self._labels(inst, split, remain)
        ref = to_hex(self.store.put(Kind.BLOB, rles))
        out = SplitResult(split=s, remain=r)

        def build(read: Reader, mid: int) -> tuple[Ops, dict[str, Any]]:
            out.mutid = mid
            return self._sv_split_ops(read, lay, sv, masks, s, r, mid, info, downres, ref)

        self.mutations.run(at, inst, "split-supervoxel", info, build)
        return out

    def split_body(
        self, at: At, inst: Instance, label: int, rles: bytes, info: ModInfo
    ) -> SplitResult:
        """POST split/{label}: the body's voxels in the volume become a new body."""
        check_label(label, "split")
        self.mutations.check_editable(at, inst, "split")
        lay = layout_of(inst)
        masks = self._masks(lay, rles)
        if not masks:
            raise InvalidInputError("bad split since split volume was zero voxels")
        ref = to_hex(self.store.put(Kind.BLOB, rles))
        out = SplitResult()
        counters = self.labels.counters(inst)
        reserved: list[int] = []

        def fresh(n: int) -> list[int]:
            """Labels for this split: reserved once, reused when the plan reruns."""
            while len(reserved) < n:
                start, end = counters.reserve(n - len(reserved))
                reserved.extend(range(start, end + 1))
            return reserved[:n]

        def build(read: Reader, mid: int) -> tuple[Ops, dict[str, Any]]:
            out.mutid = mid
            ops, fields = self._body_split_ops(read, lay, label, masks, fresh, mid, info, ref)
            out.split = int(fields["NewLabel"])
            return ops, fields

        self.mutations.run(at, inst, "split", info, build)
        return out

    # -- shared parts -------------------------------------------------------------------

    def _labels(self, inst: Instance, split: int, remain: int) -> tuple[int, int]:
        """Return the split and remain ids: as given (raising the max), else reserved."""
        counters = self.labels.counters(inst)
        wanted = [x for x in (split, remain) if not x]
        fresh = []
        if wanted:
            start, end = counters.reserve(len(wanted))
            fresh = list(range(start, end + 1))
        for given in (split, remain):
            if given:
                counters.raise_max(given)
        s = split or fresh.pop(0)
        r = remain or fresh.pop(0)
        if s == r:
            raise InvalidInputError(f"split and remain supervoxels must differ, both are {s}")
        return s, r

    def _masks(self, lay: LabelLayout, rles: bytes) -> Masks:
        """Return the posted sparse volume as one boolean mask per block it covers."""
        runs = parse_rles(rles)
        b = lay.block
        return {
            c: runs_mask(r, (c[0] * b.x, c[1] * b.y, c[2] * b.z), lay.block_shape)
            for c, r in partition_runs(runs, lay.block_shape).items()
        }

    def _blocks(self, read: Reader, lay: LabelLayout, coords: list[Coord]) -> dict[Coord, Labels]:
        """Return the stored scale-0 blocks among ``coords``, decoded (writable copies)."""
        keys = K.block_keys_of(coords)
        found = read(keys)
        present = [(c, found[k]) for c, k in zip(coords, keys, strict=True) if k in found]
        blobs = self.labels.blobs([v for _, v in present])
        return {
            c: np.array(decode_block(b, lay.block_shape))
            for (c, _), b in zip(present, blobs, strict=True)
        }

    def _write_blocks(
        self, read: Reader, lay: LabelLayout, arrays: dict[Coord, Labels], downres: bool
    ) -> Ops:
        """Return block ops for rewritten scale-0 arrays, with their lower scales (or marks)."""
        writer = self.labels.writer
        ops: Ops = {}
        for (x, y, z), new in zip(arrays, writer.encode(list(arrays.values())), strict=True):
            ops[self.labels.block_key((x, y, z), 0)] = blob_value(new.oid)
        if downres:
            ops.update(writer.pyramid_plan(lay, arrays, 0)(read))
        else:
            ops.update(writer.stale_marks(lay, list(arrays), 0))
        return ops

    # -- split-supervoxel ------------------------------------------------------------------

    def _sv_split_ops(
        self,
        read: Reader,
        lay: LabelLayout,
        sv: int,
        masks: Masks,
        split: int,
        remain: int,
        mid: int,
        info: ModInfo,
        downres: bool,
        ref: str,
    ) -> tuple[Ops, dict[str, Any]]:
        mapped = read([K.mapping_key(sv)]).get(K.mapping_key(sv))
        owner = sv if mapped is None else K.decode_label_value(mapped)
        if owner == 0:
            raise InvalidInputError(
                f"cannot get label for supervoxel {sv}, which has been split and doesn't exist"
                " anymore"
            )
        body = self.mutations.body(read, owner)
        part = None if body is None else body.only(sv)
        if body is None or part is None:
            raise InvalidInputError(f"unable to split supervoxel {sv}: missing label index {owner}")
        for label in (split, remain):
            if label != owner and self.mutations.body(read, label) is not None:
                raise InvalidInputError(f"split label {label} is already a body")
        entries = dict(body.per_block())
        coords = [(int(c[0]), int(c[1]), int(c[2])) for c in part.coords]
        arrays = self._blocks(read, lay, coords)
        new_counts: dict[Coord, dict[int, int]] = {}
        split_size = remain_size = 0
        for coord, arr in arrays.items():
            is_sv = arr == np.uint64(sv)
            cut = masks.get(coord)
            inside = is_sv & cut if cut is not None else np.zeros_like(is_sv)
            n_in = int(inside.sum())
            n_out = int(is_sv.sum()) - n_in
            arr[inside] = split
            arr[is_sv & ~inside] = remain
            split_size, remain_size = split_size + n_in, remain_size + n_out
            new_counts[coord] = {k: v for k, v in ((split, n_in), (remain, n_out)) if v}
        if split_size == 0:
            raise InvalidInputError(
                f"split on supervoxel {sv} has zero voxels in split sparse volume"
            )
        if remain_size == 0:
            raise InvalidInputError(
                f"split on supervoxel {sv} was given split volume of {split_size} >= "
                f"{split_size} of supervoxel"
            )
        ops = self._write_blocks(read, lay, arrays, downres)
        for coord, counts in new_counts.items():
            entry = {s: n for s, n in entries[coord].items() if s != sv}
            entry.update(counts)
            ops[K.index_key(owner, *coord)] = self.mutations.entry(entry)
        for new in (split, remain):
            ops[K.mapping_key(new)] = None if new == owner else K.encode_label_value(owner)
        ops[K.mapping_key(sv)] = K.encode_label_value(0)
        ops[K.body_key(owner)] = self.mutations.summary_value(body.voxels, len(entries), mid, info)
        ops[K.MAXLABEL_KEY] = raise_to(max(split, remain))
        fields = {
            "Supervoxel": sv,
            "Body": owner,
            "SplitSupervoxel": split,
            "RemainSupervoxel": remain,
            "Split": ref,
            "SplitSize": split_size,
            "RemainSize": remain_size,
        }
        return ops, fields

    # -- split of a body -------------------------------------------------------------------

    def _body_split_ops(
        self,
        read: Reader,
        lay: LabelLayout,
        label: int,
        masks: Masks,
        fresh: Any,
        mid: int,
        info: ModInfo,
        ref: str,
    ) -> tuple[Ops, dict[str, Any]]:
        body = self.mutations.body(read, label)
        if body is None:
            raise InvalidInputError(f"unable to modify split index: missing label {label}")
        entries = dict(body.per_block())
        inside = self._blocks(read, lay, [c for c in masks if c in entries])
        cut: dict[int, int] = {}  # voxels of each supervoxel inside the volume
        for coord, arr in inside.items():
            picked = arr[masks[coord]]
            picked = picked[picked != 0]
            stray = picked[~np.isin(picked, np.fromiter(entries[coord], np.uint64))]
            if len(stray):
                raise InvalidInputError(
                    f"supervoxel {int(stray[0])} was part of split volume yet was not part of"
                    f" body label {label}"
                )
            for sv, n in zip(*np.unique(picked, return_counts=True), strict=True):
                cut[int(sv)] = cut.get(int(sv), 0) + int(n)
        split_size = sum(cut.values())
        if split_size == 0:
            raise InvalidInputError("bad split since split volume was zero voxels")
        if split_size >= body.voxels:
            raise InvalidInputError(
                f"split volume of {split_size} voxels >= {body.voxels} of label {label}"
            )
        svs, sizes = body.sv_counts()
        size_of = dict(zip(svs.tolist(), sizes.tolist(), strict=True))
        whole = {sv for sv, n in cut.items() if n == size_of[sv]}
        partial = sorted(set(cut) - whole)
        ids = fresh(1 + 2 * len(partial))
        new = ids[0]
        pairs = {sv: (ids[1 + 2 * i], ids[2 + 2 * i]) for i, sv in enumerate(partial)}
        ops = self._apply_body_split(read, lay, label, new, entries, masks, whole, pairs, mid, info)
        fields = {
            "Target": label,
            "NewLabel": new,
            "Split": ref,
            "SVSplits": {str(sv): {"Split": s, "Remain": r} for sv, (s, r) in pairs.items()},
        }
        return ops, fields

    def _apply_body_split(
        self,
        read: Reader,
        lay: LabelLayout,
        label: int,
        new: int,
        entries: dict[Coord, dict[int, int]],
        masks: Masks,
        whole: set[int],
        pairs: dict[int, tuple[int, int]],
        mid: int,
        info: ModInfo,
    ) -> Ops:
        """Return the ops of a body split: relabelled blocks, both bodies' index and map."""
        rewrite: dict[Coord, Labels] = {}
        if pairs:  # every block of a cut supervoxel changes: its remain part is renamed too
            cut_blocks = [c for c, e in entries.items() if e.keys() & pairs.keys()]
            rewrite = self._blocks(read, lay, cut_blocks)
            for coord, arr in rewrite.items():
                mask = masks.get(coord)
                for sv, (s, r) in pairs.items():
                    is_sv = arr == np.uint64(sv)
                    inside = is_sv & mask if mask is not None else np.zeros_like(is_sv)
                    arr[inside] = s
                    arr[is_sv & ~inside] = r
        ops = self._write_blocks(read, lay, rewrite, True) if rewrite else {}
        moved = whole | {s for s, _ in pairs.values()}
        totals = [0, 0, 0, 0]  # voxels and blocks staying, voxels and blocks moving
        for coord, entry in entries.items():
            here = _recount(entry, rewrite.get(coord), pairs)
            stay = {s: n for s, n in here.items() if s not in moved}
            move = {s: n for s, n in here.items() if s in moved}
            ops[K.index_key(label, *coord)] = self.mutations.entry(stay) if stay else None
            if move:
                ops[K.index_key(new, *coord)] = self.mutations.entry(move)
            totals[0] += sum(stay.values())
            totals[1] += bool(stay)
            totals[2] += sum(move.values())
            totals[3] += bool(move)
        for sv in whole:
            ops[K.mapping_key(sv)] = None if sv == new else K.encode_label_value(new)
        for sv, (s, r) in pairs.items():
            ops[K.mapping_key(sv)] = K.encode_label_value(0)
            ops[K.mapping_key(s)] = K.encode_label_value(new)
            ops[K.mapping_key(r)] = None if r == label else K.encode_label_value(label)
        ops[K.body_key(label)] = self.mutations.summary_value(totals[0], totals[1], mid, info)
        ops[K.body_key(new)] = self.mutations.summary_value(totals[2], totals[3], mid, info)
        ops[K.MAXLABEL_KEY] = raise_to(max([new, *(x for p in pairs.values() for x in p)]))
        return ops


def _recount(
    entry: dict[int, int], arr: Labels | None, pairs: dict[int, tuple[int, int]]
) -> dict[int, int]:
    """Return a block's index entry after a body split renamed its cut supervoxels."""
    if arr is None or not entry.keys() & pairs.keys():
        return dict(entry)
    out = {s: n for s, n in entry.items() if s not in pairs}
    for sv, (s, r) in pairs.items():
        if sv in entry:
            for new in (s, r):
                n = int(np.count_nonzero(arr == np.uint64(new)))
                if n:
                    out[new] = n
    return out


__all__ = ["Body", "SplitResult", "Splits"]
