"""The server side of sync under /api/cas/sync/: object transfer and refs.

The read-only queries (negotiate, have, fetch) take a body; they answer POST, and
GET with the same body too, so that pulling from a read-only server (which refuses
every POST) works.  Objects are immutable: single-object downloads carry
``ETag`` = id and a year-long immutable ``Cache-Control``.
"""

from __future__ import annotations

import base64

import falcon

from cas_dvid.api._common import Services, json_object, read_body, read_json, send_json, string_list
from cas_dvid.backends import Ref
from cas_dvid.errors import (
    ConflictError,
    CorruptObjectError,
    InvalidInputError,
    MissingDataError,
    NotFoundError,
)
from cas_dvid.objects import ObjectId, parse_object_id, to_hex
from cas_dvid.objects.framing import (
    CONTENT_TYPE,
    encode_frames,
    pack_bits,
    parse_frames,
    unpack_ids,
)
from cas_dvid.versions.refs import have_closures, read_ref

BINARY = "application/octet-stream"
IMMUTABLE = "public, max-age=31536000, immutable"
MAX_IDS = 1 << 20


class RejectedObjectError(CorruptObjectError):
    """An uploaded object does not hash to its id: the client's fault, a 422."""

    http_status = falcon.HTTP_422


class _Resource:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.store = services.store
        self.backend = services.store.backend
        self.limit = services.config.max_body_bytes

    def fetch(self, ids: list[ObjectId]) -> list[tuple[ObjectId, bytes]]:
        """Return stored forms in request order; a missing one is a 404 naming it."""
        try:
            return self.store.map(lambda i: (i, self.store.get_stored(i)), ids)
        except NotFoundError as exc:
            raise MissingDataError(str(exc)) from None


def _ids(body: bytes) -> list[ObjectId]:
    ids = unpack_ids(body)
    if len(ids) > MAX_IDS:
        raise InvalidInputError(f"at most {MAX_IDS} ids per request, got {len(ids)}")
    return ids


class Negotiate(_Resource):
    """POST (or GET) /api/cas/sync/negotiate: refs and a have-check in one round trip."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer refs and have flags.

        Body ``{"refs": [names], "have": [hex ids]}``; answer
        ``{"refs": {name: {value, token} | null}, "have": "0101"}``.
        """
        doc = json_object(read_json(req, self.s.config.max_json_bytes))
        names = string_list(doc, "refs")
        ids = [parse_object_id(h) for h in string_list(doc, "have")]
        refs: dict[str, Ref | None] = {n: read_ref(self.backend, n) for n in names}
        have = have_closures(self.store, ids)
        send_json(
            resp,
            {
                "refs": {
                    n: None
                    if r is None
                    else {"value": base64.b64encode(r.value).decode(), "token": r.token}
                    for n, r in refs.items()
                },
                "have": "".join("1" if h else "0" for h in have),
            },
        )

    on_get = on_post


class Have(_Resource):
    """POST (or GET) /api/cas/sync/have: concatenated ids in, a bitmap out."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Bit i (high bit first) is set when id i is stored with its whole closure."""
        ids = _ids(read_body(req, self.limit))
        resp.content_type = BINARY
        resp.data = pack_bits(have_closures(self.store, ids))

    on_get = on_post


class Fetch(_Resource):
    """POST (or GET) /api/cas/sync/fetch: ids in, a framed stream of stored objects out."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Objects in request order; a missing one is a 404 naming it."""
        ids = _ids(read_body(req, self.limit))
        items = self.fetch(ids)
        resp.content_type = CONTENT_TYPE
        resp.data = encode_frames(items)

    on_get = on_post


class Objects(_Resource):
    """POST /api/cas/sync/objects: a framed stream in; each object re-hashed before it is kept."""

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer {"received": n, "written": new}; a bad object is a 422 naming its id."""
        body = read_body(req, self.limit)
        items = list(parse_frames(body))
        try:
            written = sum(self.store.map(lambda it: self.store.put_stored(*it), items))
        except CorruptObjectError as exc:
            raise RejectedObjectError(f"refused: {exc}") from None
        send_json(resp, {"received": len(items), "written": written})


class Object(_Resource):
    """GET /api/cas/sync/object/{oid}: one object's stored form, cacheable forever."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, oid: str) -> None:
        """ETag is the id; If-None-Match with it answers 304."""
        ident = parse_object_id(oid)
        etag = f'"{to_hex(ident)}"'
        resp.set_header("ETag", etag)
        resp.cache_control = [IMMUTABLE]
        if req.get_header("If-None-Match") in (etag, to_hex(ident)):
            resp.status = falcon.HTTP_304
            return
        try:
            resp.data = self.store.get_stored(ident)
        except NotFoundError as exc:
            raise MissingDataError(str(exc)) from None
        resp.content_type = BINARY

    on_head = on_get


class Refs(_Resource):
    """GET /api/cas/sync/refs?prefix=P: ref names, sorted."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return a JSON list of names."""
        send_json(resp, sorted(self.backend.list_refs(req.get_param("prefix") or "")))


class RefItem(_Resource):
    """GET / PUT / DELETE /api/cas/sync/ref/{name}: one ref, swapped by compare-and-swap."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Return the value; its token in X-Ref-Token."""
        ref = read_ref(self.backend, name)
        if ref is None:
            raise MissingDataError(f"ref {name} not found")
        resp.content_type = BINARY
        resp.cache_control = ["no-store"]
        resp.set_header("X-Ref-Token", ref.token)
        resp.data = ref.value

    def on_put(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Swap: If-Match: TOKEN, or If-None-Match: * to create; stale: 412 and the value."""
        expected = req.get_header("If-Match")
        if expected is None and req.get_header("If-None-Match") != "*":
            raise InvalidInputError("PUT of a ref needs If-Match: <token> or If-None-Match: *")
        value = read_body(req, self.s.config.max_json_bytes)
        try:
            token = self.backend.cas_ref(name, expected, value)
        except ConflictError as exc:
            self._stale(resp, exc)
            return
        resp.set_header("X-Ref-Token", token)
        resp.status = falcon.HTTP_200

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Delete if unchanged (If-Match: TOKEN)."""
        expected = req.get_header("If-Match")
        if expected is None:
            raise InvalidInputError("DELETE of a ref needs If-Match: <token>")
        try:
            self.backend.delete_ref(name, expected)
        except ConflictError as exc:
            self._stale(resp, exc)

    @staticmethod
    def _stale(resp: falcon.Response, exc: ConflictError) -> None:
        resp.status = falcon.HTTP_412
        resp.content_type = BINARY
        if exc.current is None:
            resp.set_header("X-Ref-Absent", "1")
            resp.data = b""
        else:
            resp.set_header("X-Ref-Token", exc.current_token or "")
            resp.data = exc.current


def add_routes(app: falcon.App[falcon.Request, falcon.Response], services: Services) -> None:
    """Register the sync routes."""
    app.add_route("/api/cas/sync/negotiate", Negotiate(services))
    app.add_route("/api/cas/sync/have", Have(services))
    app.add_route("/api/cas/sync/fetch", Fetch(services))
    app.add_route("/api/cas/sync/objects", Objects(services))
    app.add_route("/api/cas/sync/object/{oid}", Object(services))
    app.add_route("/api/cas/sync/refs", Refs(services))
    app.add_route("/api/cas/sync/ref/{name:path}", RefItem(services))
