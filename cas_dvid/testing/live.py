"""A real waitress server on 127.0.0.1 in a background thread, for HTTP tests."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from types import TracebackType
from typing import Any

import waitress.server

from cas_dvid.api.serve import waitress_settings


class LiveServer:
    """Serve a WSGI app on a free loopback port until the context exits."""

    def __init__(self, app: Any, threads: int = 8) -> None:
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        self._server = waitress.server.create_server(
            app, host="127.0.0.1", port=0, threads=threads, **waitress_settings()
        )
        self.port = int(self._server.effective_port)
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One request over a fresh connection; returns status, headers, body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def post(self, path: str, body: bytes = b"{}") -> Any:
        """POST ``body``; the parsed JSON answer ({} if empty). Raises unless it is a 200."""
        status, _, out = self.request("POST", path, body)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {out[:300]!r}")
        return json.loads(out) if out.strip() else {}

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        server = self._server

        def close_all() -> None:
            # NOTE: runs in the loop's own thread; closing sockets from another thread
            # while it sits in select() gave EBADF.
            for dispatcher in list(server._map.values()):
                dispatcher.close()

        try:
            server.trigger.pull_trigger(close_all)
        except OSError:
            # NOTE: the trigger pipe was already closed (seen under CPU load once every
            # few runs, after every request of the test had been answered): the loop can
            # no longer be woken, so close the sockets from here.
            close_all()
        self._thread.join(10)
        server.task_dispatcher.shutdown()
