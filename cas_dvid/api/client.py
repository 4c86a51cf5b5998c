"""A small DVID HTTP client on http.client (the CLI's way to talk to a running server)."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Any
from urllib.parse import quote, urlsplit

from cas_dvid.auth import auth_headers
from cas_dvid.errors import BackendError, CasDvidError

DEFAULT_SERVER = "http://127.0.0.1:8000"


class ServerError(CasDvidError):
    """The server answered with an error status; the message is its body."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"server answered {status}: {body.strip()}")
        self.status = status
        self.body = body


class DvidClient:
    """Requests to one server over a kept-alive connection per thread."""

    def __init__(self, server: str = DEFAULT_SERVER, timeout: float = 300.0) -> None:
        if "://" not in server:
            server = f"http://{server}"
        parts = urlsplit(server)
        if parts.scheme != "http" or not parts.hostname:
            raise BackendError(f"server must be http://host:port, got {server!r}")
        self.server = server.rstrip("/")
        self.host, self.port = parts.hostname, parts.port or 80
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(
                self.host, self.port, timeout=self.timeout
            )
        return conn

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """Send one request; return the body of a 2xx answer, raise ServerError otherwise."""
        for attempt in range(2):
            conn = self._conn()
            try:
                conn.request(method, path, body=body, headers={**auth_headers(), **(headers or {})})
                resp = conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt or isinstance(exc, ConnectionRefusedError):
                    raise BackendError(
                        f"cannot reach cas_dvid server at {self.server}: {exc}"
                    ) from exc
        if resp.status >= 300:
            raise ServerError(resp.status, data.decode("utf-8", "replace"))
        return data

    def get_json(self, path: str) -> Any:
        """GET and parse JSON."""
        return json.loads(self.request("GET", path))

    def post_json(self, path: str, doc: Any) -> Any:
        """POST a JSON body; parse a JSON answer if there is one."""
        data = self.request(
            "POST", path, json.dumps(doc).encode(), {"Content-Type": "application/json"}
        )
        return json.loads(data) if data.strip() else None


def node_path(uuid: str, *parts: str) -> str:
    """``/api/node/{uuid}/{parts...}`` with each part escaped."""
    return "/api/node/" + "/".join(quote(p, safe="") for p in (uuid, *parts))
