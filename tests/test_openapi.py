"""/api/openapi.json describes every route the app serves, and nothing else (issue 12)."""

from __future__ import annotations

import re
from typing import Any

import falcon.testing
import pytest
from openapi_spec_validator import validate

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api import openapi as oa
from cas_dvid.api._instances import InstanceRoute

SHAPE = r"(?:\{[^}]*\}|\[[^\]]*\]|[^\s:.,?`\[{])*"
"""A path shape in a docstring: ``{a b}`` and ``[/{c}]`` may hold spaces."""
SAMPLE = {"uuid": "abc", "data": "inst", "rest": "a/b"}


@pytest.fixture(scope="module")
def app() -> Any:
    return create_app(ServerConfig("memory://"))


@pytest.fixture(scope="module")
def doc(app: Any) -> dict[str, Any]:
    r = falcon.testing.TestClient(app).simulate_get("/api/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    return dict(r.json)


def test_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    validate(doc)
    assert doc["openapi"].startswith("3.")


def _instance_route(app: Any) -> InstanceRoute:
    found, *_ = app._router.find("/api/node/u/d/e")
    assert isinstance(found, InstanceRoute)
    return found


def test_every_described_operation_is_served(app: Any, doc: dict[str, Any]) -> None:
    route = _instance_route(app)
    by_name = {t.name: t for t in route.s.types.types}
    for path, ops in doc["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m[1], "x"), path)
        resource, *_ = app._router.find(concrete)
        assert resource is not None, path
        for method, op in ops.items():
            assert hasattr(resource, f"on_{method}"), (path, method)
            if resource is not route:
                continue
            endpoint = path.split("/")[5]
            for typename in op["x-datatypes"]:
                handler = route.handlers.get(by_name[typename].service)
                served = set(handler.routes.get(endpoint, {})) if handler else set()
                served |= set(oa.GENERIC.get(endpoint, ()))
                assert method.upper() in served, (typename, path, method)


def test_every_served_route_is_described(app: Any, doc: dict[str, Any]) -> None:
    described = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    route = _instance_route(app)
    for dtype in route.s.types.types:
        handler = route.handlers.get(dtype.service)
        for endpoint, methods in (handler.routes if handler else {}).items():
            for method in methods:
                assert any(
                    m == method and p.split("/")[5:6] == [endpoint]
                    for p, m in described
                    if p.startswith("/api/node/{uuid}/{data}/")
                ), (dtype.name, endpoint, method)
    stack = list(app._router._roots)
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.resource is None or node.resource is route:
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", node.uri_template)
        for method in oa.METHODS:
            if hasattr(node.resource, f"on_{method.lower()}"):
                assert (path, method) in described, (path, method)


def _endpoints(app: Any) -> set[str]:
    route = _instance_route(app)
    return {ep for h in route.handlers.values() for ep in h.routes} | set(oa.GENERIC)


def test_tables_name_only_real_endpoints(app: Any) -> None:
    endpoints = _endpoints(app)
    for table in (oa.TAILS, oa.QUERY, oa.ANSWERS, oa.GET_BODY):
        assert set(table) <= endpoints, set(table) - endpoints


def _arities(shape: str) -> set[int]:
    """``raw/{dims}/{size}/{offset}[/{format}]`` -> {3, 4}."""
    required = len(re.sub(r"\[[^\]]*\]", "", shape).split("/")) - 1
    optional = len(re.findall(r"\[/", shape))
    return {required, required + optional}


def test_path_tails_match_what_each_handler_says(app: Any) -> None:
    """The tails table follows the shape each handler's docstring gives (``GET raw/{dims}/...``)."""
    route = _instance_route(app)
    checked = 0
    for handler in route.handlers.values():
        for endpoint, methods in handler.routes.items():
            for method, fn in methods.items():
                first = (fn.__doc__ or "").split("\n")[0]
                m = re.match(rf"{method} ({re.escape(endpoint)}{SHAPE})", first)
                if m is None or "..." in first.split(":")[0]:
                    continue
                tails = {0 if not t else t.count("/") + 1 for t in oa.TAILS.get(endpoint, ("",))}
                assert _arities(m[1]) <= tails, (endpoint, method, first)
                checked += 1
    assert checked > 50
