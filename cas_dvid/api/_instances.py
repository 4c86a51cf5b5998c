"""Instance routes: /api/node/{uuid}/{data}/{endpoint}[/...], dispatched by datatype."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import falcon

from cas_dvid.api._common import Services, json_object, read_json, send_json
from cas_dvid.api._render import instance_info
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance


class TypeHandler(Protocol):
    """What a datatype's HTTP handler offers the dispatcher."""

    def handle(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        at: At,
        inst: Instance,
        endpoint: str,
        args: list[str],
    ) -> None:
        """Serve one request; raise InvalidInputError for an unknown endpoint."""


Endpoint = Callable[[falcon.Request, falcon.Response, At, Instance, list[str]], None]


class RoutedHandler:
    """A datatype's handler: ``routes[endpoint][method]`` names the method serving it."""

    routes: dict[str, dict[str, Endpoint]]

    def handle(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        at: At,
        inst: Instance,
        endpoint: str,
        args: list[str],
    ) -> None:
        """Dispatch on endpoint and method, with DVID's messages for unknown ones."""
        methods = self.routes.get(endpoint)
        if methods is None:
            raise BadAPICall(req, inst)
        fn = methods.get(req.method)
        if fn is None:
            raise InvalidInputError(
                f'{endpoint} endpoint does not support "{req.method.lower()}" HTTP verb'
            )
        fn(req, resp, at, inst, args)


class BadAPICall(InvalidInputError):
    """An endpoint the datatype lacks; DVID words this one differently."""

    def __init__(self, req: falcon.Request, inst: Instance) -> None:
        super().__init__(f"Bad API call for data {inst.name!r}")
        self.body = (
            f'Bad API call ({req.path}) for data "{inst.name}".  '
            f"See API help at http://{req.host}/api/help/{inst.typename}\n"
        )


class InstanceRoute:
    """The one route for every instance endpoint; generic ones (info, tags) are answered here."""

    def __init__(self, services: Services, handlers: dict[str, TypeHandler]) -> None:
        self.s = services
        self.handlers = handlers

    def _dispatch(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        uuid: str,
        data: str,
        endpoint: str,
        rest: str,
    ) -> None:
        at = self.s.versions.resolve(uuid)
        inst = self.s.versions.instance(at, data)
        args = rest.split("/") if rest else []
        if endpoint == "info" and req.method in ("GET", "HEAD"):
            send_json(resp, instance_info(self.s.versions, at, inst, self.s.types))
            return
        if endpoint == "tags" and inst.typename in ("keyvalue", "labelmap", "annotation"):
            self._tags(req, resp, at, inst)
            return
        handler = self.handlers.get(inst.typename)
        if handler is None:
            raise InvalidInputError(f"no HTTP handler for data type {inst.typename!r}")
        handler.handle(req, resp, at, inst, endpoint, args)

    def _tags(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance) -> None:
        if req.method == "GET":
            send_json(resp, {"Tags": inst.tags})
            return
        if req.method != "POST":
            raise falcon.HTTPMethodNotAllowed(["GET", "POST"])
        doc = json_object(read_json(req, self.s.config.max_json_bytes, required=True))
        if not all(isinstance(v, str) for v in doc.values()):
            raise InvalidInputError("tag values must be strings")
        replace = req.get_param_as_bool("replace") or False

        def change(i: Instance) -> None:
            i.tags = dict(doc) if replace else {**i.tags, **doc}

        self.s.versions.update_instance(at.uuid, inst.name, change)

    def on_get(self, req: falcon.Request, resp: falcon.Response, **kw: Any) -> None:
        """GET."""
        self._dispatch(req, resp, kw["uuid"], kw["data"], kw["endpoint"], kw.get("rest", ""))

    on_head = on_get
    on_post = on_get
    on_put = on_get
    on_delete = on_get
