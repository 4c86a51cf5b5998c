"""Server-level resources: /api/help, /api/heartbeat, /api/server/{info,types}."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime

import falcon

import cas_dvid
from cas_dvid.api.config import ServerConfig
from cas_dvid.api.help import help_text
from cas_dvid.datatypes import TypeRegistry

DATASTORE_VERSION = "1"
DVID_API_VERSION = "v1.0.0"
"""The DVID release whose HTTP API this server speaks; clients parse this field
(neuclease insists on ``v`` and integer parts), so cas_dvid's own version has a field
of its own."""


class Help:
    """Plain-text help listing every endpoint."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /api/help."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = help_text()


class TypeHelp:
    """GET /api/help/{type}: a datatype's own help text, as DVID serves it."""

    def __init__(self, types: TypeRegistry) -> None:
        self.types = types

    def on_get(self, req: falcon.Request, resp: falcon.Response, typename: str) -> None:
        """Answer the text, or DVID's 400 for an unknown type."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = self.types.get(typename).help


class Heartbeat:
    """Liveness probe."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /api/heartbeat -> OK."""
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "OK"


class ServerInfo:
    """DVID's server info: a JSON object whose values are all strings."""

    def __init__(self, config: ServerConfig, backend_url: str) -> None:
        self.config = config
        self.backend_url = backend_url
        self.started = time.monotonic()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /api/server/info."""
        info = {
            "Cores": str(os.cpu_count() or 1),
            "Maximum Cores": str(os.cpu_count() or 1),
            "Datastore Version": DATASTORE_VERSION,
            "DVID Version": DVID_API_VERSION,
            "cas_dvid Version": cas_dvid.__version__,
            "Storage backend": self.backend_url,
            "Server time": datetime.now(UTC).isoformat(),
            "Server uptime": f"{time.monotonic() - self.started:.1f}s",
            "RPC Address": "",
            "Host": socket.gethostname(),
            "Note": self.config.note,
            "TOML location": "",
        }
        if self.config.read_only:
            info["Mode"] = "read only"
        resp.media = info


class ServerTypes:
    """Datatypes this server can create, by name, with a type URL."""

    def __init__(self, types: dict[str, str]) -> None:
        self.types = types

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """GET /api/server/types and /api/server/compiled-types."""
        resp.media = dict(self.types)
