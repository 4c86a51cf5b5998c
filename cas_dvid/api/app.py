"""``create_app(config)``: the falcon WSGI app, wired once, shared by tests and serve."""

from __future__ import annotations

import falcon

from cas_dvid.api import _server
from cas_dvid.api.config import ServerConfig
from cas_dvid.api.errors import handle_cas_error, handle_http_error
from cas_dvid.backends import open_backend
from cas_dvid.errors import CasDvidError
from cas_dvid.objects import ObjectStore


class _ReadOnly:
    """Middleware: in read-only mode every non-GET/HEAD request is refused."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method not in ("GET", "HEAD", "OPTIONS"):
            raise falcon.HTTPMethodNotAllowed(
                ["GET", "HEAD"], description="server is in read-only mode"
            )


def create_app(config: ServerConfig, store: ObjectStore | None = None) -> falcon.App:
    """Build the WSGI app for ``config`` (``store`` lets tests share one object store)."""
    if store is None:
        store = ObjectStore(open_backend(config.store_url), cache_bytes=config.cache_bytes)
    middleware = [_ReadOnly()] if config.read_only else []
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    app.add_error_handler(CasDvidError, handle_cas_error)
    app.add_error_handler(falcon.HTTPError, handle_http_error)

    app.add_route("/api/help", _server.Help())
    app.add_route("/api/heartbeat", _server.Heartbeat())
    app.add_route("/api/server/info", _server.ServerInfo(config, store.backend.url))
    types = _server.ServerTypes({})
    app.add_route("/api/server/types", types)
    app.add_route("/api/server/compiled-types", types)
    return app
