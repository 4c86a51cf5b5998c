"""imageblk: voxel volumes (uint8blk/grayscale8, uint16blk, uint32blk, uint64blk, float32blk).

Each block is a BLOB object holding its voxels (ZYX, x fastest, little-endian), stored
with the instance's codec; equal blocks (all background, or repeated) are one object.
The instance tree maps ``b"\\x17" + block_key(0, z, y, x)`` to the block's id, and
``b"\\x18"`` to the versioned extents (JSON).  ``jpeg`` compression (uint8 only) stores
each block as a JPEG of width X and height Y*Z, as DVID does.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from cas_dvid.datatypes.base import BLOB, JPEG_BLOB, DataType
from cas_dvid.datatypes.geometry import Box3, Point3, parse_block_size, parse_floats
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Codec, Kind, ObjectId
from cas_dvid.trees.keys import block_key, block_keys, parse_block_key
from cas_dvid.versions import At, Instance, VersionService

BLOCK_CLASS = b"\x17"  # DVID's imageblk block TKey class 23
EXTENTS_KEY = b"\x18"  # DVID's extents class 24
DEFAULT_BLOCK = "32,32,32"
COMPRESSIONS = {"lz4": Codec.LZ4, "zstd": Codec.ZSTD, "none": Codec.NONE, "jpeg": Codec.NONE}

Coord = tuple[int, int, int]  # block coordinate, x y z


@dataclass(frozen=True, slots=True)
class VoxelType:
    """One member of the imageblk family."""

    name: str
    dtype: np.dtype
    label: str

    @property
    def datatype(self) -> DataType:
        """Its registry entry."""
        aliases = ("grayscale8",) if self.name == "uint8blk" else ()
        return DataType(
            self.name,
            f"imageblk/{self.label}.go",
            "0.2",
            aliases,
            check_settings=lambda s: check_settings(self, s),
        )


VOXEL_TYPES = {
    t.name: t
    for t in (
        VoxelType("uint8blk", np.dtype("<u1"), "uint8"),
        VoxelType("uint16blk", np.dtype("<u2"), "uint16"),
        VoxelType("uint32blk", np.dtype("<u4"), "uint32"),
        VoxelType("uint64blk", np.dtype("<u8"), "uint64"),
        VoxelType("float32blk", np.dtype("<f4"), "float32"),
    )
}


@dataclass(frozen=True, slots=True)
class Layout:
    """An instance's settings, parsed once."""

    vtype: VoxelType
    block: Point3
    voxel_size: tuple[float, float, float]
    units: tuple[str, str, str]
    background: int | float
    compression: str
    jpeg_quality: int

    @property
    def block_shape(self) -> tuple[int, int, int]:
        """Numpy (z, y, x) shape of a block."""
        return self.block.z, self.block.y, self.block.x

    @property
    def block_bytes(self) -> int:
        """Bytes of one raw block."""
        return self.block.x * self.block.y * self.block.z * self.vtype.dtype.itemsize


def _compression(text: str, vtype: VoxelType) -> tuple[str, int]:
    name, _, level = text.strip().lower().partition(":")
    if name not in COMPRESSIONS:
        raise InvalidInputError(f"Illegal compression specified: {text}")
    if name == "jpeg":
        if vtype.dtype != np.uint8:
            raise InvalidInputError(f"jpeg compression is only for uint8 data, not {vtype.name}")
        quality = int(level) if level.isdigit() else 80
        if not 1 <= quality <= 100:
            raise InvalidInputError(f"jpeg quality must be 1..100, got {level}")
        return name, quality
    if level:
        raise InvalidInputError(f"Illegal compression specified: {text}")
    return name, 80


def check_settings(vtype: VoxelType, settings: dict[str, str]) -> dict[str, str]:
    """Validate a new instance's settings; return them (unchanged) if good."""
    layout(vtype, settings)
    return settings


def layout(vtype: VoxelType, settings: dict[str, str]) -> Layout:
    """Parse settings as DVID names them (keys lower-cased)."""
    block = parse_block_size(settings.get("blocksize", DEFAULT_BLOCK))
    voxel = parse_floats(settings.get("voxelsize", "8,8,8"), 3, "VoxelSize")
    units = tuple(
        u.strip() for u in settings.get("voxelunits", "nanometers,nanometers,nanometers").split(",")
    )
    if len(units) == 1:
        units = units * 3
    if len(units) != 3:
        raise InvalidInputError(
            f"VoxelUnits must have 1 or 3 names, got {settings.get('voxelunits')!r}"
        )
    try:
        bg = vtype.dtype.type(float(settings.get("background", "0")))
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"Background must be a number, got {settings.get('background')!r}"
        ) from None
    compression, quality = _compression(settings.get("compression", "lz4"), vtype)
    return Layout(vtype, block, voxel, units, bg.item(), compression, quality)  # type: ignore[arg-type]


def layout_of(inst: Instance) -> Layout:
    """The layout of an imageblk instance."""
    try:
        vtype = VOXEL_TYPES[inst.typename]
    except KeyError:
        raise InvalidInputError(
            f"instance {inst.name!r} is a {inst.typename}, not a voxel type"
        ) from None
    return layout(vtype, inst.settings)


