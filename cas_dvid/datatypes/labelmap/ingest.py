"""Writes of label voxels: POST raw, POST blocks, ingest-supervoxels, and lower-res scales.

Every write canonicalises its blocks (decode, then encode with cas_dvid's
deterministic encoder), so equal blocks are one object whatever encoder a client
used; puts them as objects; then applies one plan (writes.py) that swaps blocks,
label index, body summaries, max label and extents together.  With
``downres=true`` the same plan rebuilds the lower-res blocks above the written ones
(DVID's rule, downres.py); without it, on an instance with MaxDownresLevel > 0,
it marks them stale for ``downres`` to rebuild later.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import lz4.block
import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.base import blob_value
from cas_dvid.datatypes.geometry import Box3, Point3, block_box
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.codec import (
    canonical_with_counts,
    decode_block,
    encode_block_with_counts,
)
from cas_dvid.datatypes.labelmap.downres import downres_octants
from cas_dvid.datatypes.labelmap.layout import LabelLayout, layout_of
from cas_dvid.datatypes.labelmap.writes import BlockWrite, NewBlock, Ops, nonzero, raise_to
from cas_dvid.datatypes.streams import parse_records
from cas_dvid.errors import InvalidInputError, LockedError
from cas_dvid.objects import Codec, Kind, ObjectStore
from cas_dvid.trees.keys import block_key, parse_block_key
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Reader

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
Labels = NDArray[np.uint64]
BLOCK_CODEC = Codec.ZSTD
MAX_GUNZIP = 1 << 30


def gunzip(data: bytes | memoryview, what: str, limit: int = MAX_GUNZIP) -> bytes:
    """Gunzip one payload, refusing what does not decompress or grows past ``limit``."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(bytes(data), limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(f"{what} is not valid gzip data: {exc}") from None
    if len(out) > limit:
        raise InvalidInputError(f"{what} decompresses to over {limit} bytes")
    if not d.eof:
        raise InvalidInputError(f"{what} is a truncated gzip stream")
    return out


