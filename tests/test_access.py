"""Tokens: admintoken, read tokens with public published versions, 401 vs 403, never logged."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions.stores import init_store

WRITE, READ = "w-tok-5d1e", "r-tok-9a7c"
W = {"Authorization": f"Bearer {WRITE}"}
R = {"Authorization": f"Bearer {READ}"}


def _client(url: str = "memory://") -> falcon.testing.TestClient:
    return falcon.testing.TestClient(
        create_app(ServerConfig(url, write_token=WRITE, read_token=READ))
    )


def test_admintoken_parameter_is_an_alternative_to_the_bearer_header() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://", write_token=WRITE)))
    r = c.simulate_post("/api/repos", json={})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("text/plain")
    assert "admintoken" in r.text
    assert r.text.endswith("(/api/repos).\n")
    r = c.simulate_post("/api/repos", json={}, params={"admintoken": "nope"})
    assert r.status_code == 403
    assert "does not allow writes" in r.text
    r = c.simulate_post("/api/repos", json={}, params={"admintoken": WRITE})
    assert r.status_code == 200
    assert "root" in r.json


def test_a_read_token_guards_reads_and_only_the_write_token_writes() -> None:
    c = _client()
    for path in ("/api/heartbeat", "/api/server/info", "/api/help", "/api/help/keyvalue", "/"):
        assert c.simulate_get(path).status_code == 200, path
    r = c.simulate_get("/api/repos/info")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].lower().startswith("bearer")
    assert (
        c.simulate_get("/api/repos/info", headers={"Authorization": "Bearer x"}).status_code == 403
    )
    assert c.simulate_get("/api/repos/info", headers=R).status_code == 200
    assert c.simulate_get("/api/repos/info", params={"admintoken": READ}).status_code == 200
    assert c.simulate_get("/api/repos/info", headers=W).status_code == 200  # write implies read
    assert c.simulate_post("/api/repos", json={}, headers=R).status_code == 403
    assert c.simulate_post("/api/repos", json={}, headers=W).status_code == 200


def _cli(*args: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr + r.stdout


def test_published_versions_are_public_the_rest_needs_the_read_token(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    init_store(url)[0].close()
    init_store(f"file://{tmp_path / 'pub'}")[0].close()
    c = _client(url)
    root = c.simulate_post("/api/repos", json={}, headers=W).json["root"]
    doc = {"typename": "keyvalue", "dataname": "kv"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=doc, headers=W).status_code == 200
    assert c.simulate_post(f"/api/node/{root}/kv/key/a", body=b"v1", headers=W).status_code == 200
    assert c.simulate_post(f"/api/node/{root}/commit", json={}, headers=W).status_code == 200
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}, headers=W).json["child"]
    # locked but not yet published: not public
    assert c.simulate_get(f"/api/node/{root}/kv/key/a").status_code == 401
    _cli("publish", root, str(tmp_path / "pub"), "--store", url, "--quiet")
    r = c.simulate_get(f"/api/node/{root}/kv/key/a")
    assert r.status_code == 200
    assert r.text == "v1"
    assert c.simulate_get(f"/api/node/{root[:8]}/kv/key/a").status_code == 200  # prefix too
    assert c.simulate_get(f"/api/node/{child}/kv/key/a").status_code == 401  # open version
    assert c.simulate_get(f"/api/node/{child}/kv/key/a", headers=R).text == "v1"
    assert c.simulate_get("/api/repos/info").status_code == 401  # the repo list is not public
    assert c.simulate_post(f"/api/node/{root}/kv/key/b", body=b"x").status_code == 401


def test_tokens_are_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with LiveServer(create_app(ServerConfig("memory://", write_token=WRITE, read_token=READ))) as s:
        for headers, query in (
            (W, ""),
            (R, ""),
            ({}, f"?admintoken={WRITE}"),
            ({}, "?admintoken=" + READ),
        ):
            s.request("GET", f"/api/repos/info{query}", headers=headers)
            s.request("POST", f"/api/repos{query}", b"{", headers)  # a 400 or a 403
            s.request("GET", f"/api/node/{'0' * 32}/kv/key/a{query}", headers=headers)  # 400
            s.request("GET", f"/api/node/nope/kv/raw/0_1_2/x{query}", headers=headers)
            status, _, body = s.request("POST", f"/api/repos{query}", b'{"alias": 5}', headers)
            assert WRITE.encode() not in body
            assert READ.encode() not in body
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert WRITE not in text
    assert READ not in text
