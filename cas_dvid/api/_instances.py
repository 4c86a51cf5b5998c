"""Instance routes: /api/node/{uuid}/{data}/{endpoint}[/...], dispatched by datatype.

Each datatype's HTTP handler lives in a module of ``cas_dvid.api.types`` and
registers itself with ``@handles(ServiceClass)``; the app imports every module of
that package, so adding a datatype touches no list here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import falcon

from cas_dvid.api._common import Services, json_object, read_json, send_json
from cas_dvid.api._render import instance_info
from cas_dvid.api._tails import check_tail
from cas_dvid.datatypes import TypeService
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance

Endpoint = Callable[[falcon.Request, falcon.Response, At, Instance, list[str]], None]


class RoutedHandler:
    """A datatype's handler: ``routes[endpoint][method]`` names the method serving it.

    Subclasses are built once per app; each takes its datatype's service from
    ``services.data``.
    """

    routes: dict[str, dict[str, Endpoint]]

    def __init__(self, services: Services) -> None:
        self.s = services

    def route(
        self, req: falcon.Request, at: At, inst: Instance, endpoint: str, args: list[str]
    ) -> tuple[Endpoint, list[str]]:
        """Return the method serving ``endpoint`` (subclasses may rewrite aliases first)."""
        methods = self.routes.get(endpoint)
        if methods is None:
            raise BadAPICall(req, inst)
        fn = methods.get(req.method)
        if fn is None:
            raise InvalidInputError(
                f'{endpoint} endpoint does not support "{req.method.lower()}" HTTP verb'
            )
        check_tail(endpoint, args)
        return fn, args


H = TypeVar("H", bound=type[RoutedHandler])
HANDLERS: dict[type[TypeService], type[RoutedHandler]] = {}


def handles(service: type[TypeService]) -> Callable[[H], H]:
    """Register a handler class for every datatype served by ``service``."""

    def register(cls: H) -> H:
        if service in HANDLERS:
            raise ValueError(f"{service.__name__} already has a handler")
        HANDLERS[service] = cls
        return cls

    return register


class BadAPICall(InvalidInputError):
    """An endpoint the datatype lacks; DVID words this one differently."""

    def __init__(self, req: falcon.Request, inst: Instance) -> None:
        super().__init__(f"Bad API call for data {inst.name!r}")
        self.body = (
            f'Bad API call ({req.path}) for data "{inst.name}".  '
            f"See API help at {req.scheme}://{req.netloc}/api/help/{inst.typename}\n"
        )


class InstanceRoute:
    """The one route for every instance endpoint; generic ones (info, tags) are answered here."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.handlers = {
            cls: HANDLERS[cls](services)
            for cls in {t.service for t in services.types.types}
            if cls in HANDLERS
        }

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
        inst = at.instance(data)
        dtype = self.s.types.get(inst.typename)
        args = rest.split("/") if rest else []
        if endpoint == "info" and req.method in ("GET", "HEAD"):
            check_tail(endpoint, args)
            send_json(resp, instance_info(self.s, at, inst))
            return
        if endpoint == "tags" and dtype.has_tags:
            check_tail(endpoint, args)
            self._tags(req, resp, at, inst)
            return
        handler = self.handlers.get(dtype.service)
        if handler is None:
            raise InvalidInputError(f"no HTTP handler for data type {inst.typename!r}")
        fn, args = handler.route(req, at, inst, endpoint, args)
        fn(req, resp, at, inst, args)

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

        self.s.versions.edits.update_instance(at, inst.name, change)

    def on_get(self, req: falcon.Request, resp: falcon.Response, **kw: Any) -> None:
        """Every method goes to the datatype's handler."""
        self._dispatch(req, resp, kw["uuid"], kw["data"], kw["endpoint"], kw.get("rest", ""))

    on_head = on_get
    on_post = on_get
    on_put = on_get
    on_delete = on_get
