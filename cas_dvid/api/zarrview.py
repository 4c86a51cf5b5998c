"""GET /zarr/{version}/{instance}/...: a read-only Zarr v3 store over HTTP.

``version`` is anything the API resolves (UUID prefix, ``uuid:branch``) or a commit
id. Keys: ``zarr.json``, ``c/z/y/x`` (an array) or ``s{N}/zarr.json``,
``s{N}/c/z/y/x`` (a labelmap pyramid). A chunk never written is a 404, which
zarr reads as the fill value. ETags are object ids; answers at a commit id never
change, so they carry a year-long immutable Cache-Control, and a matching
If-None-Match answers 304.
"""

from __future__ import annotations

import json

import falcon

from cas_dvid.api._common import Services
from cas_dvid.datatypes.zarrview import Version, ZarrVolumes
from cas_dvid.errors import InvalidInputError
from cas_dvid.strconv import is_int

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class ZarrRoute:
    """Every key of the zarr view."""

    def __init__(self, services: Services) -> None:
        """Serve through ``services``."""
        self.s = services
        self.vols = ZarrVolumes(services.versions, services.data)

    def on_get(
        self, req: falcon.Request, resp: falcon.Response, version: str, data: str, key: str = ""
    ) -> None:
        """Answer ``zarr.json`` or a chunk."""
        v = self.vols.resolve(version)
        inst = v.at.instance(data)
        parts = [p for p in key.split("/") if p]
        pyramid = self.vols.levels(inst) > 1
        scale = 0
        if pyramid and parts and parts[0] != "zarr.json":
            scale = _int(parts[0][1:], "scale") if parts[0].startswith("s") else -1
            if scale < 0:
                raise falcon.HTTPNotFound(description=f"no zarr key {key!r}")
            parts = parts[1:]
        if parts == ["zarr.json"]:
            if pyramid and key.strip("/") == "zarr.json":
                doc = self.vols.group_meta(v.at, inst)
            else:
                doc = self.vols.array_meta(v.at, inst, scale)
            etag = f"{self.vols.tree_root(v.at, inst)}.{scale if not pyramid else key}"
            if self._cached(req, resp, v, etag):
                return
            resp.content_type = "application/json"
            resp.data = json.dumps(doc).encode()
            return
        if len(parts) != 4 or parts[0] != "c":
            raise falcon.HTTPNotFound(description=f"no zarr key {key!r}")
        zyx = (_int(parts[1], "z"), _int(parts[2], "y"), _int(parts[3], "x"))
        chunk = self.vols.locate(v.at, inst, scale, zyx)
        if chunk is None:
            raise falcon.HTTPNotFound(description=f"chunk {key} is not stored")
        if self._cached(req, resp, v, chunk.etag):
            return
        resp.content_type = "application/octet-stream"
        resp.data = self.vols.chunk_bytes(v.at, inst, chunk)

    def on_head(
        self, req: falcon.Request, resp: falcon.Response, version: str, data: str, key: str = ""
    ) -> None:
        """As GET, without the body."""
        self.on_get(req, resp, version, data, key)
        resp.data = None

    @staticmethod
    def _cached(req: falcon.Request, resp: falcon.Response, v: Version, etag: str) -> bool:
        resp.etag = etag
        resp.cache_control = [IMMUTABLE if v.commit else REVALIDATE]
        match = req.get_header("If-None-Match")
        if match and etag in [
            m.strip().strip('"').removeprefix("W/").strip('"') for m in match.split(",")
        ]:
            resp.status = falcon.HTTP_304
            return True
        return False


def _int(text: str, what: str) -> int:
    if not is_int(text):
        raise InvalidInputError(f"zarr chunk {what} index must be an integer, got {text[:40]!r}")
    n = int(text)
    if n < 0:
        raise falcon.HTTPNotFound(description=f"negative chunk {what} index {n}")
    return n


def add_routes(app: falcon.App[falcon.Request, falcon.Response], services: Services) -> None:
    """Mount the view under /zarr."""
    route = ZarrRoute(services)
    app.add_route("/zarr/{version}/{data}", route)
    app.add_route("/zarr/{version}/{data}/{key:path}", route)
