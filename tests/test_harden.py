"""Hostile input answers a DVID-style 400 (never a 500) and changes nothing (issue 12)."""

from __future__ import annotations

import json

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

HUGE = "9" * 5000
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def setup() -> tuple[falcon.testing.TestClient, str]:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    uuid = c.simulate_post("/api/repos", body="{}").json["root"]
    for typename, name in (("keyvalue", "kv"), ("uint8blk", "gr"), ("labelmap", "lm")):
        body = json.dumps({"typename": typename, "dataname": name})
        assert c.simulate_post(f"/api/repo/{uuid}/instance", body=body).status_code == 200
    assert c.simulate_post(f"/api/node/{uuid}/kv/key/a", body=b"hello").status_code == 200
    return c, uuid


@pytest.mark.parametrize(
    ("header", "want"),
    [
        (f"bytes=0-{HUGE}", b"hello"),
        (f"bytes=-{HUGE}", b"hello"),
        (f"bytes=1-{HUGE}", b"ello"),
    ],
)
def test_range_with_huge_numbers_is_clamped(
    setup: tuple[falcon.testing.TestClient, str], header: str, want: bytes
) -> None:
    c, uuid = setup
    r = c.simulate_get(f"/api/node/{uuid}/kv/key/a", headers={"Range": header})
    assert r.status_code == 206
    assert r.content == want


def test_range_starting_past_the_end_is_416(setup: tuple[falcon.testing.TestClient, str]) -> None:
    c, uuid = setup
    r = c.simulate_get(f"/api/node/{uuid}/kv/key/a", headers={"Range": f"bytes={HUGE}-"})
    assert r.status_code == 416


BAD_BODIES = [
    ("GET", "kv/keyvalues?json=true", DEEP, "nested too deeply"),
    (
        "GET",
        "kv/keyvalues?json=true",
        '[{"key":"a","byte_start":1' + "0" * 5000 + ',"byte_end":2}]',
        "4300 digits",
    ),
    ("GET", "lm/sizes", "[" * 50_000, "nested too deeply"),
    ("GET", "lm/sizes", "[1" + "0" * 5000 + "]", "4300 digits"),
    ("POST", "gr/resolution", "[1" + "0" * 5000 + ",1,1]", "4300 digits"),
    ("POST", "gr/resolution", DEEP, "nested too deeply"),
    ("POST", "gr/extents", '{"MinPoint":[0,0,0],"MaxPoint":[1' + "0" * 5000 + ",1,1]}", "4300"),
]


@pytest.mark.parametrize(("method", "path", "body", "words"), BAD_BODIES)
def test_hostile_json_bodies_are_400(
    setup: tuple[falcon.testing.TestClient, str], method: str, path: str, body: str, words: str
) -> None:
    c, uuid = setup
    before = c.simulate_get(f"/api/node/{uuid}/gr/info").json
    r = c.simulate_request(method, f"/api/node/{uuid}/{path}", body=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert words in r.text
    assert c.simulate_get(f"/api/node/{uuid}/gr/info").json == before


def test_hostile_json_repo_body_is_400(setup: tuple[falcon.testing.TestClient, str]) -> None:
    c, _ = setup
    r = c.simulate_post("/api/repos", body="[" * 50_000)
    assert r.status_code == 400
    assert "nested too deeply" in r.text


@pytest.mark.parametrize("value", ["\u0663", "1" * 5000, " 1", "+1"])
def test_byte_start_must_be_ascii_digits(
    setup: tuple[falcon.testing.TestClient, str], value: str
) -> None:
    c, uuid = setup
    r = c.simulate_get(f"/api/node/{uuid}/kv/key/a", params={"byte_start": value, "byte_end": "4"})
    assert r.status_code == 400
    assert "byte_start must be an unsigned integer" in r.text
    assert len(r.text) < 200


def _kv_proto(key: str, value: bytes) -> bytes:
    kb = key.encode()
    inner = b"\x0a" + bytes([len(kb)]) + kb + b"\x12" + bytes([len(value)]) + value
    return b"\x0a" + bytes([len(inner)]) + inner


def test_post_keyvalues_refuses_keys_with_slash(
    setup: tuple[falcon.testing.TestClient, str],
) -> None:
    c, uuid = setup
    body = _kv_proto("ok", b"1") + _kv_proto("a/b", b"x")
    r = c.simulate_post(f"/api/node/{uuid}/kv/keyvalues", body=body)
    assert r.status_code == 400
    assert "a/b" in r.text
    assert "'/'" in r.text
    assert c.simulate_get(f"/api/node/{uuid}/kv/keys").json == ["a"]  # nothing written
    assert (
        c.simulate_post(f"/api/node/{uuid}/kv/keyvalues", body=_kv_proto("ok", b"1")).status_code
        == 200
    )


def test_hostile_input_over_real_waitress(setup: tuple[falcon.testing.TestClient, str]) -> None:
    app = create_app(ServerConfig("memory://"))
    with LiveServer(app) as srv:
        uuid = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        body = json.dumps({"typename": "keyvalue", "dataname": "kv"}).encode()
        assert srv.request("POST", f"/api/repo/{uuid}/instance", body)[0] == 200
        assert srv.request("POST", f"/api/node/{uuid}/kv/key/a", b"hello")[0] == 200
        status, _, data = srv.request(
            "GET", f"/api/node/{uuid}/kv/key/a", headers={"Range": f"bytes=0-{HUGE}"}
        )
        assert (status, data) == (206, b"hello")
        status, headers, data = srv.request(
            "GET", f"/api/node/{uuid}/kv/keyvalues?json=true", DEEP.encode()
        )
        assert status == 400
        assert b"nested too deeply" in data
        assert headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("body", ["[" * 50_000, "[[1" + "0" * 5000 + ",0,0,0]]"])
def test_roi_json_parser_refuses_deep_and_huge(body: str) -> None:
    from cas_dvid.datatypes.roi import _gojson
    from cas_dvid.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="invalid JSON input"):
        _gojson.loads(body)


def test_split_body_with_a_run_across_millions_of_blocks_is_refused_quickly(
    setup: tuple[falcon.testing.TestClient, str],
) -> None:
    import struct
    import time

    import numpy as np

    c, uuid = setup
    vol = np.ones((64, 64, 64), np.uint64)
    assert c.simulate_post(f"/api/node/{uuid}/lm/raw/0_1_2/64_64_64/0_0_0", body=vol.tobytes())
    body = bytes(8) + struct.pack("<I", 1) + struct.pack("<4i", 0, 0, 0, 2**31 - 1)
    start = time.perf_counter()
    r = c.simulate_post(f"/api/node/{uuid}/lm/split-supervoxel/1", body=body)
    assert time.perf_counter() - start < 5
    assert r.status_code in (400, 413), r.text
    assert "block boundaries" in r.text