def block_tree_key(x: int, y: int, z: int) -> bytes:
    """Tree key of block (x, y, z)."""
    return BLOCK_CLASS + block_key(0, z, y, x)


def coord_of(tree_key: bytes) -> Coord:
    """Block (x, y, z) of a tree key."""
    _, z, y, x = parse_block_key(tree_key[1:])
    return x, y, z


def _jpeg_encode(block: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    z, y, x = block.shape
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(block).reshape(z * y, x), mode="L").save(
        buf, "JPEG", quality=quality
    )
    return buf.getvalue()


def _jpeg_decode(data: bytes | memoryview, shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("L"))
    return img.reshape(shape)


def _copy_plan(
    box: Box3, b: Point3, bx: int, by: int, bz: int
) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """(destination in the output, source in the block) for block (bx, by, bz) within ``box``."""
    dst, src = [], []
    for lo, hi, start, edge in (
        (box.start.z, box.stop.z, bz * b.z, b.z),
        (box.start.y, box.stop.y, by * b.y, b.y),
        (box.start.x, box.stop.x, bx * b.x, b.x),
    ):
        a, e = max(lo, start), min(hi, start + edge)
        dst.append(slice(a - lo, e - lo))
        src.append(slice(a - start, e - start))
    return tuple(dst), tuple(src)


def _extents_update(box: Box3):  # type: ignore[no-untyped-def]
    """An update op growing the stored extents to include ``box``."""

    def grow(old: bytes | None) -> bytes:
        lo, hi = list(box.start), [v - 1 for v in box.stop]
        if old is not None:
            doc = json.loads(old[1:])
            lo = [min(a, b) for a, b in zip(lo, doc["MinPoint"], strict=True)]
            hi = [max(a, b) for a, b in zip(hi, doc["MaxPoint"], strict=True)]
        return b"\x00" + json.dumps({"MinPoint": lo, "MaxPoint": hi}).encode()

    return grow


