"""imageblk endpoints: raw/isotropic volumes and slices, blocks, block streams, metadata."""

from __future__ import annotations

import io
import struct

import falcon
import lz4.block
import numpy as np

from cas_dvid.api._common import Services, read_body, read_json, send_json
from cas_dvid.api._instances import RoutedHandler
from cas_dvid.datatypes import imageblk
from cas_dvid.datatypes.geometry import Box3, Point3, parse_point, parse_size
from cas_dvid.datatypes.imageblk import ImageStore, Layout, layout_of
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.sync.partial import require_covered
from cas_dvid.versions import At, Instance

OCTET = "application/octet-stream"
ND_JSON = "application/vnd.dvid-nd-data+json"
RECORD = struct.Struct("<iiii")
DIMS_2D = {"xy": (0, 1), "0_1": (0, 1), "xz": (0, 2), "0_2": (0, 2), "yz": (1, 2), "1_2": (1, 2)}
DIMS_3D = {"0_1_2", "vol", "xyz"}
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff", "bmp": "image/bmp"}


def parse_dims(text: str) -> tuple[int, int] | None:
    """2-D axes for ``xy``-like dims, None for 3-D; 400 for anything else."""
    dims = text.replace(",", "_")
    if dims in DIMS_2D:
        return DIMS_2D[dims]
    if dims in DIMS_3D:
        return None
    raise InvalidInputError(
        f"unsupported dims {text!r}: expected xy, xz, yz, 0_1, 0_2, 1_2, 0_1_2 or vol"
    )


def slice_box(axes: tuple[int, int], size: tuple[int, ...], offset: Point3) -> Box3:
    """The one-voxel-thick box of a 2-D request."""
    extent = [1, 1, 1]
    extent[axes[0]], extent[axes[1]] = size
    return Box3.at(offset, Point3(*extent))


def parse_format(text: str) -> tuple[str, int]:
    """``png``, ``jpg[:q]``/``jpeg[:q]``, ``tif``, ``bmp`` or ``raw``."""
    name, _, q = text.lower().partition(":")
    name = {"jpeg": "jpg", "tiff": "tif"}.get(name, name)
    if name not in (*IMAGE_TYPES, "raw"):
        raise InvalidInputError(
            f"unsupported image format {text!r}: use png, jpg[:quality], tif, bmp or raw"
        )
    quality = 80
    if q:
        if name != "jpg" or not q.isdigit() or not 1 <= int(q) <= 100:
            raise InvalidInputError(f"bad format {text!r}: only jpg takes a :quality of 1..100")
        quality = int(q)
    return name, quality


def encode_image(img: np.ndarray, fmt: str, quality: int, vtype: str) -> bytes:
    """A 2-D array as an image file.

    PERF: PNG at compress_level 1 is several times faster than Pillow's default and
    still a valid PNG (PERF-NOTES); slices are for viewing, not archiving.
    """
    from PIL import Image

    if img.dtype == np.uint8:
        pil = Image.fromarray(np.ascontiguousarray(img), mode="L")
    elif img.dtype == np.uint16 and fmt in ("png", "tif"):
        pil = Image.fromarray(np.ascontiguousarray(img.astype("<u2")), mode="I;16")
    else:
        raise InvalidInputError(f"format {fmt} is not available for {vtype} data; use raw")
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, "PNG", compress_level=1)
    elif fmt == "jpg":
        pil.save(buf, "JPEG", quality=quality)
    elif fmt == "tif":
        pil.save(buf, "TIFF")
    else:
        pil.save(buf, "BMP")
    return buf.getvalue()


