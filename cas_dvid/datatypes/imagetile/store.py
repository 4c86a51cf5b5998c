"""Reads and writes of imagetile / multiscale2d instances: metadata, tiles, stitched slices.

Tiles are BLOB objects holding the encoded image (PNG or JPEG) exactly as POSTed or
generated; equal tiles (every blank tile of a level, repeated content) are one object.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.base import (
    Context,
    TypeService,
    decode_values,
    encode_value,
    inline_payload,
    inline_value,
)
from cas_dvid.datatypes.imagetile.layout import (
    METADATA_KEY,
    TileSettings,
    metadata_json,
    parse_metadata,
    settings_of,
    tile_key,
)
from cas_dvid.datatypes.jobs import Jobs
from cas_dvid.datatypes.kernels.downsample import downres_2d
from cas_dvid.datatypes.kernels.tiles import Plane, plane_axes, tile_for_voxel, tile_pixel_shape
from cas_dvid.errors import InvalidInputError, LockedError
from cas_dvid.versions import At, Instance

Array = npt.NDArray[Any]


def decode_tile(data: bytes) -> Array:
    """Return the pixels of a stored PNG/JPEG tile as a 2-D uint8 array (copies)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"))


def encode_tile(img: Array, fmt: str) -> bytes:
    """Encode a 2-D uint8 tile as PNG (compress level 1, as the slice endpoints) or JPEG."""
    from PIL import Image

    buf = io.BytesIO()
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8), mode="L")
    if fmt == "png":
        pil.save(buf, "PNG", compress_level=1)
    else:
        pil.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def metadata_ops(doc: Any) -> dict[bytes, bytes]:
    """Return the tree entry that stores a metadata document (checked, as POST metadata)."""
    return {METADATA_KEY: inline_value(metadata_json(parse_metadata(doc)))}


