"""Idle clients cannot stop the server: 150 open, silent connections, and a new request is answered."""

from __future__ import annotations

import socket
import time

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer


def test_150_idle_connections_do_not_block_a_new_request() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(150)]
        try:
            for s in idle[:20]:  # some send half a request and stall
                s.sendall(b"POST /api/repos HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            time.sleep(0.5)
            t0 = time.monotonic()
            status, _, body = srv.request("GET", "/api/heartbeat")
            assert status == 200, body
            assert time.monotonic() - t0 < 5
        finally:
            for s in idle:
                s.close()
