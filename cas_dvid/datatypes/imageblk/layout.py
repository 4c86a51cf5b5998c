"""The imageblk family's voxel types, settings and key layout, and the info DVID shows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from cas_dvid.datatypes.geometry import Point3, check_int32, parse_block_size, parse_floats
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import Codec
from cas_dvid.strconv import is_uint, parse_float
from cas_dvid.trees.keys import BLOCK_KEY_SIZE, parse_block_key
from cas_dvid.versions import Instance

BLOCK_CLASS = b"\x17"  # DVID's imageblk block TKey class 23
EXTENTS_KEY = b"\x18"  # DVID's extents class 24
PYRAMID_SOURCE_KEY = b"\x19"
"""A pyramid level's record of the source tree it was computed from (``pyramid``)."""
DEFAULT_BLOCK = Point3(32, 32, 32)
COMPRESSIONS = {"lz4": Codec.LZ4, "zstd": Codec.ZSTD, "none": Codec.NONE, "jpeg": Codec.NONE}
COMPRESSION_NAMES = {
    "lz4": "LZ4 compression, level -1",
    "none": "No compression",
    "zstd": "Zstd compression, level 1",
}


@dataclass(frozen=True, slots=True)
class VoxelType:
    """One member of the imageblk family."""

    name: str
    dtype: np.dtype[Any]
    label: str


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

    @property
    def codec(self) -> Codec:
        """How block objects are compressed in the store."""
        return COMPRESSIONS[self.compression]

    @property
    def spatial(self) -> Spatial:
        """How the instance keys its blocks."""
        return Spatial(BLOCK_CLASS, self.block)


def show_key(key: bytes) -> str:
    """Return a tree key as people read it: ``block x_y_z`` (``@scale`` above 0), ``extents``."""
    if key == EXTENTS_KEY:
        return "extents"
    if key == PYRAMID_SOURCE_KEY:
        return "pyramid source"
    if len(key) == 1 + BLOCK_KEY_SIZE and key[:1] == BLOCK_CLASS:
        scale, z, y, x = parse_block_key(key[1:])
        return f"block {x}_{y}_{z}" + (f"@{scale}" if scale else "")
    return key.hex()


def _compression(text: str, vtype: VoxelType) -> tuple[str, int]:
    name, _, level = text.strip().lower().partition(":")
    if name not in COMPRESSIONS:
        raise InvalidInputError(f"Illegal compression specified: {text}")
    if name == "jpeg":
        if vtype.dtype != np.uint8:
            raise InvalidInputError(f"jpeg compression is only for uint8 data, not {vtype.name}")
        quality = int(level) if is_uint(level, digits=3) else 80 if not level else 0
        if not 1 <= quality <= 100:
            raise InvalidInputError(f"jpeg quality must be 1..100, got {level}")
        return name, quality
    if level:
        raise InvalidInputError(f"Illegal compression specified: {text}")
    return name, 80


def layout(vtype: VoxelType, settings: dict[str, str]) -> Layout:
    """Parse settings as DVID names them (keys lower-cased)."""
    block = parse_block_size(settings.get("blocksize"), DEFAULT_BLOCK)
    voxel = parse_floats(settings.get("voxelsize", "8,8,8"), 3, "VoxelSize")
    text = settings.get("voxelunits", "nanometers,nanometers,nanometers")
    units = tuple(u.strip() for u in text.split(","))
    if len(units) == 1:
        units = units * 3
    if len(units) != 3:
        raise InvalidInputError(f"VoxelUnits must have 1 or 3 names, got {text!r}")
    try:
        bg = vtype.dtype.type(parse_float(settings.get("background", "0").strip()))
    except (ValueError, OverflowError, InvalidInputError):
        raise InvalidInputError(
            f"Background must be a number, got {settings.get('background')!r}"
        ) from None
    compression, quality = _compression(settings.get("compression", "lz4"), vtype)
    return Layout(
        vtype,
        block,
        (voxel[0], voxel[1], voxel[2]),
        (units[0], units[1], units[2]),
        bg.item(),
        compression,
        quality,
    )


def layout_of(inst: Instance) -> Layout:
    """Return the layout of an imageblk instance."""
    try:
        vtype = VOXEL_TYPES[inst.typename]
    except KeyError:
        raise InvalidInputError(
            f"instance {inst.name!r} is a {inst.typename}, not a voxel type"
        ) from None
    return layout(vtype, inst.settings)


def compression_text(inst: Instance) -> str:
    """Return the Base.Compression text DVID shows, e.g. ``LZ4 compression, level -1``."""
    lay = layout_of(inst)
    if lay.compression == "jpeg":
        return f"jpeg compression, level {lay.jpeg_quality}"
    return COMPRESSION_NAMES[lay.compression]


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def extended_info(inst: Instance) -> dict[str, Any]:
    """DVID's ``Extended`` block of an imageblk instance's info (extents not filled in)."""
    lay = layout_of(inst)
    b = lay.block
    return {
        "Values": [{"DataType": lay.vtype.label, "Label": lay.vtype.label}],
        "Interpolable": True,
        "BlockSize": [b.x, b.y, b.z],
        "VoxelSize": [_number(v) for v in lay.voxel_size],
        "VoxelUnits": list(lay.units),
        "MinPoint": None,
        "MaxPoint": None,
        "MinIndex": None,
        "MaxIndex": None,
        "Background": lay.background,
        "GridStore": "",
        "ScaleLevel": 0,
    }


def with_extents(
    inst: Instance, extents: tuple[list[int], list[int]] | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return ``Extended`` with Min/Max points and indices filled in, and the ``Extents`` member."""
    ext = extended_info(inst)
    if extents is None:
        return ext, None
    lo, hi = extents
    b = layout_of(inst).block
    ext["MinPoint"], ext["MaxPoint"] = lo, hi
    ext["MinIndex"] = [v // s for v, s in zip(lo, b, strict=True)]
    ext["MaxIndex"] = [v // s for v, s in zip(hi, b, strict=True)]
    return ext, {"MinPoint": lo, "MaxPoint": hi}


def parse_extents(doc: Any) -> tuple[Point3, Point3]:
    """MinPoint and MaxPoint (inclusive) of a POSTed extents document: int32, Min <= Max."""
    shape = 'extents must be {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]} of integers'
    if not isinstance(doc, dict):
        raise InvalidInputError(shape)
    lo, hi = doc.get("MinPoint"), doc.get("MaxPoint")
    for p in (lo, hi):
        if not (isinstance(p, list) and len(p) == 3 and all(type(v) is int for v in p)):
            raise InvalidInputError(shape)
    assert isinstance(lo, list)
    assert isinstance(hi, list)
    check_int32([*lo, *hi], "extents coordinate")
    if any(a > b for a, b in zip(lo, hi, strict=True)):
        raise InvalidInputError(f"extents MinPoint {lo} must not exceed MaxPoint {hi}")
    return Point3(*lo), Point3(*hi)


def parse_resolution(doc: Any) -> tuple[float, float, float]:
    """Return a POSTed voxel size ``[x, y, z]``: three finite positive numbers (not booleans)."""
    ok = isinstance(doc, list) and len(doc) == 3
    ok = ok and all(type(v) in (int, float) and math.isfinite(v) and v > 0 for v in doc)
    if not ok:
        raise InvalidInputError(
            f"resolution must be a JSON list of 3 finite positive numbers, got {doc!r:.80}"
        )
    return float(doc[0]), float(doc[1]), float(doc[2])
