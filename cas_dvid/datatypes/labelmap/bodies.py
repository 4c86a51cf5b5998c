"""What a labelmap's label index answers: mappings, supervoxels, sizes, last changes, indices.

Everything here reads the body summaries (``0xBD``: one key per body), one body's
index key range (``0xBB``) or the mapping (``0xBC``), never the blocks; the sparse
volumes, which do read blocks, are in ``bodyvol``, the writes in ``bodywrites``.

DVID's rules kept (datatype/labelmap/labelidx.go):

- a label is a body unless ``supervoxels=true``: then it is the supervoxel, looked
  up through the mapping, and a retired supervoxel (mapped to 0) is a 400;
- a body without index entries does not exist: the handler answers 404;
- ``mapping`` checks supervoxels the mapping does not name against the index of the
  body they would be (themselves), unless ``nolookup=true``: absent ones map to 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import lz4.block
import numpy as np

from cas_dvid.datatypes.base import decode_values
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.bodyentries import Body, read_body
from cas_dvid.datatypes.labelmap.bodyvol import BodyVolumes
from cas_dvid.datatypes.labelmap.bodywrites import BodyWrites
from cas_dvid.datatypes.labelmap.labelindex import encode_block_indices
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.proto.labelops_pb2 import LabelIndex, LabelIndices
from cas_dvid.trees.keys import prefix_range
from cas_dvid.versions import At, Instance

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

MAX_INDICES = 50_000
MAX_LISTED = 10_000_000
_LZ4_VALUE = b"\x80"  # DVID's serialization header byte: LZ4, no checksum


class BodyIndex:
    """The label index answers of one LabelStore (``LabelStore.index``)."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.tree = labels.tree
        self.store = labels.store
        self.volumes = BodyVolumes(self)
        self.writes = BodyWrites(labels)

    # -- one body ----------------------------------------------------------------------

    def body(self, root: ObjectId, label: int) -> Body | None:
        """Return the index entries of body ``label``; None when it has none."""
        return read_body(self.tree, self.store, root, label)

    def summary(self, root: ObjectId, label: int) -> K.Summary | None:
        """Return the summary of body ``label`` (voxels, blocks, last change); None if absent."""
        raw = self.tree.get(root, K.body_key(label))
        return None if raw is None else K.decode_summary(raw)

    def body_of(self, root: ObjectId, inst: Instance, sv: int) -> int:
        """Return the body supervoxel ``sv`` belongs to (DVID's GetLabelIndex, isSupervoxel).

        Raises:
            InvalidInputError: the supervoxel was retired (split; mapped to 0).

        """
        if not layout_of(inst).mapped:
            return sv
        raw = self.tree.get(root, K.mapping_key(sv))
        if raw is None:
            return sv
        body = K.decode_label_value(raw)
        if body == 0:
            raise InvalidInputError(
                f"cannot get label for supervoxel {sv}, which has been split and doesn't "
                "exist anymore"
            )
        return body

    def resolve(self, root: ObjectId, inst: Instance, label: int, supervoxels: bool) -> Body | None:
        """Return the entries a request names: a body's, or one supervoxel's (None if absent)."""
        if not supervoxels:
            return self.body(root, label)
        body = self.body(root, self.body_of(root, inst, label))
        return None if body is None else body.only(label)

    # -- sizes and supervoxels --------------------------------------------------------

    def supervoxels(self, at: At, inst: Instance, label: int) -> list[int] | None:
        """GET supervoxels/{label}: the body's supervoxels, ascending; None if absent."""
        body = self.body(self.labels.root(at, inst), label)
        return None if body is None else body.supervoxels().tolist()

    def size(self, at: At, inst: Instance, label: int, supervoxels: bool) -> int:
        """GET size/{label}: voxels of a body (from its summary) or supervoxel; 0 if absent."""
        root = self.labels.root(at, inst)
        if not supervoxels:
            s = self.summary(root, label)
            return 0 if s is None else s.voxels
        body = self.body(root, self.body_of(root, inst, label))
        return 0 if body is None else body.count_of(label)

    def sizes(self, at: At, inst: Instance, labels: Sequence[int], supervoxels: bool) -> list[int]:
        """GET sizes: voxels of each label, 0 for absent ones (retired supervoxels too)."""
        root = self.labels.root(at, inst)
        if not supervoxels:
            keys = [K.body_key(b) for b in labels]
            found = self.tree.get_many(root, keys)
            return [K.decode_summary(found[k]).voxels if k in found else 0 for k in keys]
        owners = self._owners(root, inst, labels)
        counts: dict[tuple[int, int], int] = {}
        for body_label in sorted(set(owners.values()) - {0}):
            body = self.body(root, body_label)
            if body is not None:
                svs, sums = body.sv_counts()
                counts.update(
                    ((body_label, s), n) for s, n in zip(svs.tolist(), sums.tolist(), strict=True)
                )
        return [counts.get((owners[sv], sv), 0) for sv in labels]

    def _owners(self, root: ObjectId, inst: Instance, svs: Sequence[int]) -> dict[int, int]:
        """Body of each supervoxel by the mapping alone (0 for retired ones)."""
        uniq = sorted(set(svs))
        if not layout_of(inst).mapped:
            return {sv: sv for sv in uniq}
        found = self.tree.get_many(root, [K.mapping_key(sv) for sv in uniq])
        out = {}
        for sv in uniq:
            raw = found.get(K.mapping_key(sv))
            out[sv] = sv if raw is None else K.decode_label_value(raw)
        return out

    def supervoxel_sizes(self, at: At, inst: Instance, label: int) -> tuple[list[int], list[int]]:
        """GET supervoxel-sizes/{label}: (supervoxels ascending, voxels); ([], []) if absent."""
        body = self.body(self.labels.root(at, inst), label)
        if body is None:
            return [], []
        svs, sums = body.sv_counts()
        return svs.tolist(), sums.tolist()

    def lastmod(self, at: At, inst: Instance, label: int) -> K.Summary | None:
        """GET lastmod/{label}: the body's summary (its last mutation); None if absent."""
        return self.summary(self.labels.root(at, inst), label)

    def listlabels(
        self, at: At, inst: Instance, start: int, number: int, sizes: bool
    ) -> Iterator[tuple[int, int]]:
        """GET listlabels: (label, voxels) of bodies from ``start`` on, at most ``number``."""
        if number == 0:
            return
        root = self.labels.root(at, inst)
        hi = prefix_range(K.BODY_CLASS)[1]
        limit = min(number, MAX_LISTED)
        for i, (key, value) in enumerate(self.tree.range(root, K.body_key(start), hi)):
            if i >= limit:
                return
            yield K.label_of(key), K.decode_summary(value).voxels if sizes else 0

    # -- the mapping -----------------------------------------------------------------

    def mapping(self, at: At, inst: Instance, svs: Sequence[int], nolookup: bool) -> list[int]:
        """GET mapping: the body of each supervoxel; 0 for retired ones.

        A supervoxel the mapping does not name is its own body; unless ``nolookup``,
        it maps to 0 when that body's index does not hold it (DVID's verifyMappings).
        """
        root = self.labels.root(at, inst)
        keys = [K.mapping_key(sv) for sv in svs]
        found = self.tree.get_many(root, keys)
        out = [
            K.decode_label_value(found[k]) if k in found else sv
            for sv, k in zip(svs, keys, strict=True)
        ]
        if nolookup:
            return out
        unnamed = sorted({sv for sv, k in zip(svs, keys, strict=True) if k not in found and sv})
        real = self._present(root, unnamed)
        return [
            body if k in found or sv in real else 0
            for sv, k, body in zip(svs, keys, out, strict=True)
        ]

    def _present(self, root: ObjectId, svs: Sequence[int]) -> set[int]:
        """Return the supervoxels among ``svs`` that their own body's index holds."""
        summaries = self.tree.get_many(root, [K.body_key(sv) for sv in svs])
        return {sv for sv in svs if K.body_key(sv) in summaries and self._holds(root, sv, sv)}

    def _holds(self, root: ObjectId, body: int, sv: int) -> bool:
        """Tell whether ``body``'s index holds ``sv``, reading its entries only until it does."""
        lo, hi = K.index_range(body)
        for _, value in self.tree.range(root, lo, hi):
            (payload,) = decode_values(self.store, [value])
            if bool((K.decode_pairs(payload)["sv"] == np.uint64(sv)).any()):
                return True
        return False

    def mappings(self, at: At, inst: Instance) -> Iterator[tuple[int, int]]:
        """GET mappings: every (supervoxel, body) the mapping holds, by supervoxel (0: retired)."""
        root = self.labels.root(at, inst)
        lo, hi = prefix_range(K.MAPPING_CLASS)
        for key, value in self.tree.range(root, lo, hi):
            yield K.label_of(key), K.decode_label_value(value)

    # -- LabelIndex protobufs -------------------------------------------------------------

    def label_index(self, root: ObjectId, label: int) -> LabelIndex | None:
        """Return body ``label``'s index as DVID's LabelIndex; None when it has none."""
        body = self.body(root, label)
        if body is None:
            return None
        s = self.summary(root, label) or K.Summary(body.voxels, len(body.coords))
        idx = LabelIndex(
            label=label,
            last_mutid=s.mutid,
            last_mod_time=s.time,
            last_mod_user=s.user,
            last_mod_app=s.app,
        )
        block_ids = encode_block_indices(body.coords).tolist()
        for (_, counts), block_id in zip(body.per_block(), block_ids, strict=True):
            idx.blocks[block_id].counts.update(counts)
        return idx

    def index(self, at: At, inst: Instance, label: int) -> LabelIndex | None:
        """GET index/{label}: the LabelIndex; None if the body has no entries."""
        return self.label_index(self.labels.root(at, inst), label)

    def indices(self, at: At, inst: Instance, labels: Sequence[int]) -> LabelIndices:
        """GET indices: a LabelIndices; absent labels get an empty LabelIndex with their label."""
        check_index_count(labels)
        root = self.labels.root(at, inst)
        out = LabelIndices()
        for label in labels:
            idx = self.label_index(root, label)
            out.indices.append(idx if idx is not None else LabelIndex(label=label))
        return out

    def indices_compressed(self, at: At, inst: Instance, labels: Sequence[int]) -> Iterator[bytes]:
        """GET indices-compressed: per label u64 size, u64 label, DVID's stored LZ4 value."""
        check_index_count(labels)
        root = self.labels.root(at, inst)
        for label in labels:
            idx = self.label_index(root, label)
            value = b"" if idx is None else stored_lz4(serialize(idx))
            yield len(value).to_bytes(8, "little") + label.to_bytes(8, "little") + value


def serialize(msg: LabelIndex | LabelIndices) -> bytes:
    """Protobuf bytes with map entries in key order, so equal indices give equal bytes."""
    return msg.SerializeToString(deterministic=True)


def stored_lz4(data: bytes) -> bytes:
    """DVID's serialized value of ``data``: 0x80, u32 LE length, raw LZ4 block."""
    return _LZ4_VALUE + bytes(lz4.block.compress(data, store_size=True))


def check_index_count(labels: Sequence[int]) -> None:
    """Refuse more than 50,000 labels, as DVID's indices endpoints do."""
    if len(labels) > MAX_INDICES:
        raise InvalidInputError(
            f"only 50,000 label indices can be returned at a time, {len(labels)} given"
        )