class ImageStore:
    """Reads and writes of imageblk instances at a version."""

    def __init__(self, versions: VersionService) -> None:
        self.versions = versions
        self.store = versions.store
        self.tree = versions.tree

    # -- blocks -------------------------------------------------------------------

    def stored(self, at: At, inst: Instance, coords: Sequence[Coord]) -> dict[Coord, bytes]:
        """Tree values (tag + blob id) of the stored blocks among ``coords``."""
        if not coords:
            return {}
        zyx = [(z, y, x) for x, y, z in coords]
        keys = [BLOCK_CLASS + k for k in block_keys(0, zyx)]
        found = self.tree.get_many(self.versions.root_at(at, inst), keys)
        return {c: found[k] for c, k in zip(coords, keys, strict=True) if k in found}

    def stored_in_box(
        self, at: At, inst: Instance, first: Point3, last: Point3
    ) -> dict[Coord, bytes]:
        """Tree values of stored blocks with coordinates in [first, last] (inclusive)."""
        xs = np.arange(first.x, last.x + 1)
        ys = np.arange(first.y, last.y + 1)
        zs = np.arange(first.z, last.z + 1)
        if not (len(xs) and len(ys) and len(zs)):
            return {}
        grid = np.stack(np.meshgrid(zs, ys, xs, indexing="ij"), -1).reshape(-1, 3)
        keys = [BLOCK_CLASS + k for k in block_keys(0, grid)]
        found = self.tree.get_many(self.versions.root_at(at, inst), keys)
        return {
            (int(x), int(y), int(z)): found[k]
            for (z, y, x), k in zip(grid.tolist(), keys, strict=True)
            if k in found
        }

    def decode(self, lay: Layout, values: Sequence[bytes]) -> list[np.ndarray]:
        """Block arrays for tree values, fetched on the store's pool (read-only views)."""
        return self.store.map(lambda v: self._block(lay, v), list(values))

    def raw_blocks(
        self, at: At, inst: Instance, coords: Sequence[Coord]
    ) -> dict[Coord, np.ndarray]:
        """Arrays of the stored blocks among ``coords``."""
        lay = layout_of(inst)
        stored = self.stored(at, inst, coords)
        arrays = self.decode(lay, list(stored.values()))
        return dict(zip(stored, arrays, strict=True))

    def write_blocks(
        self,
        at: At,
        inst: Instance,
        blocks: dict[Coord, np.ndarray],
        what: str,
        box: Box3 | None = None,
    ) -> None:
        """Store whole blocks (ZYX arrays of the block shape) in one tree apply."""
        if not blocks:
            return
        lay = layout_of(inst)
        coords = list(blocks)
        if lay.compression == "jpeg":
            payloads: list[bytes | memoryview] = self.store.map(
                lambda c: _jpeg_encode(blocks[c], lay.jpeg_quality), coords
            )
            tag = JPEG_BLOB
        else:
            payloads = [
                np.ascontiguousarray(blocks[c], dtype=lay.vtype.dtype).data.cast("B")
                for c in coords
            ]
            tag = BLOB
        ids = self.store.put_many([(Kind.BLOB, p) for p in payloads], COMPRESSIONS[lay.compression])
        ops: dict[bytes, object] = {
            block_tree_key(*c): bytes((tag,)) + oid for c, oid in zip(coords, ids, strict=True)
        }
        if box is None:
            xs, ys, zs = zip(*coords, strict=True)
            b = lay.block
            box = Box3(
                Point3(min(xs) * b.x, min(ys) * b.y, min(zs) * b.z),
                Point3((max(xs) + 1) * b.x, (max(ys) + 1) * b.y, (max(zs) + 1) * b.z),
            )
        ops[EXTENTS_KEY] = _extents_update(box)
        self.versions.write(at, inst, ops, what)  # type: ignore[arg-type]

    # -- subvolumes -------------------------------------------------------------------

    def read(self, at: At, inst: Instance, box: Box3, out: np.ndarray | None = None) -> np.ndarray:
        """The voxels of ``box`` as a ZYX array; unwritten voxels are zero (as DVID).

        PERF: fetching, verifying and copying run on the store's pool in a few chunks of
        blocks (hashing, file reads and numpy copies release the GIL), and only the
        regions of missing blocks are zeroed.
        """
        lay = layout_of(inst)
        size = box.size
        if out is None:
            out = np.empty((size.z, size.y, size.x), dtype=lay.vtype.dtype)
        first, last = box.blocks(lay.block)
        stored = self.stored_in_box(at, inst, first, last)
        b = lay.block
        plans = []
        for bz in range(first.z, last.z + 1):
            for by in range(first.y, last.y + 1):
                for bx in range(first.x, last.x + 1):
                    plans.append((stored.get((bx, by, bz)), _copy_plan(box, b, bx, by, bz)))
        chunks = max(1, min(len(plans), 2 * self.store.threads))
        work = [plans[i::chunks] for i in range(chunks)]
        self.store.map(lambda part: self._fill(lay, out, part), work)  # type: ignore[arg-type]
        return out

    def _fill(
        self, lay: Layout, out: np.ndarray, plans: list[tuple[bytes | None, tuple[slice, slice]]]
    ) -> None:
        for value, (dst, src) in plans:
            if value is None:
                out[dst] = 0
            else:
                out[dst] = self._block(lay, value)[src]

    def _block(self, lay: Layout, value: bytes) -> np.ndarray:
        data = self.store.get(ObjectId(value[1:]), Kind.BLOB)
        if value[0] == JPEG_BLOB:
            return _jpeg_decode(data, lay.block_shape)
        if data.nbytes != lay.block_bytes:
            raise InvalidInputError(
                f"stored block has {data.nbytes} bytes, expected {lay.block_bytes}"
            )
        return np.frombuffer(data, dtype=lay.vtype.dtype).reshape(lay.block_shape)

    def write(self, at: At, inst: Instance, offset: Point3, data: np.ndarray, what: str) -> None:
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

    # -- extents ------------------------------------------------------------------------

    def extents(self, at: At, inst: Instance) -> tuple[list[int], list[int]] | None:
        """(MinPoint, MaxPoint) written so far at this version, or None."""
        raw = self.tree.get(self.versions.root_at(at, inst), EXTENTS_KEY)
        if raw is None:
            return None
        doc = json.loads(raw[1:])
        return doc["MinPoint"], doc["MaxPoint"]

    def set_extents(
        self, at: At, inst: Instance, lo: Iterable[int], hi: Iterable[int], what: str
    ) -> None:
        """Replace the extents (POST extents)."""
        doc = {"MinPoint": list(lo), "MaxPoint": list(hi)}
        self.versions.write(at, inst, {EXTENTS_KEY: b"\x00" + json.dumps(doc).encode()}, what)


def extended_info(inst: Instance) -> dict[str, object]:
    """DVID's ``Extended`` block of an imageblk instance's info."""
    lay = layout_of(inst)
    b = lay.block
    return {
        "Values": [{"DataType": lay.vtype.label, "Label": lay.vtype.label}],
        "Interpolable": True,
        "BlockSize": [b.x, b.y, b.z],
        "VoxelSize": [int(v) if float(v).is_integer() else v for v in lay.voxel_size],
        "VoxelUnits": list(lay.units),
        "MinPoint": None,
        "MaxPoint": None,
        "MinIndex": None,
        "MaxIndex": None,
        "Background": lay.background,
        "GridStore": "",
        "ScaleLevel": 0,
    }


def extents_info(
    extents: tuple[list[int], list[int]] | None, inst: Instance
) -> tuple[dict[str, object], object]:
    """Extended with Min/Max points and indices filled in, and the ``Extents`` member."""
    ext = extended_info(inst)
    if extents is None:
        return ext, None
    lo, hi = extents
    b = layout_of(inst).block
    ext["MinPoint"], ext["MaxPoint"] = lo, hi
    ext["MinIndex"] = [v // s for v, s in zip(lo, b, strict=True)]
    ext["MaxIndex"] = [v // s for v, s in zip(hi, b, strict=True)]
    return ext, {"MinPoint": lo, "MaxPoint": hi}
