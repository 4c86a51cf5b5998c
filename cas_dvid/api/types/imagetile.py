"""HTTP for imagetile / multiscale2d: metadata, tile, tilekey, raw (stitched), generate."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import Services, go_json, read_body, read_json, send_json
from cas_dvid.api._images import IMAGE_TYPES, encode_image, parse_format
from cas_dvid.api._instances import RoutedHandler, handles
from cas_dvid.datatypes.geometry import parse_point, parse_size
from cas_dvid.datatypes.imageblk import ImageStore
from cas_dvid.datatypes.imagetile import TileStore
from cas_dvid.datatypes.imagetile.generate import Generator, parse_planes, start_job
from cas_dvid.datatypes.imagetile.layout import INTERNAL, parse_tile_address, settings_of
from cas_dvid.datatypes.kernels.tiles import parse_plane
from cas_dvid.errors import InvalidInputError, MissingDataError
from cas_dvid.strconv import is_uint
from cas_dvid.versions import At, Instance


def _tile_args(args: list[str]) -> list[str]:
    if len(args) not in (3, 4) or not all(args[:3]):
        raise InvalidInputError(
            "expected .../{plane}/{scale}/{x_y_z}[/{format}] after the endpoint"
        )
    return args


@handles(TileStore)
class TileHandler(RoutedHandler):
    """HTTP for tile instances: parse, one call to the TileStore, render."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.tiles = services.data.of(TileStore)
        self.images = services.data.of(ImageStore)
        self.routes = {
            "metadata": {"GET": self.get_metadata, "POST": self.post_metadata},
            "tile": {"GET": self.get_tile, "POST": self.post_tile},
            "tilekey": {"GET": self.get_tilekey},
            "raw": {"GET": self.get_raw},
            "isotropic": {"GET": self.get_isotropic},
            "generate": {"GET": self.get_generate, "POST": self.post_generate},
        }

    def get_metadata(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET metadata: DVID's JSON; 400 until set."""
        send_json(resp, self.tiles.metadata(at, inst))

    def post_metadata(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST metadata: replace MinTileCoord, MaxTileCoord and Levels."""
        doc = read_json(req, self.s.config.max_json_bytes, required=True)
        if isinstance(doc, dict):
            for name in INTERNAL:
                doc.pop(name, None)
            old = self.tiles.metadata_or_none(at, inst)
            if settings_of(inst).relative and old and "Origin" in old:
                doc["Origin"] = old["Origin"]
        self.tiles.set_metadata(at, inst, doc, "POST metadata")

    def get_tile(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET tile/{plane}/{scale}/{x_y_z}[/fmt]: stored bytes, else blank (404 with noblanks)."""
        plane, scale, coord = parse_tile_address(*_tile_args(args)[:3])
        data = self.tiles.tile(at, inst, plane, scale, coord)
        if data is None:
            if req.get_param("noblanks") == "true":
                raise MissingDataError(f"no tile {plane}/{scale}/{args[2]} in {inst.name!r}")
            fmt, quality = parse_format(args[3] if len(args) > 3 else "png")
            if fmt == "raw":
                raise InvalidInputError("tile format must be png or jpg")
            resp.content_type = IMAGE_TYPES[fmt]
            resp.data = encode_image(
                self.tiles.blank_tile(at, inst, plane, scale), fmt, quality, inst.typename
            )
            return
        resp.content_type = IMAGE_TYPES[settings_of(inst).format]
        resp.data = data

    def post_tile(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST tile/{plane}/{scale}/{x_y_z}: the body is the tile, stored verbatim."""
        plane, scale, coord = parse_tile_address(*_tile_args(args)[:3])
        body = read_body(req, self.s.config.max_body_bytes)
        if not body:
            raise InvalidInputError("POST tile needs the tile image as its body")
        self.tiles.put_tile(at, inst, plane, scale, coord, body)

    def get_tilekey(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET tilekey/...: ``{"key": "<hex>"}``, the tile's tree key (DVID's TKey)."""
        from cas_dvid.datatypes.imagetile.layout import tile_key

        plane, scale, coord = parse_tile_address(*_tile_args(args)[:3])
        resp.content_type = falcon.MEDIA_JSON
        resp.data = f'{{"key": "{tile_key(plane, scale, coord).hex()}"}}'.encode()

    def get_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET raw/{plane}/{w_h}/{x_y_z}[/fmt]: a scale-0 slice stitched from tiles."""
        self._slice(resp, at, inst, args, isotropic=False)

    def get_isotropic(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET isotropic/...: as raw, the voxel-size anisotropy of the plane scaled out (DVID)."""
        self._slice(resp, at, inst, args, isotropic=True)

    def _slice(
        self, resp: falcon.Response, at: At, inst: Instance, args: list[str], *, isotropic: bool
    ) -> None:
        if len(args) not in (3, 4):
            raise InvalidInputError("raw must be followed by shape/size/offset")
        plane = parse_plane(args[0])
        w, h = parse_size(args[1], 2)
        self.tiles.check_voxel_bytes(w * h)
        offset = tuple(parse_point(args[2]))
        img = self.tiles.stitch_isotropic(at, inst, plane, (w, h), offset, isotropic=isotropic)
        fmt, quality = parse_format(args[3] if len(args) > 3 else "png")
        if fmt == "raw":
            resp.content_type = "application/octet-stream"
            resp.data = img.tobytes()
            return
        resp.content_type = IMAGE_TYPES[fmt]
        resp.data = encode_image(img, fmt, quality, "uint8blk")

    def get_generate(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET generate: the status of the last generation at this version."""
        send_json(resp, self.tiles.job(at, inst))

    def post_generate(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST generate[?planes=xy,xz&scales=N]: start generating; 202 with the status."""
        scales_text = req.get_param("scales")
        if scales_text is not None and not is_uint(scales_text, digits=3):
            raise InvalidInputError(f"scales must be a positive integer, got {scales_text!r}")
        gen = Generator(
            self.tiles,
            self.images,
            at,
            inst,
            parse_planes(req.get_param("planes")),
            int(scales_text) if scales_text is not None else None,
        )
        resp.status = falcon.HTTP_202
        resp.content_type = falcon.MEDIA_JSON
        resp.data = go_json(start_job(gen))
