"""The mutation log of a labelmap: records in the version's tree, and the reads of them.

Every edit writes its record (DVID's "-complete" JSON) at ``mutation_key(id)`` in
the instance tree, in the same swap as the edit, and sets the version's last
mutation id.  A child version starts from its parent's tree, so it sees the
parent's records; ids at one version strictly increase in apply order
(versions/mutids.py), so:

- ``own``: the records made at this version (DVID's GET mutations) are those
  above the largest last id of its parents: one key range.
- ``since``: every record visible here with an id above N, the cheap poll a
  client uses to stay in sync (DVID pushes these to Kafka).
- ``sequence``: the records of each version from one to a descendant (DVID's
  mutations-range), oldest version first.
- ``history``: the records that touched a label's bodies and supervoxels between
  two versions (DVID's history).

Records are JSON with sorted keys and no spaces, as Go's ``json.Marshal`` of a map
writes them; ``Timestamp`` is in Go's ``time.Time.String`` form, as DVID's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.errors import CorruptObjectError, InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.versions import At, Instance
from cas_dvid.versions.values import decode_values

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Record = dict[str, Any]
_U64_MAX = (1 << 64) - 1


def go_time(t: datetime) -> str:
    """Return ``t`` as Go's ``time.Time.String()`` writes a UTC time (DVID's Timestamp)."""
    frac = f"{t.microsecond * 1000:09d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


def go_now() -> str:
    """Return the current time in Go's ``time.Time.String()`` form."""
    return go_time(datetime.now(UTC))


def encode_record(record: Record) -> bytes:
    """Return a record as Go's json.Marshal writes a map: sorted keys, no spaces."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def parse_record(raw: bytes) -> Record:
    """Return a stored record, parsed; one that does not parse is store damage."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise CorruptObjectError(f"stored mutation record is not a JSON object: {raw[:60]!r}")
    return doc


def last_mutid(labels: LabelStore, root: ObjectId) -> int:
    """Return the last mutation id recorded in a tree (0 if none)."""
    raw = labels.tree.get(root, K.LAST_MUTID_KEY)
    return 0 if raw is None else K.decode_label_value(raw)


class MutationLog:
    """Reads of the mutation records of one LabelStore."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels

    def raw(self, root: ObjectId, after: int, upto: int = _U64_MAX) -> list[bytes]:
        """Return the stored JSON of the records in a tree with ids in ``(after, upto]``."""
        if after >= upto:
            return []
        lo = K.mutation_key(after + 1)
        hi = K.mutation_key(upto)
        items = list(self.labels.tree.range(root, lo, hi, end_inclusive=True))
        return decode_values(self.labels.store, [v for _, v in items])

    def records(self, root: ObjectId, after: int, upto: int = _U64_MAX) -> list[Record]:
        """Return the records in a tree with ids in ``(after, upto]``, parsed, by id."""
        return [parse_record(r) for r in self.raw(root, after, upto)]

    def floor(self, at: At, inst: Instance) -> int:
        """Return the largest last mutation id of the version's parents (0 at a root)."""
        best = 0
        for parent in at.node.parents:
            if parent in at.repo.nodes:
                root = self.labels.root(At(at.repo, parent), inst)
                best = max(best, last_mutid(self.labels, root))
        return best

    def own(self, at: At, inst: Instance) -> list[bytes]:
        """GET mutations: the records of the edits made at this version."""
        return self.raw(self.labels.root(at, inst), self.floor(at, inst))

    def since(self, at: At, inst: Instance, after: int) -> list[bytes]:
        """GET mutations?since=N: every record visible at this version with id > N."""
        return self.raw(self.labels.root(at, inst), after)

    def between(self, at: At, inst: Instance, first: int, last: int) -> list[bytes]:
        """GET mutations-range/{first}/{last}?rangefmt=mutids: ids in ``[first, last]``."""
        if first == 0:
            first = 1
        return self.raw(self.labels.root(at, inst), first - 1, last)

    def sequence(self, begin: At, end: At, inst: Instance) -> list[bytes]:
        """GET mutations-range/{begin}/{end}: own records of each version begin..end."""
        out: list[bytes] = []
        for uuid in version_sequence(begin, end):
            out.extend(self.own(At(end.repo, uuid), inst))
        return out

    def history(self, start: At, end: At, inst: Instance, label: int) -> list[bytes]:
        """GET history/{label}/{from}/{to}: records that touched ``label``'s lineage.

        As DVID: the supervoxels of ``label`` at ``end`` and the bodies that held
        them at ``start``; then every record from ``start`` to ``end`` whose merge
        target, cleave or split origin is one of those bodies, or whose split
        supervoxel is one of those supervoxels.
        """
        body = self.labels.index.body(self.labels.root(end, inst), label)
        if body is None:
            raise InvalidInputError(f"label {label} has no voxels at version {end.uuid}")
        svs = {int(s) for s in body.supervoxels().tolist()}
        lineage = _lineage(self.records(self.labels.root(end, inst), 0), svs)
        orig = set(self.labels.index.mapping(start, inst, sorted(lineage), nolookup=False))
        orig.discard(0)
        orig.add(label)
        return [
            raw
            for raw in self.sequence(start, end, inst)
            if _touches(parse_record(raw), orig, lineage)
        ]


def _lineage(records: Sequence[Record], svs: set[int]) -> set[int]:
    """Return ``svs`` and every supervoxel they were split from, following the log back."""
    out = set(svs)
    for record in reversed(records):
        if record.get("Action") == "split-supervoxel-complete":
            if {record.get("SplitSupervoxel"), record.get("RemainSupervoxel")} & out:
                out.add(int(record["Supervoxel"]))
        elif record.get("Action") == "split-complete":
            for old, pair in (record.get("SVSplits") or {}).items():
                if {pair.get("Split"), pair.get("Remain")} & out:
                    out.add(int(old))
    return out


def _touches(record: Record, bodies: set[int], svs: set[int]) -> bool:
    action = record.get("Action")
    if action in ("merge-complete", "split-complete"):
        return record.get("Target") in bodies or bool(set(record.get("Labels") or ()) & bodies)
    if action == "cleave-complete":
        return record.get("OrigLabel") in bodies or record.get("CleavedLabel") in bodies
    if action == "renumber-complete":
        return record.get("OrigLabel") in bodies or record.get("NewLabel") in bodies
    if action == "split-supervoxel-complete":
        return record.get("Supervoxel") in svs
    return False


def version_sequence(begin: At, end: At) -> Iterator[str]:
    """Yield the versions from ``begin`` down to its descendant ``end``, oldest first.

    Follows ``end``'s first parents back to ``begin`` (DVID's GetVersionSequence);
    a 400 when ``begin`` is not an ancestor of ``end``.
    """
    chain = [end.uuid]
    nodes = end.repo.nodes
    while chain[-1] != begin.uuid:
        parents = [p for p in nodes[chain[-1]].parents if p in nodes]
        if not parents:
            raise InvalidInputError(
                f"version {begin.uuid} is not an ancestor of version {end.uuid}"
            )
        ancestors = [p for p in parents if begin.uuid in end.repo.ancestors(p)]
        chain.append((ancestors or parents)[0])
    return reversed(chain)
