"""HTTP for roi instances: parse, one call to the RoiStore, render DVID's bytes."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import Services, read_body
from cas_dvid.api._images import OCTET
from cas_dvid.api._instances import RoutedHandler, handles
from cas_dvid.datatypes.geometry import parse_point, parse_size
from cas_dvid.datatypes.roi import RoiStore
from cas_dvid.datatypes.roi.query import inclusions_json
from cas_dvid.datatypes.roi.spans import spans_json
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance

Req = falcon.Request
Resp = falcon.Response


@handles(RoiStore)
class RoiHandler(RoutedHandler):
    """roi, ptquery, mask and partition."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.rois = services.data.of(RoiStore)
        self.limit = services.config.max_json_bytes
        self.routes = {
            "roi": {"GET": self.get_roi, "POST": self.post_roi, "DELETE": self.delete_roi},
            "ptquery": {"POST": self.post_ptquery},
            "mask": {"GET": self.get_mask},
            "partition": {"GET": self.get_partition},
        }

    def get_roi(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET roi: the spans, sorted."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = spans_json(self.rois.spans(at, inst))

    def post_roi(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST roi: replace the ROI at this version."""
        self.rois.put(at, inst, read_body(req, self.limit))

    def delete_roi(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """DELETE roi."""
        self.rois.delete(at, inst)

    def post_ptquery(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST ptquery (allowed on locked nodes: it writes nothing)."""
        inside = self.rois.ptquery(at, inst, read_body(req, self.limit))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = inclusions_json(inside)

    def get_mask(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET mask/0_1_2/{size}/{offset}."""
        if len(args) != 3 or args[0] != "0_1_2":
            raise InvalidInputError("mask needs /0_1_2/{size}/{offset}")
        size, offset = parse_size(args[1], 3), parse_point(args[2])
        vol = self.rois.mask(at, inst, size, (offset.x, offset.y, offset.z))
        resp.content_type = OCTET
        resp.data = vol.tobytes()

    def get_partition(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET partition?batchsize=N[&optimized=true]."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.rois.partition(
            at, inst, req.get_param("batchsize"), req.get_param("optimized")
        )
