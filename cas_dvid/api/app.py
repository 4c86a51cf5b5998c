"""``create_app(config)``: the falcon WSGI app, wired once, shared by tests and serve."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import falcon

from cas_dvid.api import _ext, _nodes, _repos, _server, _sync, console, openapi, types, zarrview
from cas_dvid.api._common import CORS_HEADERS, Services
from cas_dvid.api._fastkv import App, KeyGets
from cas_dvid.api._instances import InstanceRoute
from cas_dvid.api.access import Access
from cas_dvid.api.budget import BudgetMiddleware, MemoryBudget
from cas_dvid.api.config import ServerConfig
from cas_dvid.api.errors import handle_cas_error, handle_http_error, handle_unexpected
from cas_dvid.backends import open_backend
from cas_dvid.datatypes import Context, default_registry
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.errors import CasDvidError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService


def _load_handlers() -> None:
    """Import every handler module of ``cas_dvid.api.types`` (each registers itself)."""
    for info in pkgutil.iter_modules(types.__path__):
        importlib.import_module(f"{types.__name__}.{info.name}")


class _ReadOnly:
    """Middleware: in read-only mode every non-GET/HEAD request is refused."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method not in ("GET", "HEAD", "OPTIONS"):
            raise falcon.HTTPMethodNotAllowed(
                ["GET", "HEAD"], description="server is in read-only mode"
            )


class _Cors:
    """Middleware: CORS headers on every answer, and OPTIONS preflights answered here.

    Neuroglancer and other browser viewers are served from another origin; without
    ``Access-Control-Allow-Origin`` the browser hides every answer from them.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method == "OPTIONS" and req.get_header("Access-Control-Request-Method"):
            resp.status = falcon.HTTP_204
            resp.complete = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool
    ) -> None:
        for name, value in CORS_HEADERS:
            resp.set_header(name, value)
        if req.method == "OPTIONS":
            resp.set_header("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
            asked = req.get_header("Access-Control-Request-Headers")
            resp.set_header("Access-Control-Allow-Headers", asked or "Authorization, Content-Type")
            resp.set_header("Access-Control-Max-Age", "86400")


class _CorsBudget(_Cors):
    """``_Cors`` and ``BudgetMiddleware`` as one middleware, when no check sits between them.

    PERF: falcon calls every middleware's methods on every request; a keyvalue GET
    has nothing for either to do on the way in.
    """

    def __init__(self, budget: BudgetMiddleware) -> None:
        self.budget = budget

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method == "GET":
            return
        super().process_request(req, resp)
        if not resp.complete:
            self.budget.process_request(req, resp)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, ok: bool
    ) -> None:
        try:
            self.budget.process_response(req, resp, resource, ok)
        finally:
            super().process_response(req, resp, resource, ok)


def create_app(
    config: ServerConfig, store: ObjectStore | None = None, budget: MemoryBudget | None = None
) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI app for ``config``.

    ``store`` lets tests share one object store, ``budget`` one memory budget (by
    default a fresh one of ``config.memory_budget_bytes``).
    """
    if store is None:
        store = ObjectStore(open_backend(config.store_url), cache_bytes=config.cache_bytes)
    if budget is None:
        budget = MemoryBudget(config.memory_budget_bytes, config.budget_wait)
    registry = default_registry()
    versions = VersionService(
        store,
        metadata_ttl=config.metadata_ttl,
        show_key=registry.show_key,
        resolve=registry.resolve,
    )
    checks: list[Any] = []
    if config.read_only:
        checks.append(_ReadOnly())
    if config.write_token or config.read_token:
        checks.append(Access(versions, config.write_token, config.read_token))
    # NOTE: after the checks, so a refused request never claims (or waits for) memory.
    claims = BudgetMiddleware(budget, config.max_body_bytes)
    middleware = [_Cors(), *checks, claims] if checks else [_CorsBudget(claims)]
    app = App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(CasDvidError, handle_cas_error)
    app.add_error_handler(falcon.HTTPError, handle_http_error)

    data = registry.open(Context(versions, store, max_voxel_bytes=config.max_voxel_bytes))
    s = Services(versions, registry, data, config, budget)
    if not (config.write_token or config.read_token):  # (read-only refuses no GET)
        app.key_gets = KeyGets(versions, registry, data.of(KeyValueStore))
    app.add_route("/api/help", _server.Help())
    app.add_route("/api/help/{typename}", _server.TypeHelp(registry))
    app.add_route("/api/heartbeat", _server.Heartbeat())
    app.add_route("/api/server/info", _server.ServerInfo(config, store.backend.url))
    server_types = _server.ServerTypes(registry.urls())
    app.add_route("/api/server/types", server_types)
    app.add_route("/api/server/compiled-types", server_types)

    app.add_route("/api/repos", _repos.Repos(s))
    app.add_route("/api/repos/info", _repos.ReposInfo(s))
    app.add_route("/api/repo/{uuid}", _repos.RepoInfo(s))
    app.add_route("/api/repo/{uuid}/info", _repos.RepoInfo(s))
    app.add_route("/api/repo/{uuid}/instance", _repos.RepoInstance(s))
    app.add_route("/api/repo/{uuid}/log", _repos.RepoLog(s))
    app.add_route("/api/repo/{uuid}/branch-versions/{name}", _repos.BranchVersions(s))
    app.add_route("/api/repo/{uuid}/merge", _repos.RepoMerge(s))

    app.add_route("/api/node/{uuid}/note", _nodes.NodeNote(s))
    app.add_route("/api/node/{uuid}/log", _nodes.NodeLog(s))
    app.add_route("/api/node/{uuid}/status", _nodes.NodeStatus(s))
    app.add_route("/api/node/{uuid}/commit", _nodes.NodeCommit(s))
    app.add_route("/api/node/{uuid}/branch", _nodes.NodeBranch(s))
    app.add_route("/api/node/{uuid}/newversion", _nodes.NodeNewVersion(s))
    app.add_route("/api/node/{uuid}/tag", _nodes.NodeTag(s))

    _load_handlers()
    instances = InstanceRoute(s)
    app.add_route("/api/node/{uuid}/{data}/{endpoint}", instances)
    app.add_route("/api/node/{uuid}/{data}/{endpoint}/{rest:path}", instances)

    app.add_route("/api/cas/diff/{a}/{b}/{data}", _ext.Diff(s))
    app.add_route("/api/cas/repo/{uuid}", _repos.DeleteRepo(s))
    app.add_route("/api/cas/repo/{uuid}/{name}", _repos.DeleteInstance(s))
    _sync.add_routes(app, s)
    zarrview.add_routes(app, s)
    console.add_routes(app)
    app.add_route("/api/openapi.json", openapi.OpenApi(app))
    return app
