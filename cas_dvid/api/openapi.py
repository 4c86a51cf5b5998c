"""The OpenAPI 3 description of every route, built from the app's own router.

The paths come from walking falcon's compiled router (every ``add_route``) and, for
the one instance route, from each datatype handler's ``routes`` table, so a route
cannot be served without being described. What the router cannot know (the shape of
an endpoint's path tail, its query parameters, what it answers) comes from the small
tables below; ``tests/test_openapi.py`` checks those tables name only real routes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import falcon

import cas_dvid
from cas_dvid.api._common import send_json
from cas_dvid.api._instances import InstanceRoute
from cas_dvid.api._tails import TAILS

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE")

JSON = "application/json"
OCTET = "application/octet-stream"
TEXT = "text/plain"

GENERIC = {"info": ("GET", "HEAD"), "tags": ("GET", "POST")}
"""Instance endpoints that ``InstanceRoute`` answers itself (``tags`` only where
``DataType.has_tags``)."""

QUERY: dict[str, tuple[str, ...]] = {
    "raw": ("scale", "compression", "throttle", "roi"),
    "isotropic": ("scale", "roi"),
    "blocks": ("scale", "compression", "downres", "noindexing", "throttle"),
    "specificblocks": ("blocks", "scale", "compression"),
    "subvolblocks": ("scale", "compression"),
    "downres": ("levels",),
    "ingest-supervoxels": ("scale",),
    "set-nextlabel": ("ceiling",),
    "mappings": ("format",),
    "size": ("supervoxels",),
    "sizes": ("supervoxels",),
    "sparsevol": ("format", "scale", "minx", "maxx", "miny", "maxy", "minz", "maxz"),
    "listlabels": ("start", "number", "sizes"),
    "index": ("metadata-only",),
    "key": ("byte_start", "byte_end"),
    "keyvalues": ("json", "tar"),
    "keyrangevalues": ("json", "tar"),
    "partition": ("batchsize", "optimized"),
    "mutations": ("since",),
    "mutations-range": ("rangefmt",),
    "tile": ("noblanks",),
    "generate": ("planes", "scales"),
    "tags": ("replace",),
}
"""Query parameters an instance endpoint reads (all optional strings)."""

ANSWERS: dict[str, str] = {
    "info": JSON,
    "tags": JSON,
    "keys": JSON,
    "keyrange": JSON,
    "metadata": JSON,
    "label": JSON,
    "labels": JSON,
    "maxlabel": JSON,
    "nextlabel": JSON,
    "mapping": JSON,
    "supervoxels": JSON,
    "size": JSON,
    "sizes": JSON,
    "supervoxel-sizes": JSON,
    "lastmod": JSON,
    "sparsevol-size": JSON,
    "merge": JSON,
    "cleave": JSON,
    "mutations": JSON,
    "mutations-range": JSON,
    "history": JSON,
    "roi": JSON,
    "ptquery": JSON,
    "partition": JSON,
    "tilekey": JSON,
    "generate": JSON,
    "downres": JSON,
    "neighbors": JSON,
    "subgraph": JSON,
}
"""What an instance endpoint answers when it is not raw bytes."""

GET_BODY = frozenset(
    ("labels", "mapping", "sizes", "indices", "indices-compressed", "keyvalues", "subgraph")
)
"""Instance endpoints whose GET reads a body (DVID's JSON lists of labels or keys)."""

SERVER_ANSWERS: dict[str, str] = {
    "/api/help": TEXT,
    "/api/help/{typename}": TEXT,
    "/api/heartbeat": TEXT,
    "/zarr/{version}/{data}": JSON,
    "/zarr/{version}/{data}/{key}": OCTET,
    "/api/cas/sync/object/{oid}": OCTET,
    "/api/openapi.json": JSON,
}
"""Server routes that do not answer JSON."""


EXAMPLES: dict[str, str] = {
    "dims": "0_1",
    "size": "64_64_1",
    "offset": "0_0_0",
    "format": "png",
    "point": "10_10_10",
    "first": "0_0_0",
    "second": "2",
    "label": "1",
    "label2": "10",
    "begin": "0",
    "end": "10",
    "key": "a",
    "key2": "z",
    "plane": "xy",
    "scale": "0",
    "tl": "0_0_0",
    "tr": "32_0_0",
    "bl": "0_32_0",
    "res": "1",
    "vertex": "1",
    "vertex2": "2",
}
"""An example value of each path parameter of the tails table."""

_N = "-?[0-9]{1,3}"
_XYZ = f"^{_N}_{_N}_{_N}$"
PATTERNS: dict[str, str] = {
    "dims": "^(0_1|0_2|1_2|0_1_2|xy|xz|yz)$",
    "size": "^[0-9]{1,3}_[0-9]{1,3}(_[0-9]{1,3})?$",
    "offset": _XYZ,
    "point": _XYZ,
    "first": _XYZ,
    "tl": _XYZ,
    "tr": _XYZ,
    "bl": _XYZ,
    "format": "^(png|jpg|jpg:[0-9]{1,3}|tif|bmp|raw)$",
    "plane": "^(xy|xz|yz)$",
    **{k: "^[0-9]{1,6}$" for k in ("label", "label2", "begin", "end", "second", "scale")},
    **{k: "^[0-9]{1,6}$" for k in ("res", "vertex", "vertex2")},
}
"""The shape of each path parameter a request that gets past parsing has (small values)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One served (path template, method); ``endpoint`` for instance endpoints."""

    path: str
    method: str
    endpoint: str = ""
    datatypes: tuple[str, ...] = ()


def _plain(template: str) -> str:
    """``/a/{name:path}`` -> ``/a/{name}``: OpenAPI has no converters."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", template)


def _nodes(app: falcon.App[Any, Any]) -> Iterator[Any]:
    # NOTE: falcon's CompiledRouter keeps its route tree in ``_roots``; there is no
    # public walk, and recording at add_route time would miss the add_routes helpers.
    stack = list(app._router._roots)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.resource is not None:
            yield node


def _served(node: Any) -> list[str]:
    """Return the methods a route node's resource has a responder for."""
    return [m for m in METHODS if hasattr(node.resource, f"on_{m.lower()}")]


def instance_routes(route: InstanceRoute) -> list[Route]:
    """Every (endpoint, method) the datatype handlers behind ``route`` serve."""
    served: dict[tuple[str, str], set[str]] = {}
    for dtype in route.s.types.types:
        endpoints = {k: set(v) for k, v in GENERIC.items() if k != "tags" or dtype.has_tags}
        handler = route.handlers.get(dtype.service)
        for ep, table in (handler.routes if handler else {}).items():
            endpoints.setdefault(ep, set()).update(table)
        for ep, methods in endpoints.items():
            for m in methods:
                served.setdefault((ep, m), set()).add(dtype.name)
    out = []
    for (ep, method), types in sorted(served.items()):
        for tail in TAILS.get(ep, ("",)):
            path = f"/api/node/{{uuid}}/{{data}}/{ep}" + (f"/{tail}" if tail else "")
            out.append(Route(path, method, ep, tuple(sorted(types))))
    return out


def routes(app: falcon.App[Any, Any]) -> list[Route]:
    """Every (path, method) ``app`` serves, instance endpoints spelled out."""
    out: list[Route] = []
    for node in _nodes(app):
        if isinstance(node.resource, InstanceRoute):
            if "{rest" not in node.uri_template:
                out.extend(instance_routes(node.resource))
            continue
        out.extend(Route(_plain(node.uri_template), m) for m in _served(node))
    return sorted(set(out), key=lambda r: (r.path, r.method))


def _param(name: str, where: str) -> dict[str, Any]:
    out = {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}
    if where == "path" and name in EXAMPLES:
        out["example"] = EXAMPLES[name]
    if where == "path" and name in PATTERNS:
        out["schema"] = {"type": "string", "pattern": PATTERNS[name]}
    return out


def _operation(r: Route) -> dict[str, Any]:
    names = re.findall(r"\{(\w+)\}", r.path)
    params = [_param(n, "path") for n in names]
    params += [_param(q, "query") for q in QUERY.get(r.endpoint, ())]
    answer = ANSWERS.get(r.endpoint, OCTET) if r.endpoint else SERVER_ANSWERS.get(r.path, JSON)
    ok: dict[str, Any] = {"description": "the answer, as DVID gives it"}
    if r.method != "HEAD":
        ok["content"] = {answer: {"schema": {}}}
    err = {"description": "DVID's plain-text reason", "content": {TEXT: {"schema": {}}}}
    op: dict[str, Any] = {
        "operationId": f"{r.method.lower()} {r.path}",
        "parameters": params,
        "responses": {"200": ok, "4XX": err, "5XX": err},
    }
    if r.method in ("POST", "PUT") or r.method == "GET" and r.endpoint in GET_BODY:
        binary = {"schema": {"type": "string", "format": "binary"}}
        op["requestBody"] = {"required": False, "content": {OCTET: binary, JSON: {"schema": {}}}}
    if r.endpoint:
        op["x-datatypes"] = list(r.datatypes)
        op["tags"] = ["instances"]
    return op


def document(app: falcon.App[Any, Any]) -> dict[str, Any]:
    """Build the OpenAPI 3.0 document of every route ``app`` serves."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes(app):
        paths.setdefault(r.path, {})[r.method.lower()] = _operation(r)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "cas_dvid",
            "version": cas_dvid.__version__,
            "description": "DVID's HTTP API over a content-addressed store; see /api/help.",
        },
        "paths": paths,
    }


class OpenApi:
    """GET /api/openapi.json, built on first use (after every route is registered)."""

    def __init__(self, app: falcon.App[Any, Any]) -> None:
        self.app = app
        self._doc: dict[str, Any] | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the document."""
        if self._doc is None:
            self._doc = document(self.app)
        send_json(resp, self._doc)
