"""DVID compatibility a new user hits first: each case found by using the server as DVID's users do."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import falcon.testing
import numpy as np
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://")))


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer(create_app(ServerConfig("memory://compat"))) as srv:
        yield srv


def volume(c: falcon.testing.TestClient) -> tuple[str, np.ndarray]:
    root = c.simulate_post("/api/repos", json={}).json["root"]
    c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"})
    vol = np.random.default_rng(1).integers(0, 255, (32, 32, 32), dtype=np.uint8)
    r = c.simulate_post(f"/api/node/{root}/g/raw/0_1_2/32_32_32/0_0_0", body=vol.tobytes())
    assert r.status_code == 200, r.text
    return root, vol


@pytest.mark.parametrize("fmt", ["octet-stream", "raw", "bin"])
def test_3d_raw_with_a_non_jpeg_format_is_raw_voxels(
    client: falcon.testing.TestClient, fmt: str
) -> None:
    root, vol = volume(client)
    r = client.simulate_get(f"/api/node/{root}/g/raw/0_1_2/8_8_8/4_4_4/{fmt}")
    assert r.status_code == 200, r.text
    assert r.content == vol[4:12, 4:12, 4:12].tobytes()
    jpg = client.simulate_get(f"/api/node/{root}/g/raw/0_1_2/8_8_8/4_4_4/jpeg")
    assert jpg.headers["content-type"] == "image/jpeg"


def test_plane_before_raw_is_an_alias(client: falcon.testing.TestClient) -> None:
    root, vol = volume(client)
    for plane in ("xy", "xz", "yz"):
        a = client.simulate_get(f"/api/node/{root}/g/{plane}/raw/16_16/2_3_4/raw")
        b = client.simulate_get(f"/api/node/{root}/g/raw/{plane}/16_16/2_3_4/raw")
        assert a.status_code == 200 and a.content == b.content, plane
    xy = client.simulate_get(f"/api/node/{root}/g/xy/raw/16_16/2_3_4/raw").content
    assert xy == vol[4, 3:19, 2:18].tobytes()


def test_config_keys_are_case_insensitive(client: falcon.testing.TestClient) -> None:
    root = client.simulate_post(
        "/api/repos", json={"Alias": "Capital", "Description": "Upper"}
    ).json["root"]
    info = client.simulate_get(f"/api/repo/{root}/info").json
    assert (info["Alias"], info["Description"]) == ("Capital", "Upper")
    r = client.simulate_post(f"/api/repo/{root}/info", json={"ALIAS": "again"})
    assert r.status_code == 200
    assert client.simulate_get(f"/api/repo/{root}/info").json["Alias"] == "again"


def test_dvid_version_parses_as_neuclease_expects(client: falcon.testing.TestClient) -> None:
    info = client.simulate_get("/api/server/info").json
    version = info["DVID Version"]
    # neuclease's fetch_mappings: starts with "v", parts split on "." and "-" are integers
    assert version.startswith("v")
    assert all(p.isdigit() for p in re.split(r"[.-]", version[1:])[:3])
    assert info["cas_dvid Version"]


def test_type_help_over_http(live: LiveServer) -> None:
    status, headers, body = live.request("GET", "/api/help/uint8blk")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"BlockSize" in body and b"raw/0_1_2" in body
    status, _, body = live.request("GET", "/api/help/grayscale8")
    assert status == 200 and b"uint8blk" in body
    status, _, body = live.request("GET", "/api/help/keyvalue")
    assert status == 200 and b"keyrange" in body
    status, _, body = live.request("GET", "/api/help/nosuchtype")
    assert status == 400 and b"not supported" in body


def test_bad_api_call_points_at_help_with_the_port(live: LiveServer) -> None:
    _, _, body = live.request("POST", "/api/repos", b"{}")
    root = body.split(b'"')[3].decode()
    live.request(
        "POST", f"/api/repo/{root}/instance", b'{"typename": "keyvalue", "dataname": "kv"}'
    )
    status, _, body = live.request("GET", f"/api/node/{root}/kv/nonsense")
    assert status == 400
    assert f"See API help at http://127.0.0.1:{live.port}/api/help/keyvalue".encode() in body
    status, _, help_body = live.request("GET", "/api/help/keyvalue")
    assert status == 200


def test_cli_types_name_help(live: LiveServer) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "types", "grayscale8", "help", "--server", live.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "uint8blk" in r.stdout and "BlockSize" in r.stdout
