r"""imagetile tree layout and settings: DVID's 21-byte tile TKeys, the metadata entry.

A tile's tree key is DVID's own TKey (``datatype/imagetile/keys.go NewTKey``): the
7-byte DataShape (``3, 2, a, b, 0, 0, 0``: 3-D space, a 2-D shape over axes a, b),
the scale byte, the byte 3, then the tile coordinate as ZYX big-endian int32 with the
sign bit flipped (``Point3d.ToZYXBytes``).  Its first byte, 3, is DVID's tile TKey
class.  The metadata (``MinTileCoord``, ``MaxTileCoord``, ``Levels`` and, for
``multiscale2d``, the source origin) is one inline JSON entry under ``b"\x02metadata"``,
so it is versioned with the tiles.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from cas_dvid.datatypes.kernels.tiles import Plane, parse_plane, plane_axes
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import Instance

TILE_CLASS = 3
METADATA_KEY = b"\x02metadata"
FORMATS = {"png": "image/png", "jpg": "image/jpeg"}
OLD_NAME = "multiscale2d"
INTERNAL = ("Origin", "SourceRoot", "SourceBox", "Extents", "Planes")
"""Fields the generator keeps beside DVID's metadata (never shown by GET metadata)."""


@dataclass(frozen=True, slots=True)
class TileSettings:
    """An instance's settings, parsed once."""

    source: str
    tile_size: int
    format: str
    placeholder: bool
    relative: bool
    """Source-relative tile space (``multiscale2d``) rather than DVID's absolute one."""


def _bool(text: str, what: str) -> bool:
    low = text.strip().lower()
    if low not in ("true", "false", "1", "0"):
        raise InvalidInputError(
            f"Illegal setting for '{what}' (needs to be 'false', '0', 'true', or '1'): {text}"
        )
    return low in ("true", "1")


def check_settings(settings: dict[str, str]) -> dict[str, str]:
    """Validate Source, TileSize, Format (png|jpg) and Placeholder of a new instance."""
    parse_settings(settings, relative=False)
    return settings


def parse_settings(settings: dict[str, str], *, relative: bool) -> TileSettings:
    """Parse lower-cased settings; 400 with what was expected and what came."""
    text = settings.get("tilesize", "512").strip()
    if not text.isdigit() or not 1 <= int(text) <= 4096:
        raise InvalidInputError(f"TileSize must be an integer in 1..4096, got {text!r}")
    fmt = settings.get("format", "png").strip().lower()
    fmt = {"jpeg": "jpg"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InvalidInputError(f"imagetile Format must be png or jpg, got {fmt!r}")
    placeholder = _bool(settings.get("placeholder", "false"), "Placeholder")
    return TileSettings(settings.get("source", ""), int(text), fmt, placeholder, relative)


def settings_of(inst: Instance) -> TileSettings:
    """Return the parsed settings of an imagetile (or multiscale2d) instance."""
    return parse_settings(inst.settings, relative=inst.typename == OLD_NAME)


def tile_key(plane: Plane, scale: int, tile_xyz: tuple[int, int, int]) -> bytes:
    """Return DVID's TKey of a tile (see the module docstring)."""
    a, b, _ = plane_axes(plane)
    x, y, z = (c + (1 << 31) for c in tile_xyz)
    if not all(0 <= c < 1 << 32 for c in (x, y, z)):
        raise InvalidInputError(f"tile coordinate {tile_xyz} is outside the int32 range")
    return bytes((TILE_CLASS, 2, a, b, 0, 0, 0, scale, 3)) + struct.pack(">III", z, y, x)


def parse_tile_address(
    plane: str, scale: str, coord: str
) -> tuple[Plane, int, tuple[int, int, int]]:
    """Parse ``{plane}/{scale}/{x_y_z}`` of a tile URL with DVID's messages."""
    p = parse_plane(plane)
    if not scale.isdigit() or int(scale) > 255:
        raise InvalidInputError(f"Illegal tile scale: {scale} (expected an integer in 0..255)")
    parts = coord.split("_")
    try:
        if len(parts) != 3:
            raise ValueError
        x, y, z = (int(v) for v in parts)
    except ValueError:
        raise InvalidInputError(
            f"Illegal tile coordinate: {coord} (expected three integers x_y_z)"
        ) from None
    return p, int(scale), (x, y, z)


def show_key(key: bytes) -> str:
    """Return a tree key as people read it: ``tile xy/0/1_0_2600``, or ``metadata``."""
    if key == METADATA_KEY:
        return "metadata"
    if len(key) == 21 and key[0] == TILE_CLASS:
        z, y, x = (v - (1 << 31) for v in struct.unpack(">III", key[9:]))
        plane = {(0, 1): "xy", (0, 2): "xz", (1, 2): "yz"}.get((key[2], key[3]), "?")
        return f"tile {plane}/{key[7]}/{x}_{y}_{z}"
    return key.hex()


def parse_metadata(doc: Any) -> dict[str, Any]:
    """Check a POSTed metadata document; return it normalised (DVID's field names)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("Levels"), dict) or not doc["Levels"]:
        raise InvalidInputError(
            'metadata must be a JSON object with "MinTileCoord", "MaxTileCoord" and "Levels"'
        )
    out: dict[str, Any] = {}
    for name in ("MinTileCoord", "MaxTileCoord"):
        value = doc.get(name, [0, 0, 0])
        if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
            raise InvalidInputError(f"{name} must be a list of 3 integers, got {value!r}")
        out[name] = value
    levels: dict[str, Any] = {}
    for key, spec in doc["Levels"].items():
        if not str(key).isdigit() or not isinstance(spec, dict):
            raise InvalidInputError(f"bad level {key!r}: expected a scale number and an object")
        res, size = spec.get("Resolution"), spec.get("TileSize")
        if not (isinstance(res, list) and len(res) == 3 and all(_num(v) for v in res)):
            raise InvalidInputError(f"level {key}: Resolution must be 3 numbers, got {res!r}")
        if not (isinstance(size, list) and len(size) == 3 and all(_pos(v) for v in size)):
            raise InvalidInputError(f"level {key}: TileSize must be 3 positive ints, got {size!r}")
        levels[str(int(key))] = {"Resolution": res, "TileSize": size}
    if sorted(int(k) for k in levels) != list(range(len(levels))):
        raise InvalidInputError(f"Levels must be numbered 0..N-1, got {sorted(levels)}")
    out["Levels"] = levels
    for name in INTERNAL:
        if name in doc:
            out[name] = doc[name]
    return out


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


def _pos(v: Any) -> bool:
    return type(v) is int and v > 0


def metadata_json(doc: dict[str, Any]) -> bytes:
    """Return the stored form of a metadata document."""
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
