r"""Reads and writes of imageblk instances at a version: blocks, boxes, slices, extents.

Each block is a BLOB object holding its voxels (ZYX, x fastest, little-endian), stored
with the instance's codec; equal blocks (all background, or repeated) are one object.
The instance tree maps ``b"\\x17" + block_key(0, z, y, x)`` to the block's id and
``b"\\x18"`` to the versioned extents (JSON).  ``jpeg`` compression (uint8 only)
stores each block as a JPEG of width X and height Y*Z, as DVID does.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.base import (
    Context,
    TypeService,
    inline_payload,
    inline_value,
    value_ref,
)
from cas_dvid.datatypes.geometry import Box3, Point3, block_box
from cas_dvid.datatypes.imageblk.blockcodec import resample_z, stream_encoder
from cas_dvid.datatypes.imageblk.blockobjects import (
    block_array,
    cached_block_array,
    encode_blocks,
)
from cas_dvid.datatypes.imageblk.layout import (
    EXTENTS_KEY,
    Layout,
    layout_of,
    parse_extents,
    parse_resolution,
    with_extents,
)
from cas_dvid.datatypes.jobs import Jobs
from cas_dvid.datatypes.kernels.arb import Vec3, arb_pixel_limit, plan_arb, sample_blocks
from cas_dvid.datatypes.kernels.assemble import assemble_box
from cas_dvid.datatypes.partial import require_blocks, require_covered
from cas_dvid.datatypes.roi.store import RoiStore
from cas_dvid.datatypes.streams import Coord
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Kind
from cas_dvid.objects.ids import BytesLike
from cas_dvid.versions import At, Instance

Array = npt.NDArray[Any]
T = TypeVar("T")
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
"""CPUs this process may run on."""


class ImageStore(TypeService):
    """The imageblk family's reads and writes (one per server, every voxel type)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = Jobs("downres")
        """Pyramid (``downres``) jobs: see ``imageblk.pyramid``."""

    # -- info ----------------------------------------------------------------------

    def info(self, at: At, inst: Instance) -> dict[str, Any]:
        """Return Extended (with Min/Max filled in from the extents) and Extents."""
        ext, extents = with_extents(inst, self.extents(at, inst))
        return {"Extended": ext, "Extents": extents}

    def metadata(self, at: At, inst: Instance) -> dict[str, Any]:
        """DVID's nd-data description: Axes with resolution, units, size and offset."""
        lay = layout_of(inst)
        extents = self.extents(at, inst)
        ext, _ = with_extents(inst, extents)
        axes = []
        for i, label in enumerate("XYZ"):
            lo, hi = (extents[0][i], extents[1][i]) if extents else (0, -1)
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
        return {"Axes": axes, "Properties": ext}

    # -- blocks --------------------------------------------------------------------

    def stored(self, at: At, inst: Instance, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Tree values of the stored blocks among ``coords`` (one tree pass)."""
        if not coords:
            return {}
        spatial = layout_of(inst).spatial
        keys = [spatial.key(*c) for c in coords]
        found = self.tree.get_many(self.versions.root_at(at, inst), keys)
        return {c: found[k] for c, k in zip(coords, keys, strict=True) if k in found}

    def stored_in_box(
        self, at: At, inst: Instance, first: Point3, last: Point3
    ) -> dict[Coord, bytes]:
        """Tree values of stored blocks with coordinates in [first, last] (inclusive).

        A box is a few key ranges in the tree's order (one per z, y row of blocks),
        so only the entries that exist are visited.
        """
        spatial = layout_of(inst).spatial
        root = self.versions.root_at(at, inst)
        out: dict[Coord, bytes] = {}
        # TODO: one Tree.scan over every range once trees has it (a descent per row now).
        ranges = spatial.ranges(first, last)
        hits = (kv for a, b in ranges for kv in self.tree.range(root, a, b, end_inclusive=True))
        for key, value in hits:
            coord = spatial.coord(key)
            if coord is not None:
                out[coord[1:]] = value
        return out

    def block_arrays(self, lay: Layout, values: Sequence[bytes]) -> list[Array]:
        """Block arrays for tree values, in order (read-only views).

        Blocks in the decoded cache are taken here; the rest are fetched on the store's
        pool, in one run of blocks per CPU.

        PERF: not one pool task a block: a cached block costs ~2 us, a hand-off ~40 us
        (specificblocks of 32 cached blocks spent 1.3 ms a request in
        ``SimpleQueue.put``); and cached blocks not on the pool at all (0.24 against 0.54
        ms for the 125 cached blocks of a 256^3 box).  Blocks to fetch go out in one run
        per pool thread (file reads and hashing): a 256^3 box of uncached blocks read in
        17.6 ms with 4 runs against 23.4 with 2 on this 2-CPU machine under load.
        """
        arrays = [cached_block_array(self.store, lay, v) for v in values]
        missing = [i for i, a in enumerate(arrays) if a is None]
        if missing:
            runs = _split([values[i] for i in missing], max(self._chunks(), self.store.threads))
            done = self.store.map(lambda run: [self._block(lay, v) for v in run], runs)
            for i, a in zip(missing, (a for run in done for a in run), strict=True):
                arrays[i] = a
        return [a for a in arrays if a is not None]

    def raw_blocks(self, at: At, inst: Instance, coords: Sequence[Coord]) -> dict[Coord, Array]:
        """Arrays of the stored blocks among ``coords``."""
        lay = layout_of(inst)
        stored = self.stored(at, inst, coords)
        arrays = self.block_arrays(lay, list(stored.values()))
        return dict(zip(stored, arrays, strict=True))

    def _chunks(self) -> int:
        """How many pieces a read is cut into for the store's pool: one per CPU.

        PERF: on 2 CPUs, 8 pieces (twice the pool) made a cached 256^3 read 1.13x slower
        than 2 (interleaved A/B of raw GETs); reads that miss the cache were as fast.
        """
        return max(1, min(2 * self.store.threads, CPUS))

    def _block(self, lay: Layout, value: bytes) -> Array:
        return block_array(self.store, lay, value)

    def write_blocks(
        self,
        at: At,
        inst: Instance,
        blocks: dict[Coord, Array],
        what: str,
        box: Box3 | None = None,
        extra: dict[bytes, Any] | None = None,
    ) -> None:
        """Store whole blocks (ZYX arrays of the block shape) in one tree apply.

        ``extra`` ops (deletes, markers) join the same apply.
        """
        if not blocks:
            if extra:
                self.versions.write(at, inst, extra, what)
            return
        lay = layout_of(inst)
        coords = list(blocks)
        ops: dict[bytes, Any] = dict(encode_blocks(self.store, lay, blocks))
        if box is None:
            xs, ys, zs = zip(*coords, strict=True)
            lo = block_box(lay.block, min(xs), min(ys), min(zs))
            hi = block_box(lay.block, max(xs), max(ys), max(zs))
            box = Box3(lo.start, hi.stop)
        ops[EXTENTS_KEY] = grow_extents(box)
        ops.update(extra or {})
        self.versions.write(at, inst, ops, what)

    # -- subvolumes -------------------------------------------------------------------

    def read(
        self,
        at: At,
        inst: Instance,
        box: Box3,
        out: Array | None = None,
        stored: dict[Coord, bytes] | None = None,
    ) -> Array:
        """Return the voxels of ``box`` as a ZYX array; unwritten voxels are zero (as DVID).

        ``stored`` (tree values by block, covering the box) skips the lookup: a streamed
        read looks its blocks up once so every slab comes from the same version.

        PERF: the blocks are fetched (read, verified, decoded) on the store's pool in one run
        per CPU, then the box is assembled by ``kernels.assemble.assemble_box`` in one
        z-range per CPU (compiled, GIL released, zeros where no block is stored): 2.2 ms
        a 256^3 box of cached 64^3 blocks on one thread, against 4.3 ms for a
        kernel copying one block at a time, with its Python per block.
        """
        lay = layout_of(inst)
        size = box.size
        first, last = box.blocks(lay.block)
        coords = [
            (bx, by, bz)
            for bz in range(first.z, last.z + 1)
            for by in range(first.y, last.y + 1)
            for bx in range(first.x, last.x + 1)
        ]
        if stored is None:  # PERF: one batch lookup, 0.20 ms for 125 blocks (0.30 by ranges)
            stored = self.stored(at, inst, coords)
        values = [stored.get(c) for c in coords]
        fetched = iter(self.block_arrays(lay, [v for v in values if v is not None]))
        blocks = [None if v is None else next(fetched) for v in values]
        b = lay.block
        origin = (
            box.start.z - first.z * b.z,
            box.start.y - first.y * b.y,
            box.start.x - first.x * b.x,
        )
        target = out if out is not None and out.flags.c_contiguous else None
        if target is None:
            target = np.empty((size.z, size.y, size.x), dtype=lay.vtype.dtype)
        parts = max(1, min(size.z, self._chunks()))
        cuts = [size.z * i // parts for i in range(parts + 1)]
        ranges = list(zip(cuts, cuts[1:], strict=False))
        shape = lay.block_shape
        self.store.map(lambda r: assemble_box(target, blocks, shape, origin, r), ranges)
        if out is not None and out is not target:
            out[...] = target
            return out
        return target

    def read_box(
        self,
        at: At,
        inst: Instance,
        box: Box3,
        *,
        isotropic: bool = False,
        roi: str | None = None,
        attenuation: int = 0,
    ) -> Array:
        """GET raw/isotropic of a 3-D box: size-checked, refused outside a partial region.

        With ``roi`` (the name of a roi instance of the repo), voxels outside the ROI's
        blocks at this version are 0, or shifted right by ``attenuation`` bits (DVID's
        ``?roi=name&attenuation=1..7``).
        """
        lay = layout_of(inst)
        self.check_voxel_bytes(box.voxels * lay.vtype.dtype.itemsize)
        require_covered(at, inst, lay.spatial, box)
        vol = self.read(at, inst, box)
        if roi:
            RoiStore(self.ctx).apply(at, roi, box, vol, attenuation)
        return resample_z(vol, lay, 0) if isotropic else vol

    def read_slabs(self, at: At, inst: Instance, box: Box3, max_slab_bytes: int) -> Iterator[Array]:
        """GET raw of a big 3-D box as z-slabs (ZYX arrays), in order, for a streamed answer.

        Checked (size, partial region) and looked up before the first slab, once, so the
        slabs are of one version even while writers move the head; each slab is
        assembled only when the caller asks for it.
        """
        lay = layout_of(inst)
        self.check_voxel_bytes(box.voxels * lay.vtype.dtype.itemsize)
        require_covered(at, inst, lay.spatial, box)
        first, last = box.blocks(lay.block)
        stored = self.stored_in_box(at, inst, first, last)
        plane = box.size.x * box.size.y * lay.vtype.dtype.itemsize
        slabs = box.z_slabs(lay.block.z, plane, max_slab_bytes)
        return (self.read(at, inst, slab, stored=stored) for slab in slabs)

    def read_arb(self, at: At, inst: Instance, tl: Vec3, tr: Vec3, bl: Vec3, res: float) -> Array:
        """GET arb: the plane through world points ``tl``, ``tr``, ``bl`` at spacing ``res``.

        Trilinear for uint8 (DVID's rule, see ``kernels.arb``); only the blocks the
        plane crosses are read; unwritten voxels read as 0.
        """
        lay = layout_of(inst)
        if lay.vtype.dtype != np.uint8:
            raise InvalidInputError(
                f"arbitrary slices need 1-byte voxels; {inst.name!r} is {inst.typename}"
            )
        plan = plan_arb(tl, tr, bl, res, lay.voxel_size, max_pixels=arb_pixel_limit(self.ctx))
        coords = [(int(x), int(y), int(z)) for z, y, x in plan.blocks(tuple(lay.block))]
        self.check_voxel_bytes(len(coords) * lay.block.x * lay.block.y * lay.block.z * 1)
        found = self.raw_blocks(at, inst, coords)
        have = list(found)
        shape = (0, *lay.block_shape)
        arrays = np.stack([found[c] for c in have]) if have else np.zeros(shape, np.uint8)
        zyx = np.asarray([(z, y, x) for x, y, z in have], dtype=np.int64).reshape(-1, 3)
        return sample_blocks(plan, zyx, arrays, tuple(lay.block), interpolate=True)

    def read_slice(
        self, at: At, inst: Instance, axes: tuple[int, int], box: Box3, *, isotropic: bool = False
    ) -> Array:
        """Return a 2-D slice (``box`` is one voxel thick across ``axes``) as (rows, columns)."""
        vol = self.read_box(at, inst, box)
        if axes == (0, 1):
            return np.asarray(vol[0])
        img = np.asarray(vol[:, 0, :] if axes == (0, 2) else vol[:, :, 0])
        if isotropic:
            img = resample_z(img[:, None, :], layout_of(inst), 0)[:, 0, :]
        return img

    def write_raw(self, at: At, inst: Instance, box: Box3, body: bytes, what: str) -> None:
        """POST raw/0_1_2: a block-aligned box of packed voxels, exact length."""
        lay = layout_of(inst)
        expected = box.voxels * lay.vtype.dtype.itemsize
        self.check_voxel_bytes(expected)
        if not box.aligned(lay.block):
            raise InvalidInputError("cannot store voxels in non-block aligned geometry")
        if len(body) != expected:
            raise InvalidInputError(f"voxels data was {len(body)} bytes, expected {expected}")
        size = box.size
        vol = np.frombuffer(body, dtype=lay.vtype.dtype).reshape(size.z, size.y, size.x)
        self.write(at, inst, box.start, vol, what)

    def write(self, at: At, inst: Instance, offset: Point3, data: Array, what: str) -> None:
        """Store a block-aligned ZYX volume at ``offset``."""
        lay = layout_of(inst)
        nz, ny, nx = data.shape
        box = Box3.at(offset, Point3(nx, ny, nz))
        if not box.aligned(lay.block):
            raise InvalidInputError("cannot store voxels in non-block aligned geometry")
        b = lay.block
        first, _ = box.blocks(b)
        blocks = {}
        for iz in range(nz // b.z):
            for iy in range(ny // b.y):
                for ix in range(nx // b.x):
                    blocks[(first.x + ix, first.y + iy, first.z + iz)] = data[
                        iz * b.z : (iz + 1) * b.z,
                        iy * b.y : (iy + 1) * b.y,
                        ix * b.x : (ix + 1) * b.x,
                    ]
        self.write_blocks(at, inst, blocks, what, box)

    # -- block spans and streams ---------------------------------------------------------

    def read_span(self, at: At, inst: Instance, start: Point3, span: int) -> bytes:
        """GET blocks/{start}/{span}: raw blocks along X, missing ones filled with Background."""
        lay = layout_of(inst)
        self.check_voxel_bytes(lay.block_bytes * span)
        coords = [(start.x + i, start.y, start.z) for i in range(span)]
        self._require_blocks(at, inst, lay, coords)
        got = self.raw_blocks(at, inst, coords)
        fill = np.full(lay.block_shape, lay.background, dtype=lay.vtype.dtype).tobytes()
        return b"".join(got[c].tobytes() if c in got else fill for c in coords)

    def write_span(
        self, at: At, inst: Instance, start: Point3, span: int, body: bytes, what: str
    ) -> None:
        """POST blocks/{start}/{span}: ``span`` raw blocks along X."""
        lay = layout_of(inst)
        expected = lay.block_bytes * span
        self.check_voxel_bytes(expected)
        if len(body) != expected:
            raise InvalidInputError(
                f"blocks data was {len(body)} bytes, expected {expected} for {span} blocks"
            )
        arr = np.frombuffer(body, dtype=lay.vtype.dtype).reshape(span, *lay.block_shape)
        blocks = {(start.x + i, start.y, start.z): arr[i] for i in range(span)}
        self.write_blocks(at, inst, blocks, what)

    def records_in_box(
        self, at: At, inst: Instance, box: Box3, mode: str
    ) -> list[tuple[Coord, BytesLike]]:
        """GET subvolblocks: the stored blocks of a block-aligned box, as stream payloads."""
        lay = layout_of(inst)
        if not box.aligned(lay.block):
            raise InvalidInputError("subvolblocks requires a block-aligned subvolume")
        self.check_voxel_bytes(box.voxels * lay.vtype.dtype.itemsize)
        require_covered(at, inst, lay.spatial, box)
        first, last = box.blocks(lay.block)
        return self._payloads(lay, self.stored_in_box(at, inst, first, last), mode)

    def records_of(
        self, at: At, inst: Instance, coords: Sequence[Coord], mode: str
    ) -> list[tuple[Coord, BytesLike]]:
        """GET specificblocks: the stored blocks among ``coords``, as stream payloads."""
        lay = layout_of(inst)
        self.check_voxel_bytes(len(coords) * lay.block_bytes)
        self._require_blocks(at, inst, lay, coords)
        return self._payloads(lay, self.stored(at, inst, coords), mode)

    def _require_blocks(self, at: At, inst: Instance, lay: Layout, coords: Sequence[Coord]) -> None:
        require_blocks(at, inst, lay.spatial, coords)

    def _payloads(
        self, lay: Layout, stored: dict[Coord, bytes], mode: str
    ) -> list[tuple[Coord, BytesLike]]:
        """Payloads as DVID streams them: as stored (default), ``uncompressed`` or ``jpeg``."""
        if mode not in ("", "uncompressed", "jpeg"):
            raise InvalidInputError(f"unknown compression {mode!r}: use uncompressed or jpeg")
        if mode == "jpeg" and lay.compression != "jpeg":
            raise InvalidInputError(
                "compression=jpeg needs an instance stored with jpeg compression"
            )
        coords = list(stored)
        values = [stored[c] for c in coords]
        if mode == "jpeg" or (not mode and lay.compression == "jpeg"):
            ids = [value_ref(v) for v in values]
            blobs = self.store.get_many([i for i in ids if i is not None], Kind.BLOB)
            return list(zip(coords, blobs, strict=True))
        encode = stream_encoder("" if mode == "uncompressed" else lay.compression)
        arrays = self.block_arrays(lay, values)
        return list(zip(coords, (encode(a) for a in arrays), strict=True))

    # -- extents --------------------------------------------------------------------------

    def extents(self, at: At, inst: Instance) -> tuple[list[int], list[int]] | None:
        """(MinPoint, MaxPoint) written so far at this version, or None."""
        raw = self.tree.get(self.versions.root_at(at, inst), EXTENTS_KEY)
        if raw is None:
            return None
        doc = json.loads(inline_payload(raw))
        return doc["MinPoint"], doc["MaxPoint"]

    def set_extents(self, at: At, inst: Instance, doc: Any, what: str) -> None:
        """Replace the extents (POST extents ``{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}``)."""
        lo, hi = parse_extents(doc)
        body = {"MinPoint": list(lo), "MaxPoint": list(hi)}
        self.versions.write(at, inst, {EXTENTS_KEY: inline_value(json.dumps(body).encode())}, what)

    def set_resolution(self, at: At, inst: Instance, doc: Any) -> None:
        """POST resolution ``[x, y, z]``: the voxel size (repo-wide, as in DVID)."""
        text = ",".join(repr(v) for v in parse_resolution(doc))

        def change(i: Instance) -> None:
            i.settings["voxelsize"] = text

        self.versions.edits.update_instance(at, inst.name, change)


def _split(items: list[T], parts: int) -> list[list[T]]:
    """``items`` in at most ``parts`` runs of consecutive items, in order."""
    size = -(-len(items) // max(1, parts)) or 1
    return [items[i : i + size] for i in range(0, len(items), size)]


def grow_extents(box: Box3) -> Callable[[bytes | None], bytes]:
    """Return an update op growing the stored extents to include ``box``."""

    def grow(old: bytes | None) -> bytes:
        lo, hi = list(box.start), [v - 1 for v in box.stop]
        if old is not None:
            doc = json.loads(inline_payload(old))
            lo = [min(a, b) for a, b in zip(lo, doc["MinPoint"], strict=True)]
            hi = [max(a, b) for a, b in zip(hi, doc["MaxPoint"], strict=True)]
        return inline_value(json.dumps({"MinPoint": lo, "MaxPoint": hi}).encode())

    return grow
