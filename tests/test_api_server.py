"""Server-level endpoints, in-process and through a real waitress server and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer
from cas_dvid.testing.s3server import free_port


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://")))


def test_heartbeat_and_info(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/api/heartbeat").text == "OK"
    info = client.simulate_get("/api/server/info").json
    assert all(isinstance(v, str) for v in info.values())
    assert {"Cores", "DVID Version", "Storage backend", "Server uptime"} <= set(info)


def test_unknown_path_is_plain_text_404(client: falcon.testing.TestClient) -> None:
    r = client.simulate_get("/api/nonsense")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.endswith("(/api/nonsense).\n")


def test_read_only_refuses_writes() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://", read_only=True)))
    r = c.simulate_post("/api/heartbeat")
    assert r.status_code == 405 and "read-only" in r.text
    assert c.simulate_get("/api/server/info").json["Mode"] == "read only"


def test_help_lists_server_endpoints(client: falcon.testing.TestClient) -> None:
    text = client.simulate_get("/api/help").text
    for path in ("/api/heartbeat", "/api/server/info", "/api/server/types"):
        assert path in text


def test_over_real_waitress() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        status, headers, body = srv.request("GET", "/api/server/info")
        assert status == 200 and headers["content-type"].startswith("application/json")
        assert json.loads(body)["Storage backend"] == "memory://"
        assert srv.request("GET", "/api/heartbeat")[2] == b"OK"


def test_cli_init_and_serve(tmp_path: Path) -> None:
    store = tmp_path / "data"
    cli = [sys.executable, "-m", "cas_dvid.cli"]
    out = subprocess.run([*cli, "init", str(store)], capture_output=True, text=True, check=True)
    assert "created" in out.stdout
    again = subprocess.run([*cli, "init", str(store)], capture_output=True, text=True, check=True)
    assert "already" in again.stdout
    port = free_port()
    proc = subprocess.Popen(
        [*cli, "serve", str(store), "--port", str(port)], stdout=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/server/info", timeout=2
                ) as r:
                    assert json.load(r)["Storage backend"] == f"file://{store}"
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()


def test_cli_serve_refuses_non_store(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "serve", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "run init" in r.stderr
