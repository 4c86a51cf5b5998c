"""The keyvalue GET fast path answers exactly as falcon does, and sees every server's writes."""

from __future__ import annotations

from pathlib import Path

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api._fastkv import App
from cas_dvid.objects import ObjectStore
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions.stores import init_store, open_store_backend


@pytest.fixture(params=[False, True], ids=["writable", "read-only"])
def app(request: pytest.FixtureRequest) -> App:
    made = create_app(ServerConfig("memory://", read_only=request.param))
    assert isinstance(made, App)
    return made


def _setup(c: falcon.testing.TestClient) -> tuple[str, str]:
    root = c.simulate_post("/api/repos", json={}).json["root"]
    for typename, name in (("keyvalue", "kv"), ("roi", "r")):
        got = c.simulate_post(
            f"/api/repo/{root}/instance", json={"typename": typename, "dataname": name}
        )
        assert got.status_code == 200, got.text
    for key, value in (("a", b"v1"), ("big", bytes(range(256)) * 40), ("\u00e9t\u00e9", b"summer")):
        assert c.simulate_post(f"/api/node/{root}/kv/key/{key}", body=value).status_code == 200
    assert c.simulate_post(f"/api/node/{root}/commit", json={"note": "one"}).status_code == 200
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    assert c.simulate_post(f"/api/node/{child}/kv/key/a", body=b"v2").status_code == 200
    return root, child


def _answer(
    app: App, c: falcon.testing.TestClient, fast: bool, **req: object
) -> tuple[object, ...]:
    kept = app.key_gets
    if not fast:
        app.key_gets = None
    try:
        r = c.simulate_request(**req)  # type: ignore[arg-type]
    finally:
        app.key_gets = kept
    return r.status, sorted(r.headers.items()), r.content


def test_every_answer_equals_falcons(app: App) -> None:
    c = falcon.testing.TestClient(app)
    # (a read-only server serves a store another server wrote)
    writer = create_app(ServerConfig("memory://"), app.key_gets.versions.store)  # type: ignore[union-attr]
    root, child = _setup(falcon.testing.TestClient(writer))
    gets = [
        f"/api/node/{root}/kv/key/a",
        f"/api/node/{child}/kv/key/a",
        f"/api/node/{child[:8]}/kv/key/big",
        f"/api/node/{root}:master/kv/key/a",
        f"/api/node/{child}~1/kv/key/a",
        f"/api/node/{root}/kv/key/\u00e9t\u00e9",
        f"/api/node/{root}/kv/key/missing",
        f"/api/node/{root}/kv/key/",
        f"/api/node/{root}/kv/key/a/",
        f"/api/node/{root}/kv/key/a/b",
        f"/api/node/{root}//key/a",
        f"/api/node/{'0' * 32}/kv/key/a",
        "/api/node//kv/key/a",
        f"/api/node/{root}/nope/key/a",
        f"/api/node/{root}/r/key/a",
        f"/api/node/{root}/kv/keys",
        f"/api/node/{root}/kv/info",
        f"/api/xnode/{root}/kv/key/a",
    ]
    requests: list[dict[str, object]] = [{"method": "GET", "path": p} for p in gets]
    requests += [
        {"method": "GET", "path": gets[2], "query_string": "byte_start=3&byte_end=9"},
        {"method": "GET", "path": gets[2], "headers": {"Range": "bytes=5-"}},
        {"method": "HEAD", "path": gets[0]},
        {"method": "OPTIONS", "path": gets[0], "headers": {"Access-Control-Request-Method": "GET"}},
    ]
    served_fast = 0
    for req in requests:
        env = falcon.testing.create_environ(**req)  # type: ignore[arg-type]
        assert app.key_gets is not None
        served_fast += app.key_gets.answer(env) is not None
        assert _answer(app, c, True, **req) == _answer(app, c, False, **req), req
    assert served_fast == 6  # the first six: every spelling of a version, UTF-8 keys too


def test_a_write_on_another_server_is_read_at_once(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    init_store(url)
    one = create_app(ServerConfig(url), ObjectStore(open_store_backend(url)))
    two = create_app(ServerConfig(url), ObjectStore(open_store_backend(url)))
    with LiveServer(one) as a, LiveServer(two) as b:
        root = a.post("/api/repos")["root"]
        a.post(f"/api/repo/{root}/instance", b'{"typename": "keyvalue", "dataname": "kv"}')
        for i in range(5):
            writer, reader = (a, b) if i % 2 else (b, a)
            writer.post(f"/api/node/{root}/kv/key/k", b"value %d" % i)
            status, headers, body = reader.request("GET", f"/api/node/{root}/kv/key/k")
            assert (status, body) == (200, b"value %d" % i)
            assert headers["access-control-allow-origin"] == "*"
        b.request("DELETE", f"/api/node/{root}/kv/key/k")
        assert a.request("GET", f"/api/node/{root}/kv/key/k")[0] == 404
        b.post(f"/api/node/{root}/commit", b'{"note": "done"}')
        assert a.request("POST", f"/api/node/{root}/kv/key/k", b"late")[0] == 400
        assert a.request("GET", f"/api/node/{root}/kv/key/k")[0] == 404


def test_no_fast_path_behind_a_token_check() -> None:
    made = create_app(ServerConfig("memory://", read_token="r" * 32, write_token="w" * 32))
    assert isinstance(made, App)
    assert made.key_gets is None
