"""serve --write-token-file: writes need the bearer token, reads stay open."""

from __future__ import annotations

import json

import falcon.testing

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

TOKEN = "s3cret-token"


def test_writes_need_the_token_reads_do_not() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://", write_token=TOKEN)))
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert c.simulate_post("/api/repos", json={}).status_code == 401
    r = c.simulate_post("/api/repos", json={}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 403  # a token, but not this one
    assert c.simulate_get("/api/repos/info").json == {}  # nothing was created
    root = c.simulate_post("/api/repos", json={}, headers=ok).json["root"]
    body = {"typename": "keyvalue", "dataname": "kv"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body, headers=ok).status_code == 200
    assert c.simulate_post(f"/api/node/{root}/kv/key/a", body=b"x").status_code == 401
    assert c.simulate_delete(f"/api/node/{root}/kv/key/a").status_code == 401
    assert c.simulate_post(f"/api/node/{root}/kv/key/a", body=b"x", headers=ok).status_code == 200
    assert c.simulate_get(f"/api/node/{root}/kv/key/a").text == "x"


def test_token_over_real_waitress() -> None:
    with LiveServer(create_app(ServerConfig("memory://", write_token=TOKEN))) as srv:
        status, headers, _ = srv.request("POST", "/api/repos", b"{}")
        assert status == 401 and "bearer" in headers.get("www-authenticate", "").lower()
        status, _, body = srv.request(
            "POST", "/api/repos", b"{}", {"Authorization": f"bearer {TOKEN}"}
        )
        assert status == 200 and "root" in json.loads(body)
        assert srv.request("GET", "/api/repos/info")[0] == 200


def test_cli_sends_the_token_from_the_environment() -> None:
    import os
    import subprocess
    import sys

    with LiveServer(create_app(ServerConfig("memory://", write_token=TOKEN))) as srv:
        cmd = [sys.executable, "-m", "cas_dvid.cli", "repos", "new", "x", "--server", srv.url]
        env = {k: v for k, v in os.environ.items() if k != "CAS_DVID_WRITE_TOKEN"}
        refused = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert refused.returncode != 0 and "token" in (refused.stdout + refused.stderr).lower()
        env["CAS_DVID_WRITE_TOKEN"] = TOKEN
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