class TileStore(TypeService):
    """The imagetile family's reads and writes (one per server), and its generation jobs."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = Jobs("tile generation")

    def info(self, at: At, inst: Instance) -> dict[str, Any]:
        """DVID's Extended block: the tile settings and the levels, if set."""
        s = settings_of(inst)
        meta = self.metadata_or_none(at, inst)
        return {
            "Extended": {
                "Source": s.source,
                "Levels": meta["Levels"] if meta else {},
                "Placeholder": s.placeholder,
                "Encoding": {"png": 1, "jpg": 2}[s.format],
                "Quality": 90,
            }
        }

    # -- metadata --------------------------------------------------------------------

    def metadata_or_none(self, at: At, inst: Instance) -> dict[str, Any] | None:
        """Return the stored metadata document (with ``Origin`` for multiscale2d), or None."""
        raw = self.tree.get(self.versions.root_at(at, inst), METADATA_KEY)
        return None if raw is None else dict(json.loads(inline_payload(raw)))

    def metadata(self, at: At, inst: Instance) -> dict[str, Any]:
        """Return the metadata as DVID's GET metadata shows it; 400 until it is set."""
        meta = self.metadata_or_none(at, inst)
        if meta is None:
            raise InvalidInputError(f"tile metadata for imagetile {inst.name!r} was not set")
        return {k: meta[k] for k in ("MinTileCoord", "MaxTileCoord", "Levels")}

    def set_metadata(self, at: At, inst: Instance, doc: Any, what: str = "metadata") -> None:
        """Store a metadata document (POST metadata)."""
        self.versions.write(at, inst, metadata_ops(doc), what)

    # -- tiles -----------------------------------------------------------------------

    def tile(
        self, at: At, inst: Instance, plane: Plane, scale: int, coord: tuple[int, int, int]
    ) -> bytes | None:
        """Return a stored tile's bytes, None when missing or negative (DVID's blank case)."""
        meta = self.metadata(at, inst)
        if str(scale) not in meta["Levels"]:
            raise InvalidInputError(f"Could not extract tiles for unspecified scale level {scale}")
        if min(coord) < 0:
            return None
        raw = self.tree.get(self.versions.root_at(at, inst), tile_key(plane, scale, coord))
        return None if raw is None else decode_values(self.store, [raw])[0]

    def blank_tile(self, at: At, inst: Instance, plane: Plane, scale: int) -> Array:
        """Return a black tile of the level's size (what DVID answers for a missing tile)."""
        size = self.metadata(at, inst)["Levels"][str(scale)]["TileSize"]
        return np.zeros(tile_pixel_shape(plane, size), np.uint8)

    def put_tile(
        self,
        at: At,
        inst: Instance,
        plane: Plane,
        scale: int,
        coord: tuple[int, int, int],
        body: bytes,
    ) -> None:
        """Store a POSTed tile verbatim (DVID does not check it either)."""
        if at.node.locked:
            raise LockedError(f"cannot write tiles at locked node {at.uuid}")
        key = tile_key(plane, scale, coord)
        self.versions.write(at, inst, {key: encode_value(self.store, body)[0]}, "tile")

    # -- stitched slices -------------------------------------------------------------

    def stitch(
        self, at: At, inst: Instance, plane: Plane, size_wh: tuple[int, int], offset: Any
    ) -> Array:
        """Return the scale-0 slice of ``size_wh`` at voxel ``offset`` (x, y, z) from tiles."""
        self.metadata(at, inst)  # 400 until set
        meta = self.metadata_or_none(at, inst) or {}
        tsize = meta["Levels"]["0"]["TileSize"]
        s = settings_of(inst)
        origin = meta.get("Origin") if s.relative else None
        placeholder = s.placeholder
        a, b, _ = plane_axes(plane)
        w, h = size_wh
        out = np.zeros((h, w), np.uint8)
        lo = list(offset)
        hi = list(offset)
        hi[a] += w - 1
        hi[b] += h - 1
        first = tile_for_voxel(plane, 0, lo, tsize, origin_xyz=origin)
        last = tile_for_voxel(plane, 0, hi, tsize, origin_xyz=origin)
        base = [0, 0, 0] if origin is None else list(origin)
        coords = [
            (ta, tb) for tb in range(first[b], last[b] + 1) for ta in range(first[a], last[a] + 1)
        ]
        for ta, tb in coords:
            coord = list(first)
            coord[a], coord[b] = ta, tb
            xyz = (coord[0], coord[1], coord[2])
            data = self.tile(at, inst, plane, 0, xyz)
            if data is None and not placeholder:
                continue
            img = decode_tile(data) if data else placeholder_tile(plane, xyz, tsize)
            x0 = base[a] + ta * tsize[a] - lo[a]
            y0 = base[b] + tb * tsize[b] - lo[b]
            _paste(out, img, x0, y0)
        return out

    def stitch_isotropic(
        self,
        at: At,
        inst: Instance,
        plane: Plane,
        size_wh: tuple[int, int],
        offset: Any,
        *,
        isotropic: bool,
    ) -> Array:
        """Return GET raw (or isotropic) as DVID's ``GetImage``: stitch, then rescale.

        Isotropic (``dvid.Isotropy2D``): with in-plane resolutions rx < ry the stitched
        slice has ``int(h * rx / ry + 0.5)`` rows (ry < rx: columns, likewise), then is
        scaled to ``w x h`` with DVID's box filter; equal resolutions change nothing.
        """
        w, h = size_wh
        if not isotropic:
            return self.stitch(at, inst, plane, (w, h), offset)
        res = self.metadata(at, inst)["Levels"]["0"]["Resolution"]
        a, b, _ = plane_axes(plane)
        rx, ry = float(res[a]), float(res[b])
        if rx == ry:
            return self.stitch(at, inst, plane, (w, h), offset)
        sw, sh = (w, int(h * rx / ry + 0.5)) if rx < ry else (int(w * ry / rx + 0.5), h)
        small = self.stitch(at, inst, plane, (max(1, sw), max(1, sh)), offset)
        return downres_2d(small, w, h)

    # -- generation jobs -------------------------------------------------------------

    def job(self, at: At, inst: Instance) -> dict[str, Any]:
        """Return the status of the last generation of ``inst`` at this version."""
        return self.jobs.status((at.uuid, inst.name), {"Tiles": 0})

    def source_settings(self, at: At, inst: Instance) -> tuple[TileSettings, Instance]:
        """Return the settings and the source instance a generation reads; 400 if unusable."""
        s = settings_of(inst)
        if not s.source:
            raise InvalidInputError(
                f"imagetile {inst.name!r} has no Source: set Source=<uint8blk name> to generate"
            )
        src = at.instance(s.source)
        if src.typename != "uint8blk":
            raise InvalidInputError(
                f"Cannot construct imagetile for non-uint8blk data: {s.source} ({src.typename})"
            )
        if at.node.locked:
            raise LockedError(f"cannot generate tiles at locked node {at.uuid}")
        return s, src


def placeholder_tile(plane: Plane, coord: tuple[int, int, int], tile_size: Any) -> Array:
    """Draw DVID's placeholder for a missing tile: white, two grey rulers, a black caption.

    As ``dvid.PlaceholderImage``: rulers (0xdd) along row and column 10, the message
    ``"{plane} Tile coord {coord} @ scale 0"``; the font differs (Pillow's default).
    """
    from PIL import Image, ImageDraw

    h, w = tile_pixel_shape(plane, tile_size)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    draw.line([(10, 10), (w - 11, 10)], fill=0xDD)
    draw.line([(10, 10), (10, h - 11)], fill=0xDD)
    x, y, z = coord
    draw.text((14, 14), f"{plane} Tile coord ({x},{y},{z}) @ scale 0", fill=0)
    return np.asarray(img)


def _paste(out: Array, img: Array, x0: int, y0: int) -> None:
    h, w = out.shape
    th, tw = img.shape
    sx, sy = max(0, -x0), max(0, -y0)
    ex, ey = min(tw, w - x0), min(th, h - y0)
    if ex > sx and ey > sy:
        out[y0 + sy : y0 + ey, x0 + sx : x0 + ex] = img[sy:ey, sx:ex]
