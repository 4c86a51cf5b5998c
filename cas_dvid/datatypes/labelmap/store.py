"""Reads of label instances at a version: blocks, boxes, points, and the mapping.

Blocks are stored as DVID's compressed label Blocks of supervoxel ids.  A read maps
supervoxels to bodies (unless ``supervoxels=true``, or for labelarray/labelblk) on
each Block's label table before decoding, so the cost of the mapping follows the
number of distinct labels, not of voxels.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.base import Context, TypeService, inline_payload, value_ref
from cas_dvid.datatypes.geometry import Box3, Point3, block_box
from cas_dvid.datatypes.kernels.arb import Vec3, arb_pixel_limit, plan_arb, sample_blocks
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.blockio import BlockStreams
from cas_dvid.datatypes.labelmap.bodies import BodyIndex
from cas_dvid.datatypes.labelmap.codec import BlockParts, decode_block, parse_block
from cas_dvid.datatypes.labelmap.counters import LabelCounters
from cas_dvid.datatypes.labelmap.ingest import LabelWriter
from cas_dvid.datatypes.labelmap.layout import LabelLayout, extended_info, layout_of
from cas_dvid.datatypes.labelmap.mutations import Mutations
from cas_dvid.datatypes.labelmap.mutlog import MutationLog
from cas_dvid.datatypes.labelmap.splits import Splits
from cas_dvid.datatypes.labelmap.writes import BlockPlanner
from cas_dvid.datatypes.partial import require_covered
from cas_dvid.datatypes.roi.store import RoiStore
from cas_dvid.errors import CorruptObjectError, InvalidInputError
from cas_dvid.objects import Kind, ObjectId
from cas_dvid.trees.keys import block_key
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Reader, TreeReader

Coord = tuple[int, int, int]
Labels = NDArray[np.uint64]


class LabelStore(TypeService):
    """labelmap, labelarray and labelblk at a version (one per server)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.planner = BlockPlanner(self.store)
        self.writer = LabelWriter(self)
        self.blockio = BlockStreams(self)
        self.index = BodyIndex(self)
        self.mutations = Mutations(self)
        self.splits = Splits(self, self.mutations)
        self.log = MutationLog(self)

    # -- plumbing ----------------------------------------------------------------------

    def root(self, at: At, inst: Instance) -> ObjectId:
        """Return the instance's tree root at ``at``."""
        return self.versions.root_at(at, inst)

    def reader(self, root: ObjectId) -> Reader:
        """Return a reader of the tree at ``root`` (as plans get: code is shared with writes)."""
        return TreeReader(self.tree, root)

    def counters(self, inst: Instance) -> LabelCounters:
        """Return the instance's repo-wide label counters."""
        return LabelCounters(self.store.backend, inst.data_uuid)

    # -- info --------------------------------------------------------------------------

    def info(self, at: At, inst: Instance) -> dict[str, Any]:
        """Return Extended (with extents and label counters) and Extents."""
        lay = layout_of(inst)
        root = self.root(at, inst)
        ext = extended_info(inst)
        extents = self.extents(root)
        if extents is not None:
            lo, hi = extents
            b = lay.block
            ext["MinPoint"], ext["MaxPoint"] = lo, hi
            ext["MinIndex"] = [v // s for v, s in zip(lo, b, strict=True)]
            ext["MaxIndex"] = [v // s for v, s in zip(hi, b, strict=True)]
        if lay.kind != "labelblk":
            c = self.counters(inst).read()
            max_label = self.max_label(root)
            version = at.repo.nodes[at.uuid].version_id
            ext["MaxLabel"] = {} if max_label is None else {str(version): max_label}
            ext["MaxRepoLabel"], ext["NextLabel"] = max(c.max_repo, max_label or 0), c.next
        doc: dict[str, Any] = {"Extended": ext}
        doc["Extents"] = None if extents is None else {"MinPoint": lo, "MaxPoint": hi}
        return doc

    def metadata(self, at: At, inst: Instance) -> dict[str, Any]:
        """DVID's nd-data description: Axes with resolution, units, size and offset."""
        lay = layout_of(inst)
        info = self.info(at, inst)
        extents = info["Extents"]
        axes = []
        for i, label in enumerate("XYZ"):
            lo, hi = (extents["MinPoint"][i], extents["MaxPoint"][i]) if extents else (0, -1)
            res = lay.voxel_size[i]
            axes.append(
                {
                    "Label": label,
                    "Resolution": int(res) if res.is_integer() else res,
                    "Units": lay.units[i],
                    "Size": hi - lo + 1,
                    "Offset": lo,
                }
            )
        return {"Axes": axes, "Properties": info["Extended"]}

    def extents(self, root: ObjectId) -> tuple[list[int], list[int]] | None:
        """(MinPoint, MaxPoint) written so far, or None."""
        raw = self.tree.get(root, K.LABEL_EXTENTS_KEY)
        if raw is None:
            return None
        doc = json.loads(inline_payload(raw))
        return doc["MinPoint"], doc["MaxPoint"]

    def max_label(self, root: ObjectId) -> int | None:
        """Return the largest label written at this version or its ancestors, None if none."""
        raw = self.tree.get(root, K.MAXLABEL_KEY)
        return None if raw is None else K.decode_label_value(raw)

    # -- blocks ------------------------------------------------------------------------

    def block_values(
        self, root: ObjectId, coords: Sequence[Coord], scale: int = 0
    ) -> dict[Coord, bytes]:
        """Tree values of the stored blocks among ``coords`` (one tree pass)."""
        keys = K.block_keys_of(coords, scale)
        found = self.tree.get_many(root, keys)
        return {c: found[k] for c, k in zip(coords, keys, strict=True) if k in found}

    def block_values_in(
        self, root: ObjectId, lay: LabelLayout, first: Point3, last: Point3, scale: int = 0
    ) -> dict[Coord, bytes]:
        """Tree values of stored blocks with coordinates in [first, last], by key ranges."""
        spatial = lay.spatial
        out: dict[Coord, bytes] = {}
        for a, b in spatial.ranges(first, last, scale):
            for key, value in self.tree.range(root, a, b, end_inclusive=True):
                coord = spatial.coord(key)
                if coord is not None:
                    out[coord[1:]] = value
        return out

    def blobs(self, values: Sequence[bytes]) -> list[memoryview]:
        """Return the stored Blocks that tree values name, fetched on the pool."""
        ids = []
        for v in values:
            oid = value_ref(v)
            if oid is None:
                raise CorruptObjectError(f"label block value has tag {v[:1]!r}, not a blob")
            ids.append(oid)
        return self.store.get_many(ids, Kind.BLOB)

    def parts(self, lay: LabelLayout, values: Sequence[bytes]) -> list[BlockParts]:
        """Return the stored Blocks, parsed and checked against the instance's block shape."""
        return [self.parts_of(lay, b) for b in self.blobs(values)]

    def parts_of(self, lay: LabelLayout, blob: memoryview) -> BlockParts:
        """One stored Block, parsed; a Block that does not parse is store damage."""
        try:
            return parse_block(blob, lay.block_shape)
        except InvalidInputError as exc:
            raise CorruptObjectError(f"stored label block does not parse: {exc}") from None

    # -- the mapping -------------------------------------------------------------------

    def bodies(self, read: Reader, svs: NDArray[np.uint64], lay: LabelLayout) -> Labels:
        """Return the body of each supervoxel (itself when unmapped; 0 for a retired one)."""
        if not lay.mapped or not len(svs):
            return np.asarray(svs, np.uint64)
        uniq, inverse = np.unique(svs, return_inverse=True)
        keys = [K.mapping_key(int(s)) for s in uniq]
        found = read(keys)
        mapped = np.array(
            [
                K.decode_label_value(found[k]) if k in found else int(s)
                for s, k in zip(uniq, keys, strict=True)
            ],
            np.uint64,
        )
        return mapped[inverse].reshape(np.shape(svs))

    def mapped_parts(
        self, root: ObjectId, lay: LabelLayout, parts: list[BlockParts], supervoxels: bool
    ) -> list[BlockParts]:
        """Blocks with bodies in their label tables (as they are when ``supervoxels``)."""
        if supervoxels or not lay.mapped or not parts:
            return parts
        table = np.concatenate([p.labels for p in parts])
        bodies = self.bodies(self.reader(root), table, lay)
        out, at = [], 0
        for p in parts:
            n = len(p.labels)
            out.append(dataclasses.replace(p, labels=bodies[at : at + n]))
            at += n
        return out

    # -- reads -------------------------------------------------------------------------

    def read_box(
        self,
        at: At,
        inst: Instance,
        box: Box3,
        *,
        scale: int = 0,
        supervoxels: bool = False,
        roi: str | None = None,
    ) -> Labels:
        """Return the labels of ``box`` (at ``scale``) as a ZYX uint64 array; unwritten = 0.

        With ``roi`` (a roi instance of the repo), voxels outside its blocks are 0, as
        DVID's ``?roi=name`` (scale 0 only: a ROI is in scale-0 block coordinates).
        """
        if roi:
            if scale:
                raise InvalidInputError("roi= applies to scale 0 reads only")
            out = self.read_box(at, inst, box, supervoxels=supervoxels)
            RoiStore(self.ctx).apply(at, roi, box, out, 0)
            return out
        root, lay, stored = self._box_blocks(at, inst, box, scale)
        return self._assemble(root, lay, stored, box, supervoxels)

    def read_slabs(
        self,
        at: At,
        inst: Instance,
        box: Box3,
        max_slab_bytes: int,
        *,
        scale: int = 0,
        supervoxels: bool = False,
    ) -> Iterator[Labels]:
        """GET raw of a big box as z-slabs (ZYX uint64 arrays), in order, for streaming.

        Checked and looked up once before the first slab, at one root, so every slab is
        of the same version; each is decoded only when the caller asks for it.
        """
        root, lay, stored = self._box_blocks(at, inst, box, scale)
        slabs = box.z_slabs(lay.block.z, box.size.x * box.size.y * 8, max_slab_bytes)
        return (
            self._assemble(root, lay, _in_layers(stored, s, lay), s, supervoxels) for s in slabs
        )

    def _box_blocks(
        self, at: At, inst: Instance, box: Box3, scale: int
    ) -> tuple[ObjectId, LabelLayout, dict[Coord, bytes]]:
        lay = layout_of(inst)
        self.check_scale(lay, scale)
        self.check_voxel_bytes(box.voxels * 8)
        if scale == 0:
            require_covered(at, inst, lay.spatial, box)
        root = self.root(at, inst)
        first, last = box.blocks(lay.block)
        return root, lay, self.block_values_in(root, lay, first, last, scale)

    def _assemble(
        self,
        root: ObjectId,
        lay: LabelLayout,
        stored: dict[Coord, bytes],
        box: Box3,
        supervoxels: bool,
    ) -> Labels:
        coords = list(stored)
        parts = self.mapped_parts(root, lay, self.parts(lay, list(stored.values())), supervoxels)
        size = box.size
        out = np.zeros((size.z, size.y, size.x), np.uint64)
        work = list(zip(coords, parts, strict=True))
        chunks = max(1, min(len(work), 2 * self.store.threads))
        self.store.map(
            lambda part: _fill(out, box, lay, part), [work[i::chunks] for i in range(chunks)]
        )
        return out

    def read_arb(
        self,
        at: At,
        inst: Instance,
        tl: Vec3,
        tr: Vec3,
        bl: Vec3,
        res: float,
        *,
        supervoxels: bool = False,
    ) -> Labels:
        """Return an arbitrarily oriented slice of labels, the nearest voxel per pixel.

        Labels do not interpolate; only the blocks the plane crosses are read.  DVID
        offers ``arb`` on imageblk only; this is the same request for label volumes.
        """
        lay = layout_of(inst)
        plan = plan_arb(tl, tr, bl, res, lay.voxel_size, max_pixels=arb_pixel_limit(self.ctx))
        root = self.root(at, inst)
        coords = [(int(x), int(y), int(z)) for z, y, x in plan.blocks(tuple(lay.block))]
        self.check_voxel_bytes(len(coords) * lay.block.x * lay.block.y * lay.block.z * 8)
        stored = self.block_values(root, coords)
        have = list(stored)
        parts = self.mapped_parts(root, lay, self.parts(lay, list(stored.values())), supervoxels)
        shape = (0, *lay.block_shape)
        blocks = np.stack([decode_block(p) for p in parts]) if parts else np.zeros(shape, np.uint64)
        zyx = np.asarray([(z, y, x) for x, y, z in have], dtype=np.int64).reshape(-1, 3)
        out: Labels = sample_blocks(plan, zyx, blocks, tuple(lay.block), interpolate=False)
        return out

    def labels_at(
        self,
        at: At,
        inst: Instance,
        points: Sequence[Point3],
        *,
        scale: int = 0,
        supervoxels: bool = False,
    ) -> list[int]:
        """Return the label at each voxel point (0 where nothing is stored)."""
        lay = layout_of(inst)
        self.check_scale(lay, scale)
        root = self.root(at, inst)
        b = lay.block
        coords = [(p.x // b.x, p.y // b.y, p.z // b.z) for p in points]
        stored = self.block_values(root, sorted(set(coords)), scale)
        order = list(stored)
        parts = self.mapped_parts(root, lay, self.parts(lay, list(stored.values())), supervoxels)
        decoded: dict[Coord, Labels] = {}
        out = []
        for p, c in zip(points, coords, strict=True):
            if c not in stored:
                out.append(0)
                continue
            if c not in decoded:
                decoded[c] = decode_block(parts[order.index(c)])
            out.append(int(decoded[c][p.z - c[2] * b.z, p.y - c[1] * b.y, p.x - c[0] * b.x]))
        return out

    def check_scale(self, lay: LabelLayout, scale: int) -> None:
        """Refuse a scale beyond MaxDownresLevel, as DVID does."""
        if not 0 <= scale <= lay.max_downres:
            raise InvalidInputError(
                f"scale {scale} is outside 0..{lay.max_downres} (MaxDownresLevel)"
            )

    def block_key(self, coord: Coord, scale: int) -> bytes:
        """Tree key of a block."""
        x, y, z = coord
        return K.LABEL_BLOCK_CLASS + block_key(scale, z, y, x)


def _in_layers(stored: dict[Coord, bytes], box: Box3, lay: LabelLayout) -> dict[Coord, bytes]:
    """Return the blocks of ``stored`` whose z-layer meets ``box``."""
    first, last = box.blocks(lay.block)
    return {c: v for c, v in stored.items() if first.z <= c[2] <= last.z}


def _fill(out: Labels, box: Box3, lay: LabelLayout, work: list[tuple[Coord, BlockParts]]) -> None:
    """Decode blocks into their part of ``out`` (runs on the store's pool)."""
    for coord, parts in work:
        block = block_box(lay.block, *coord)
        inter = box.intersect(block)
        if inter is None:
            continue
        arr = decode_block(parts)
        lo, hi, b0 = inter.start, inter.stop, block.start
        out[
            lo.z - box.start.z : hi.z - box.start.z,
            lo.y - box.start.y : hi.y - box.start.y,
            lo.x - box.start.x : hi.x - box.start.x,
        ] = arr[lo.z - b0.z : hi.z - b0.z, lo.y - b0.y : hi.y - b0.y, lo.x - b0.x : hi.x - b0.x]
