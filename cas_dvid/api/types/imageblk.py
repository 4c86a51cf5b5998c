"""HTTP for the imageblk family: raw/isotropic volumes and slices, blocks, streams, metadata."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import falcon

from cas_dvid.api._body import BufferStream
from cas_dvid.api._common import Services, read_body, read_json, send_json
from cas_dvid.api._images import (
    IMAGE_TYPES,
    OCTET,
    encode_image,
    is_dims,
    parse_dims,
    parse_format,
    volume_format,
)
from cas_dvid.api._instances import Endpoint, RoutedHandler, handles
from cas_dvid.api._voxels import SLAB_BYTES, send_array, stream_slabs, whole_claim
from cas_dvid.datatypes.geometry import (
    Box3,
    Point3,
    parse_ints,
    parse_point,
    parse_size,
    plane_box,
)
from cas_dvid.datatypes.imageblk import ImageStore, layout_of
from cas_dvid.datatypes.imageblk.pyramid import Pyramid, level_instance, start_downres
from cas_dvid.datatypes.kernels.arb import Vec3, parse_arb_request
from cas_dvid.datatypes.streams import Coord, pack_records
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects.ids import BytesLike
from cas_dvid.strconv import is_uint
from cas_dvid.versions import At, Instance

ND_JSON = "application/vnd.dvid-nd-data+json"


def _args(args: list[str], least: int, most: int, shape: str) -> list[str]:
    if not least <= len(args) <= most or not all(args[:least]):
        raise InvalidInputError(f"expected {shape}")
    return args


@handles(ImageStore)
class ImageHandler(RoutedHandler):
    """HTTP for imageblk instances: parse, one call to the ImageStore, render."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.images = services.data.of(ImageStore)
        self.routes = {
            "raw": {"GET": self.get_raw, "POST": self.post_raw},
            "isotropic": {"GET": self.get_isotropic},
            "arb": {"GET": self.get_arb},
            "blocks": {"GET": self.get_blocks, "POST": self.post_blocks},
            "subvolblocks": {"GET": self.get_subvolblocks},
            "specificblocks": {"GET": self.get_specificblocks},
            "metadata": {"GET": self.get_metadata},
            "downres": {"GET": self.get_downres, "POST": self.post_downres},
            "extents": {"POST": self.post_extents},
            "resolution": {"POST": self.post_resolution},
        }

    def route(
        self, req: falcon.Request, at: At, inst: Instance, endpoint: str, args: list[str]
    ) -> tuple[Endpoint, list[str]]:
        """Also take ``{plane}/raw/...``, the order of DVID's own README walk-through."""
        if is_dims(endpoint) and args and args[0] in ("raw", "isotropic"):
            endpoint, args = args[0], [endpoint, *args[1:]]
        return super().route(req, at, inst, endpoint, args)

    # -- raw and isotropic ---------------------------------------------------------------

    def get_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET raw/{dims}/{size}/{offset}[/{format}]."""
        self._get_volume(resp, at, inst, args, isotropic=False, req=req)

    def get_isotropic(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET isotropic/...: like raw, Z rescaled to the XY voxel size."""
        self._get_volume(resp, at, inst, args, isotropic=True, req=req)

    def _get_volume(
        self,
        resp: falcon.Response,
        at: At,
        inst: Instance,
        args: list[str],
        isotropic: bool,
        req: falcon.Request | None = None,
    ) -> None:
        _args(args, 3, 4, ".../{dims}/{size}/{offset}[/{format}]")
        scale = req.get_param("scale") if req is not None else None
        if scale is not None:
            inst = level_instance(at, inst, _scale(scale))
        axes = parse_dims(args[0])
        offset = parse_point(args[2])
        fmt_text = args[3] if len(args) > 3 else None
        if axes is None:
            box = Box3.at(offset, Point3(*parse_size(args[1], 3)))
            roi = req.get_param("roi") if req is not None else None
            att = (
                int(req.get_param_as_int("attenuation", min_value=0, max_value=7) or 0)
                if req
                else 0
            )
            fmt, quality = volume_format(fmt_text)
            nbytes = box.voxels * layout_of(inst).vtype.dtype.itemsize
            self.images.check_voxel_bytes(nbytes)
            if (
                fmt != "jpg"
                and not roi
                and not isotropic
                and nbytes > self.s.config.stream_bytes
                and req
            ):
                slabs = self.images.read_slabs(at, inst, box, SLAB_BYTES)
                stream_slabs(req, resp, self.s.budget, nbytes, slabs)
                return
            if req is not None:
                whole_claim(self.s.budget, req, nbytes)
            vol = self.images.read_box(at, inst, box, isotropic=isotropic, roi=roi, attenuation=att)
            if fmt == "jpg":
                z, y, x = vol.shape
                resp.content_type = "image/jpeg"
                resp.data = encode_image(vol.reshape(z * y, x), "jpg", quality, inst.typename)
                return
            send_array(resp, vol)
            return
        box = plane_box(axes, parse_size(args[1], 2), offset)
        img = self.images.read_slice(at, inst, axes, box, isotropic=isotropic)
        _send_image(resp, img, fmt_text or "png", inst)

    def get_arb(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET arb/{top left}/{top right}/{bottom left}/{res}[/{format}] (png default, jpg[:q])."""
        tl, tr, bl, res = parse_arb_args(args)
        img = self.images.read_arb(at, inst, tl, tr, bl, res)
        _send_image(resp, img, args[4] if len(args) > 4 and args[4] else "png", inst)

    def get_downres(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET downres: the status of the last pyramid build at this version."""
        send_json(resp, self.images.jobs.status((at.uuid, inst.name), {"Blocks": 0}))

    def post_downres(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST downres[?levels=N]: build or refresh NAME_1..NAME_N; 202 with the job status."""
        text = req.get_param("levels")
        levels = None if text is None else _scale(text, "levels")
        send_json(resp, start_downres(Pyramid(self.images, at, inst, levels)))
        resp.status = falcon.HTTP_202

    def post_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST raw/0_1_2/{size}/{offset}: a block-aligned subvolume, exact length."""
        _args(args, 3, 3, "raw/0_1_2/{size}/{offset}")
        if parse_dims(args[0]) is not None:
            raise InvalidInputError("can only POST 3d volumes (0_1_2), not 2d slices")
        box = Box3.at(parse_point(args[2]), Point3(*parse_size(args[1], 3)))
        expected = box.voxels * layout_of(inst).vtype.dtype.itemsize
        if req.content_length is not None and req.content_length != expected:
            raise InvalidInputError(
                f"voxels data was {req.content_length} bytes, expected {expected}"
            )
        self.images.check_voxel_bytes(expected)
        body = read_body(req, min(max(expected, 1), self.s.config.max_body_bytes))
        self.images.write_raw(at, inst, box, body, 'POST on endpoint "raw"')

    # -- blocks --------------------------------------------------------------------------------

    def _span(self, args: list[str]) -> tuple[Point3, int]:
        _args(args, 2, 2, "blocks/{bx_by_bz}/{spanX}")
        return parse_point(args[0], "block coordinate"), parse_size(args[1], 1, "spanX")[0]

    def get_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET blocks/{bx_by_bz}/{spanX}: raw blocks along X, missing ones as Background."""
        start, span = self._span(args)
        nbytes = layout_of(inst).block_bytes * span
        self.images.check_voxel_bytes(nbytes)
        whole_claim(self.s.budget, req, nbytes)
        resp.content_type = OCTET
        resp.data = self.images.read_span(at, inst, start, span)

    def post_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST blocks/{bx_by_bz}/{spanX}: spanX raw blocks along X."""
        start, span = self._span(args)
        expected = layout_of(inst).block_bytes * span
        self.images.check_voxel_bytes(expected)
        body = read_body(req, min(max(expected, 1), self.s.config.max_body_bytes))
        self.images.write_span(at, inst, start, span, body, 'POST on endpoint "blocks"')

    def get_subvolblocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET subvolblocks/{size}/{offset}: an aligned box's stored blocks as a record stream."""
        _args(args, 2, 2, "subvolblocks/{size}/{offset}")
        box = Box3.at(parse_point(args[1]), Point3(*parse_size(args[0], 3)))
        nbytes = box.voxels * layout_of(inst).vtype.dtype.itemsize
        self.images.check_voxel_bytes(nbytes)
        whole_claim(self.s.budget, req, nbytes)
        records = self.images.records_in_box(at, inst, box, _compression(req))
        _send_records(resp, records)

    def get_specificblocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET specificblocks?blocks=x,y,z,x,y,z,...: those blocks as a record stream."""
        _args(args, 0, 0, "specificblocks?blocks=x,y,z,...")
        coords = parse_block_list(req.get_param("blocks") or "")
        nbytes = len(coords) * layout_of(inst).block_bytes
        self.images.check_voxel_bytes(nbytes)
        whole_claim(self.s.budget, req, nbytes)
        records = self.images.records_of(at, inst, coords, _compression(req))
        _send_records(resp, records)

    # -- metadata ---------------------------------------------------------------------------

    def get_metadata(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET metadata: DVID's nd-data description."""
        send_json(resp, self.images.metadata(at, inst))
        resp.content_type = ND_JSON

    def post_extents(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST extents {"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}."""
        doc = read_json(req, self.s.config.max_json_bytes, required=True)
        self.images.set_extents(at, inst, doc, 'POST on endpoint "extents"')

    def post_resolution(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST resolution [x, y, z]: the voxel size (repo-wide, as in DVID)."""
        doc = read_json(req, self.s.config.max_json_bytes, required=True)
        self.images.set_resolution(at, inst, doc)


def _send_image(resp: falcon.Response, img: Any, fmt_text: str, inst: Instance) -> None:
    """Send a 2-D image in the format a path names (png, jpg[:q], tif, bmp or raw bytes)."""
    fmt, quality = parse_format(fmt_text)
    if fmt == "raw":
        resp.content_type = OCTET
        resp.data = img.tobytes()
        return
    resp.content_type = IMAGE_TYPES[fmt]
    resp.data = encode_image(img, fmt, quality, inst.typename)


def _scale(text: str, what: str = "scale") -> int:
    if not is_uint(text, digits=2):
        raise InvalidInputError(f"{what} must be a small non-negative integer, got {text[:40]!r}")
    return int(text)


def parse_arb_args(args: list[str]) -> tuple[Vec3, Vec3, Vec3, float]:
    """Parse the four required parts of ``arb/...`` (DVID's message when some are missing)."""
    if len(args) < 4 or not all(args[:4]) or len(args) > 5:
        raise InvalidInputError('"arb" must be followed by top-left/top-right/bottom-left/res')
    return parse_arb_request(args[0], args[1], args[2], args[3])


def parse_block_list(text: str) -> list[Coord]:
    """``x,y,z,x,y,z,...`` block coordinates (specificblocks)."""
    nums = [v for v in text.split(",") if v.strip()]
    if not nums or len(nums) % 3:
        raise InvalidInputError("blocks= needs a multiple of 3 integers: x,y,z,x,y,z,...")
    values = parse_ints(",".join(nums), len(nums), "blocks", ",")
    return [(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3)]


def _compression(req: falcon.Request) -> str:
    return (req.get_param("compression") or "").lower()


def _send_records(resp: falcon.Response, records: Sequence[tuple[Coord, BytesLike]]) -> None:
    """Answer a record stream, its payloads sent in place (``BufferStream``)."""
    body = BufferStream(pack_records(records))
    resp.content_type = OCTET
    resp.content_length = body.size
    resp.stream = body