class LabelWriter:
    """The writes of one LabelStore."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels
        self.store = labels.store
        self.versions = labels.versions

    # -- building blocks ---------------------------------------------------------------

    def encode(self, arrays: Sequence[Labels]) -> list[NewBlock]:
        """Encode arrays as Blocks on the pool and put them; counts come from the same pass."""
        return encode_arrays(self.store, arrays)

    def write_arrays(
        self,
        at: At,
        inst: Instance,
        arrays: dict[Coord, Labels],
        what: str,
        *,
        scale: int = 0,
        index: bool = True,
        downres: bool = False,
    ) -> None:
        """Store whole blocks (ZYX uint64 arrays) at ``scale`` in one plan."""
        if not arrays:
            return
        lay = layout_of(inst)
        self.labels.check_scale(lay, scale)
        coords = list(arrays)
        blocks = dict(zip(coords, self.encode([arrays[c] for c in coords]), strict=True))
        pyramid = self.pyramid_plan(lay, arrays, scale) if downres else None
        self.write_encoded(at, inst, blocks, what, scale=scale, index=index, pyramid=pyramid)

    def write_encoded(
        self,
        at: At,
        inst: Instance,
        blocks: dict[Coord, NewBlock],
        what: str,
        *,
        scale: int = 0,
        index: bool = True,
        pyramid: Any = None,
        reindex: bool = False,
    ) -> None:
        """Swap in blocks already put (``encode``, or workers of a batch job) in one plan.

        Blocks, label index, body summaries, max label and extents change together;
        ``pyramid`` (a plan from ``pyramid_plan``) rebuilds lower scales in the same swap,
        else they are marked stale.  ``reindex``: the blocks are the ones already stored
        (see ``BlockWrite.reindex``).
        """
        if not blocks:
            return
        lay = layout_of(inst)
        coords = list(blocks)
        box = _cover(lay, coords) if scale == 0 else None
        write = BlockWrite(blocks, scale, index and lay.indexed, lay.mapped, box, reindex=reindex)
        plan = self.labels.planner.plan(write)
        stale = self.stale_marks(lay, coords, scale) if pyramid is None and not reindex else {}

        def run(read: Reader) -> Ops:
            ops = plan(read)
            ops.update(stale)
            if pyramid is not None:
                ops.update(pyramid(read))
            return ops

        self.versions.write(at, inst, run, what)
        top = max((int(b.counts[0].max()) for b in blocks.values() if len(b.counts[0])), default=0)
        if top and lay.kind != "labelblk":
            self.labels.counters(inst).raise_max(top)

    def write_raw(
        self, at: At, inst: Instance, box: Box3, body: bytes, compression: str, what: str
    ) -> None:
        """POST raw/0_1_2: a block-aligned box of uint64 supervoxels (maybe lz4 or gzip)."""
        lay = layout_of(inst)
        expected = box.voxels * 8
        self.labels.check_voxel_bytes(expected)
        if not box.aligned(lay.block):
            raise InvalidInputError("cannot store voxels in non-block aligned geometry")
        data = _unpack(body, compression, expected)
        if len(data) != expected:
            raise InvalidInputError(f"voxels data was {len(data)} bytes, expected {expected}")
        size = box.size
        vol = np.frombuffer(data, np.uint64).reshape(size.z, size.y, size.x)
        first, _ = box.blocks(lay.block)
        b = lay.block
        arrays = {}
        for iz in range(size.z // b.z):
            for iy in range(size.y // b.y):
                for ix in range(size.x // b.x):
                    arrays[(first.x + ix, first.y + iy, first.z + iz)] = vol[
                        iz * b.z : (iz + 1) * b.z,
                        iy * b.y : (iy + 1) * b.y,
                        ix * b.x : (ix + 1) * b.x,
                    ]
        self.write_arrays(at, inst, arrays, what)

    def write_stream(
        self,
        at: At,
        inst: Instance,
        body: bytes,
        what: str,
        *,
        scale: int = 0,
        index: bool = True,
        downres: bool = False,
    ) -> int:
        """POST blocks / ingest-supervoxels: records of gzip(label Block); return the count.

        A Block already in canonical form is stored as sent; any other is decoded and
        encoded (so equal voxels are one object whatever encoder the client used).
        ``downres=true`` needs every block's voxels, so it decodes them all.
        """
        lay = layout_of(inst)
        records = list(parse_records(body))
        self.labels.check_voxel_bytes(len(records) * lay.block_voxels * 8)
        self.labels.check_scale(lay, scale)
        arrays: dict[Coord, Labels] = {}
        canonical: dict[Coord, tuple[bytes, Labels, NDArray[np.int64]]] = {}
        for coord, payload in records:
            what_block = f"block ({coord[0]}, {coord[1]}, {coord[2]})"
            raw = gunzip(payload, what_block, limit=64 + 16 * lay.block_voxels)
            try:
                same = None if downres else canonical_with_counts(raw, lay.block_shape)
                if same is not None:
                    canonical[coord] = same
                    arrays.pop(coord, None)
                else:
                    arrays[coord] = decode_block(raw, lay.block_shape)
                    canonical.pop(coord, None)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{what_block}: {exc}") from None
        if downres:
            self.write_arrays(at, inst, arrays, what, scale=scale, index=index, downres=True)
            return len(arrays)
        coords = list(arrays)
        blocks = dict(zip(coords, self.encode([arrays[c] for c in coords]), strict=True))
        ids = self.store.put_many([(Kind.BLOB, c[0]) for c in canonical.values()], BLOCK_CODEC)
        for (coord, (_, labels, counts)), oid in zip(canonical.items(), ids, strict=True):
            blocks[coord] = NewBlock(oid, nonzero((labels, counts)))
        self.write_encoded(at, inst, blocks, what, scale=scale, index=index)
        return len(blocks)

    # -- counters ------------------------------------------------------------------------

    def raise_max_label(self, at: At, inst: Instance, label: int) -> None:
        """POST maxlabel/{n}: the version's max label (and the repo's) at least ``label``."""
        if label == 0:
            raise InvalidInputError(
                "Label 0 is protected background value and cannot be used as max label."
            )
        self.versions.write(
            at, inst, {K.MAXLABEL_KEY: raise_to(label)}, 'POST on endpoint "maxlabel"'
        )
        self.labels.counters(inst).raise_max(label)

    def reserve(self, at: At, inst: Instance, count: int) -> tuple[int, int]:
        """POST nextlabel/{count}: labels reserved repo-wide; the version's max follows them."""
        if inst.versioned and at.node.locked:
            raise LockedError(f'Cannot do POST on endpoint "nextlabel" of locked node {at.uuid}')
        start, end = self.labels.counters(inst).reserve(count)
        self.versions.write(
            at, inst, {K.MAXLABEL_KEY: raise_to(end)}, 'POST on endpoint "nextlabel"'
        )
        return start, end

    # -- lower resolutions -----------------------------------------------------------------

    def downres_stale(self, at: At, inst: Instance, what: str, batch: int = 256) -> int:
        """Rebuild every lower-res block marked stale, scale by scale; return how many.

        Each batch is one plan: the blocks below a stale one are read as they are at
        that moment, and the stale mark goes with the rebuilt block.
        """
        lay = layout_of(inst)
        done = 0
        for s in range(1, lay.max_downres + 1):
            while True:
                stale = self._stale(at, inst, s, batch)
                if not stale:
                    break
                self.versions.write(at, inst, self._rebuild(lay, stale, s), what)
                done += len(stale)
        return done

    def _stale(self, at: At, inst: Instance, s: int, limit: int) -> list[Coord]:
        root = self.labels.root(at, inst)
        lo = K.DIRTY_CLASS + block_key(s, -(1 << 31), -(1 << 31), -(1 << 31))
        hi = K.DIRTY_CLASS + block_key(s, (1 << 31) - 1, (1 << 31) - 1, (1 << 31) - 1)
        out = []
        for key, _ in self.labels.tree.range(root, lo, hi, end_inclusive=True):
            _, z, y, x = parse_block_key(key[1:])
            out.append((x, y, z))
            if len(out) >= limit:
                break
        return out

    def _rebuild(self, lay: LabelLayout, parents: list[Coord], s: int) -> Any:
        """Return a plan rebuilding ``parents`` at scale ``s`` from every block below them."""

        def run(read: Reader) -> Ops:
            groups: dict[Coord, list[Labels | None]] = {p: [None] * 8 for p in parents}
            self._fill_siblings(read, lay, groups, parents, s)
            zero = np.zeros(lay.block_shape, np.uint64)
            arrays = {
                p: downres_octants([zero if o is None else o for o in octs], None, lay.block_shape)
                for p, octs in groups.items()
            }
            ops: Ops = self.stale_marks(lay, parents, s)
            for coord, new in zip(arrays, self.encode(list(arrays.values())), strict=True):
                x, y, z = coord
                ops[K.LABEL_BLOCK_CLASS + block_key(s, z, y, x)] = blob_value(new.oid)
                ops[K.DIRTY_CLASS + block_key(s, z, y, x)] = None
            return ops

        return run

    # -- lower resolutions, as writes go -------------------------------------------------------

    def stale_marks(self, lay: LabelLayout, coords: Sequence[Coord], scale: int) -> Ops:
        """Dirty marks of the lower-res blocks above ``coords`` (for a later ``downres``)."""
        if scale >= lay.max_downres:
            return {}
        parents = {(x >> 1, y >> 1, z >> 1) for x, y, z in coords}
        return {K.DIRTY_CLASS + block_key(scale + 1, z, y, x): b"\x00" for x, y, z in parents}

    def pyramid_plan(self, lay: LabelLayout, arrays: dict[Coord, Labels], scale: int) -> Any:
        """Return a plan part rebuilding every lower-res block above ``arrays`` (DVID's downres)."""

        def run(read: Reader) -> Ops:
            ops: Ops = {}
            level = dict(arrays)
            for s in range(scale + 1, lay.max_downres + 1):
                level = self._downres_level(read, lay, level, s)
                blocks = self.encode(list(level.values()))
                for coord, new in zip(level, blocks, strict=True):
                    x, y, z = coord
                    ops[K.LABEL_BLOCK_CLASS + block_key(s, z, y, x)] = blob_value(new.oid)
                    ops[K.DIRTY_CLASS + block_key(s, z, y, x)] = None
            return ops

        return run

    def _downres_level(
        self, read: Reader, lay: LabelLayout, children: dict[Coord, Labels], s: int
    ) -> dict[Coord, Labels]:
        """Blocks at scale ``s`` over ``children`` (scale s-1), keeping what else they held."""
        groups: dict[Coord, list[Labels | None]] = {}
        for (x, y, z), arr in children.items():
            octs = groups.setdefault((x >> 1, y >> 1, z >> 1), [None] * 8)
            octs[4 * (z & 1) + 2 * (y & 1) + (x & 1)] = arr
        parents = list(groups)
        keys = [K.LABEL_BLOCK_CLASS + block_key(s, z, y, x) for x, y, z in parents]
        found = read(keys)
        have = [found.get(k) for k in keys]
        self._fill_siblings(
            read, lay, groups, [p for p, v in zip(parents, have, strict=True) if v is None], s
        )
        blobs = iter(self.labels.blobs([v for v in have if v is not None]))
        out = {}
        for coord, value in zip(parents, have, strict=True):
            prior = None if value is None else decode_block(next(blobs), lay.block_shape)
            out[coord] = downres_octants(groups[coord], prior, lay.block_shape)
        return out

    def _fill_siblings(
        self,
        read: Reader,
        lay: LabelLayout,
        groups: dict[Coord, list[Labels | None]],
        orphans: list[Coord],
        s: int,
    ) -> None:
        """Octants of parents with no prior block, read from the stored scale s-1 blocks.

        A parent that was never built (written without ``downres``) cannot lend its
        voxels to the octants that did not change, so those are read instead.
        """
        want: dict[bytes, tuple[Coord, int]] = {}
        for px, py, pz in orphans:
            for i, arr in enumerate(groups[(px, py, pz)]):
                if arr is None:
                    x, y, z = 2 * px + (i & 1), 2 * py + (i >> 1 & 1), 2 * pz + (i >> 2)
                    want[K.LABEL_BLOCK_CLASS + block_key(s - 1, z, y, x)] = ((px, py, pz), i)
        found = read(list(want))
        keys = [k for k in want if k in found]
        for k, blob in zip(keys, self.labels.blobs([found[k] for k in keys]), strict=True):
            parent, i = want[k]
            groups[parent][i] = decode_block(blob, lay.block_shape)