class ImageHandler(RoutedHandler):
    """HTTP for imageblk instances."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.images = ImageStore(services.versions)
        self.routes = {
            "raw": {"GET": self.get_raw, "POST": self.post_raw},
            "isotropic": {"GET": self.get_isotropic},
            "blocks": {"GET": self.get_blocks, "POST": self.post_blocks},
            "subvolblocks": {"GET": self.get_subvolblocks},
            "specificblocks": {"GET": self.get_specificblocks},
            "metadata": {"GET": self.get_metadata},
            "extents": {"POST": self.post_extents},
            "resolution": {"POST": self.post_resolution},
        }

    def _covered(self, at: At, inst: Instance, box: Box3) -> None:
        """A partial (box-pulled) version refuses reads outside what it holds, not zeros."""
        require_covered(
            at, inst, (box.start.x, box.start.y, box.start.z), (box.stop.x, box.stop.y, box.stop.z)
        )

    def _covered_blocks(
        self, at: At, inst: Instance, lay: Layout, coords: list[tuple[int, int, int]]
    ) -> None:
        b = lay.block
        for x, y, z in coords:
            self._covered(
                at,
                inst,
                Box3(
                    Point3(x * b.x, y * b.y, z * b.z),
                    Point3((x + 1) * b.x, (y + 1) * b.y, (z + 1) * b.z),
                ),
            )

    def _limit(self, box: Box3, lay: Layout) -> None:
        nbytes = box.voxels * lay.vtype.dtype.itemsize
        if nbytes > self.s.config.max_voxel_bytes:
            raise InvalidInputError(
                f"request for {nbytes} bytes of voxels is over the server's limit of "
                f"{self.s.config.max_voxel_bytes} bytes (max_voxel_bytes)"
            )

    # -- raw and isotropic ---------------------------------------------------------------

    def get_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET raw/{dims}/{size}/{offset}[/{format}]."""
        self._get_volume(req, resp, at, inst, args, isotropic=False)

    def get_isotropic(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET isotropic/...: like raw, Z rescaled to the XY voxel size."""
        self._get_volume(req, resp, at, inst, args, isotropic=True)

    def _get_volume(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        at: At,
        inst: Instance,
        args: list[str],
        isotropic: bool,
    ) -> None:
        if len(args) < 3:
            raise InvalidInputError("expected .../{dims}/{size}/{offset}[/{format}]")
        lay = layout_of(inst)
        axes = parse_dims(args[0])
        offset = parse_point(args[2])
        if axes is None:
            size = Point3(*parse_size(args[1], 3))
            box = Box3.at(offset, size)
            self._limit(box, lay)
            self._covered(at, inst, box)
            vol = self.images.read(at, inst, box)
            if isotropic:
                vol = _isotropic(vol, lay, 0)
            if len(args) > 3 and parse_format(args[3])[0] == "jpg":
                z, y, x = vol.shape
                resp.content_type = "image/jpeg"
                resp.data = encode_image(
                    vol.reshape(z * y, x), "jpg", parse_format(args[3])[1], inst.typename
                )
                return
            resp.content_type = OCTET
            resp.data = vol.tobytes()
            return
        box = slice_box(axes, parse_size(args[1], 2), offset)
        self._limit(box, lay)
        self._covered(at, inst, box)
        img = self._slice(at, inst, box, axes)
        if isotropic and axes != (0, 1):
            img = _isotropic(img[:, None, :], lay, 0)[:, 0, :]
        fmt, quality = parse_format(args[3] if len(args) > 3 else "png")
        if fmt == "raw":
            resp.content_type = OCTET
            resp.data = img.tobytes()
            return
        resp.content_type = IMAGE_TYPES[fmt]
        resp.data = encode_image(img, fmt, quality, inst.typename)

    def _slice(self, at: At, inst: Instance, box: Box3, axes: tuple[int, int]) -> np.ndarray:
        vol = self.images.read(at, inst, box)
        if axes == (0, 1):
            return np.asarray(vol[0])
        if axes == (0, 2):
            return np.asarray(vol[:, 0, :])
        return np.asarray(vol[:, :, 0])

    def post_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST raw/0_1_2/{size}/{offset}: a block-aligned subvolume, exact length."""
        if len(args) < 3:
            raise InvalidInputError("expected raw/0_1_2/{size}/{offset}")
        if parse_dims(args[0]) is not None:
            raise InvalidInputError("can only POST 3d volumes (0_1_2), not 2d slices")
        lay = layout_of(inst)
        size = Point3(*parse_size(args[1], 3))
        offset = parse_point(args[2])
        box = Box3.at(offset, size)
        self._limit(box, lay)
        if not box.aligned(lay.block):
            raise InvalidInputError("cannot store voxels in non-block aligned geometry")
        expected = box.voxels * lay.vtype.dtype.itemsize
        if req.content_length is not None and req.content_length != expected:
            raise InvalidInputError(
                f"voxels data was {req.content_length} bytes, expected {expected}"
            )
        body = read_body(req, max(expected, 1))
        if len(body) != expected:
            raise InvalidInputError(f"voxels data was {len(body)} bytes, expected {expected}")
        vol = np.frombuffer(body, dtype=lay.vtype.dtype).reshape(size.z, size.y, size.x)
        self.images.write(at, inst, offset, vol, 'POST on endpoint "raw"')

    # -- blocks --------------------------------------------------------------------------------

    def _span(self, args: list[str]) -> tuple[Point3, int]:
        if len(args) < 2:
            raise InvalidInputError("expected blocks/{bx_by_bz}/{spanX}")
        start = parse_point(args[0], "block coordinate")
        span = parse_size(args[1], 1, "spanX")[0]
        return start, span

    def get_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET blocks/{bx_by_bz}/{spanX}: raw blocks along X, missing ones filled with Background."""
        lay = layout_of(inst)
        start, span = self._span(args)
        self._limit(
            Box3.at(Point3(0, 0, 0), Point3(lay.block.x * span, lay.block.y, lay.block.z)), lay
        )
        coords = [(start.x + i, start.y, start.z) for i in range(span)]
        self._covered_blocks(at, inst, lay, coords)
        got = self.images.raw_blocks(at, inst, coords)
        fill = np.full(lay.block_shape, lay.background, dtype=lay.vtype.dtype).tobytes()
        resp.content_type = OCTET
        resp.data = b"".join(got[c].tobytes() if c in got else fill for c in coords)

    def post_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST blocks/{bx_by_bz}/{spanX}: spanX raw blocks along X."""
        lay = layout_of(inst)
        start, span = self._span(args)
        expected = lay.block_bytes * span
        body = read_body(req, max(expected, 1))
        if len(body) != expected:
            raise InvalidInputError(
                f"blocks data was {len(body)} bytes, expected {expected} for {span} blocks"
            )
        arr = np.frombuffer(body, dtype=lay.vtype.dtype).reshape(span, *lay.block_shape)
        blocks = {(start.x + i, start.y, start.z): arr[i] for i in range(span)}
        self.images.write_blocks(at, inst, blocks, 'POST on endpoint "blocks"')

    def get_subvolblocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET subvolblocks/{size}/{offset}: stored blocks of an aligned box as DVID's record stream."""
        if len(args) < 2:
            raise InvalidInputError("expected subvolblocks/{size}/{offset}")
        lay = layout_of(inst)
        box = Box3.at(parse_point(args[1]), Point3(*parse_size(args[0], 3)))
        if not box.aligned(lay.block):
            raise InvalidInputError("subvolblocks requires a block-aligned subvolume")
        self._limit(box, lay)
        self._covered(at, inst, box)
        first, last = box.blocks(lay.block)
        stored = self.images.stored_in_box(at, inst, first, last)
        self._stream(req, resp, lay, stored)

    def get_specificblocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET specificblocks?blocks=x,y,z,x,y,z,...: those blocks as a record stream."""
        lay = layout_of(inst)
        text = req.get_param("blocks") or ""
        try:
            nums = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise InvalidInputError(
                f"blocks must be comma-separated integers, got {text[:80]!r}"
            ) from None
        if not nums or len(nums) % 3:
            raise InvalidInputError("blocks= needs a multiple of 3 integers: x,y,z,x,y,z,...")
        coords = [tuple(nums[i : i + 3]) for i in range(0, len(nums), 3)]
        if len(coords) * lay.block_bytes > self.s.config.max_voxel_bytes:
            raise InvalidInputError(
                f"request is over the server's limit of {self.s.config.max_voxel_bytes} bytes"
            )
        self._covered_blocks(at, inst, lay, coords)  # type: ignore[arg-type]
        stored = self.images.stored(at, inst, coords)  # type: ignore[arg-type]
        self._stream(req, resp, lay, stored)

    def _stream(
        self, req: falcon.Request, resp: falcon.Response, lay: Layout, stored: dict
    ) -> None:  # type: ignore[type-arg]
        mode = (req.get_param("compression") or "").lower()
        if mode not in ("", "uncompressed", "jpeg"):
            raise InvalidInputError(f"unknown compression {mode!r}: use uncompressed or jpeg")
        coords = list(stored)
        values = [stored[c] for c in coords]
        if mode == "jpeg" and lay.compression != "jpeg":
            raise InvalidInputError(
                "compression=jpeg needs an instance stored with jpeg compression"
            )
        if mode == "jpeg" or (not mode and lay.compression == "jpeg"):
            ids = [ObjectId(v[1:]) for v in values]
            payloads = [bytes(p) for p in self.images.store.get_many(ids)]
        else:
            arrays = self.images.decode(lay, values)
            payloads = [
                _payload(a, "" if mode == "uncompressed" else lay.compression) for a in arrays
            ]
        parts = []
        for (x, y, z), p in zip(coords, payloads, strict=True):
            parts.append(RECORD.pack(x, y, z, len(p)))
            parts.append(p)
        resp.content_type = OCTET
        resp.data = b"".join(parts)

    # -- metadata ---------------------------------------------------------------------------

    def get_metadata(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET metadata: DVID's nd-data description."""
        lay = layout_of(inst)
        extents = self.images.extents(at, inst)
        ext, _ = imageblk.extents_info(extents, inst)
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
        send_json(resp, {"Axes": axes, "Properties": ext})
        resp.content_type = ND_JSON

    def post_extents(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST extents {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}."""
        doc = read_json(req, self.s.config.max_json_bytes, required=True)
        try:
            lo, hi = doc["MinPoint"], doc["MaxPoint"]
            if not all(isinstance(v, int) for v in (*lo, *hi)) or len(lo) != 3 or len(hi) != 3:
                raise TypeError
        except (TypeError, KeyError):
            raise InvalidInputError(
                'extents must be {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}'
            ) from None
        self.images.set_extents(at, inst, lo, hi, 'POST on endpoint "extents"')

    def post_resolution(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST resolution [x, y, z]: the voxel size (repo-wide, as in DVID)."""
        doc = read_json(req, self.s.config.max_json_bytes, required=True)
        if not (
            isinstance(doc, list)
            and len(doc) == 3
            and all(isinstance(v, int | float) and v > 0 for v in doc)
        ):
            raise InvalidInputError("resolution must be a JSON list of 3 positive numbers")
        text = ",".join(repr(float(v)) for v in doc)
        self.s.versions.update_instance(
            at.uuid, inst.name, lambda i: i.settings.__setitem__("voxelsize", text)
        )


def _payload(arr: np.ndarray, compression: str) -> bytes:
    """A block as DVID serialises it in streams: lz4 as ``u32 size`` + LZ4 block, else raw."""
    raw = np.ascontiguousarray(arr).tobytes()
    if compression == "lz4":
        return struct.pack("<I", len(raw)) + bytes(lz4.block.compress(raw, store_size=False))
    if compression == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(level=1).compress(raw))
    return raw


def _isotropic(vol: np.ndarray, lay: Layout, axis: int) -> np.ndarray:
    """Rescale Z to the X voxel size by nearest neighbour (no-op when isotropic)."""
    factor = lay.voxel_size[2] / lay.voxel_size[0]
    if abs(factor - 1.0) < 1e-9:
        return vol
    n = max(1, round(vol.shape[axis] * factor))
    idx = np.minimum((np.arange(n) / factor).astype(int), vol.shape[axis] - 1)
    return np.asarray(np.take(vol, idx, axis=axis))
