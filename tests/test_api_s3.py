"""The whole stack on the S3 backend: a server on a bucket of the real S3 test server."""

from __future__ import annotations

import subprocess
import sys

import falcon.testing
import numpy as np

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.s3server import S3TestServer


def test_versions_keyvalue_and_voxels_on_s3(s3_server: S3TestServer, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/lab?endpoint_url={s3_server.endpoint}"
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "init", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and "created" in r.stdout, r.stderr
    c = falcon.testing.TestClient(create_app(ServerConfig(url)))
    root = c.simulate_post("/api/repos", json={"alias": "s3"}).json["root"]
    c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "kv"})
    c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"})
    assert c.simulate_post(f"/api/node/{root}/kv/key/a", body=b"x" * 5000).status_code == 200
    vol = np.random.default_rng(2).integers(0, 255, (32, 64, 64), dtype=np.uint8)
    assert (
        c.simulate_post(
            f"/api/node/{root}/g/raw/0_1_2/64_64_32/0_0_0", body=vol.tobytes()
        ).status_code
        == 200
    )
    c.simulate_post(f"/api/node/{root}/commit", json={})
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    c.simulate_delete(f"/api/node/{child}/kv/key/a")

    # a second server on the same bucket sees everything at once
    other = falcon.testing.TestClient(create_app(ServerConfig(url)))
    assert other.simulate_get(f"/api/node/{root}/kv/key/a").content == b"x" * 5000
    assert other.simulate_get(f"/api/node/{child}/kv/keys").json == []
    got = other.simulate_get(f"/api/node/{child}/g/raw/0_1_2/50_40_30/7_8_1").content
    assert got == vol[1:31, 8:48, 7:57].tobytes()