def encode_arrays(store: ObjectStore, arrays: Sequence[Labels]) -> list[NewBlock]:
    """Encode label blocks (ZYX uint64) on the store's pool, put them, count supervoxels.

    The one way label blocks become objects: POST raw and the batch jobs' workers
    (``cas_dvid.batch``) both call it, so the objects and counts are identical.
    """
    encoded = store.map(encode_block_with_counts, list(arrays))
    ids = store.put_many([(Kind.BLOB, e[0]) for e in encoded], BLOCK_CODEC)
    return [
        NewBlock(oid, nonzero((labels, counts)))
        for oid, (_, labels, counts) in zip(ids, encoded, strict=True)
    ]


def _cover(lay: LabelLayout, coords: Sequence[Coord]) -> Box3:
    xs, ys, zs = zip(*coords, strict=True)
    lo = block_box(lay.block, min(xs), min(ys), min(zs))
    hi = block_box(lay.block, max(xs), max(ys), max(zs))
    return Box3(lo.start, hi.stop)


def _unpack(body: bytes, compression: str, expected: int) -> bytes:
    """Return a POSTed raw body as sent with ``compression`` (none, lz4 without size, gzip)."""
    if compression in ("", "none", "uncompressed"):
        return body
    if compression == "lz4":
        try:
            return bytes(lz4.block.decompress(body, uncompressed_size=expected))
        except lz4.block.LZ4BlockError as exc:
            raise InvalidInputError(f"lz4 body does not decompress: {exc}") from None
    if compression == "gzip":
        return gunzip(body, "gzip body", limit=expected)
    raise InvalidInputError(f"unknown compression {compression!r}: use lz4 or gzip")


def point_block(lay: LabelLayout, p: Point3) -> Coord:
    """Return the block holding voxel ``p``."""
    b = lay.block
    return p.x // b.x, p.y // b.y, p.z // b.z
