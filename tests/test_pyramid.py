"""Grayscale pyramids: ``downres`` builds NAME_1, NAME_2... by 2x2x2 means, incrementally.

Expected levels come from the plain loop twin (``kernels/_reference.mean_2x2x2``)
applied level by level to the numpy volume (unwritten blocks are zeros).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import falcon.testing
import numpy as np
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.kernels import _reference
from cas_dvid.testing.live import LiveServer

B = 16  # block edge
SHAPE = (64, 80, 96)  # z, y, x: 4 x 5 x 6 blocks


def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://")))


def make(c: falcon.testing.TestClient, **settings: str) -> tuple[str, np.ndarray]:
    """A repo with uint8blk ``g``: random voxels in every block but two (left unwritten)."""
    root = c.simulate_post("/api/repos", json={}).json["root"]
    body = {"typename": "uint8blk", "dataname": "g", "BlockSize": f"{B},{B},{B}", **settings}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    vol = np.random.default_rng(3).integers(0, 256, SHAPE, dtype=np.uint8)
    vol[0:B, 0:B, 0:B] = 0
    vol[3 * B :, 4 * B :, 5 * B :] = 0
    for z in range(0, SHAPE[0], B):
        for y in range(0, SHAPE[1], B):
            for x in range(0, SHAPE[2], B):
                blk = vol[z : z + B, y : y + B, x : x + B]
                if not blk.any():
                    continue
                url = f"/api/node/{root}/g/raw/0_1_2/{B}_{B}_{B}/{x}_{y}_{z}"
                assert c.simulate_post(url, body=blk.tobytes()).status_code == 200
    return root, vol


def downres(c: falcon.testing.TestClient, root: str, query: str = "") -> dict:
    r = c.simulate_post(f"/api/node/{root}/g/downres{query}")
    assert r.status_code == 202, r.text
    for _ in range(600):
        status = c.simulate_get(f"/api/node/{root}/g/downres").json
        if status["Status"] != "running":
            break
        time.sleep(0.02)
    assert status["Status"] == "done", status
    return status


def read(
    c: falcon.testing.TestClient, root: str, name: str, shape: tuple, q: str = ""
) -> np.ndarray:
    z, y, x = shape
    r = c.simulate_get(f"/api/node/{root}/{name}/raw/0_1_2/{x}_{y}_{z}/0_0_0{q}")
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, np.uint8).reshape(shape)


def levels_of(vol: np.ndarray, n: int) -> list[np.ndarray]:
    out = [vol]
    for _ in range(n):
        out.append(_reference.mean_2x2x2(out[-1]))
    return out


def test_downres_builds_levels_until_one_block() -> None:
    c = client()
    root, vol = make(c)
    status = downres(c, root)
    # 96 x 80 x 64 voxels in 16^3 blocks: level 1 is 3x3x2 blocks, level 2 2x2x1, level 3 one.
    assert status["Levels"] == 3 and status["Deleted"] == 0
    want = levels_of(vol, 3)
    for level in (1, 2, 3):
        shape = want[level].shape
        assert np.array_equal(read(c, root, f"g_{level}", shape), want[level]), level
        assert np.array_equal(read(c, root, "g", shape, f"?scale={level}"), want[level])
    info = c.simulate_get(f"/api/node/{root}/g_2/info").json
    assert info["Extended"]["VoxelSize"] == [32, 32, 32]
    assert info["Extended"]["BlockSize"] == [B, B, B]
    assert info["Extended"]["MinPoint"] == [0, 0, 0]
    assert info["Extended"]["MaxPoint"] == [23, 19, 15]
    # neuroglancer counts levels by the instances NAME_1, NAME_2... in the repo's info.
    names = c.simulate_get("/api/repos/info").json[root]["DataInstances"]
    assert {"g", "g_1", "g_2", "g_3"} <= set(names)
    r = c.simulate_get(f"/api/node/{root}/g/raw/0_1_2/8_8_8/0_0_0?scale=4")
    assert r.status_code == 400 and "no scale 4" in r.text
    # Nothing changed: a rerun writes no block.
    assert downres(c, root)["Blocks"] == 0


def test_regeneration_at_a_child_recomputes_only_over_the_edit() -> None:
    c = client()
    root, vol = make(c)
    downres(c, root)
    assert c.simulate_post(f"/api/node/{root}/commit", json={"note": "v1"}).status_code == 200
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    edit = np.full((B, B, B), 200, np.uint8)
    url = f"/api/node/{child}/g/raw/0_1_2/{B}_{B}_{B}/{2 * B}_{B}_{3 * B}"
    assert c.simulate_post(url, body=edit.tobytes()).status_code == 200
    vol2 = vol.copy()
    vol2[3 * B : 4 * B, B : 2 * B, 2 * B : 3 * B] = 200
    status = downres(c, child)
    assert status["Blocks"] == 3  # one block per level
    for level, want in enumerate(levels_of(vol2, 3)[1:], start=1):
        assert np.array_equal(read(c, child, f"g_{level}", want.shape), want)
    for level, want in enumerate(levels_of(vol, 3)[1:], start=1):
        assert np.array_equal(read(c, root, f"g_{level}", want.shape), want)  # parent kept


def test_uint16_source() -> None:
    c = client()
    root = c.simulate_post("/api/repos", json={}).json["root"]
    body = {"typename": "uint16blk", "dataname": "g", "BlockSize": "16,16,16"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    vol = np.random.default_rng(1).integers(0, 65536, (32, 32, 32), dtype=np.uint16)
    url = f"/api/node/{root}/g/raw/0_1_2/32_32_32/0_0_0"
    assert c.simulate_post(url, body=vol.tobytes()).status_code == 200
    assert downres(c, root)["Levels"] == 1
    r = c.simulate_get(f"/api/node/{root}/g_1/raw/0_1_2/16_16_16/0_0_0")
    got = np.frombuffer(r.content, "<u2").reshape(16, 16, 16)
    assert np.array_equal(got, _reference.mean_2x2x2(vol))


@pytest.mark.parametrize(
    ("setup", "query", "message"),
    [
        ("", "?levels=x", "levels must be"),
        ("", "?levels=0", "levels must be 1.."),
        ("", "?levels=99", "levels must be 1.."),
        ("uint64", "", "uint8blk or uint16blk"),
        ("clash", "", "cannot be level 1"),
        ("locked", "", "locked"),
    ],
)
def test_bad_downres_is_400_and_changes_nothing(setup: str, query: str, message: str) -> None:
    c = client()
    if setup == "uint64":
        root = c.simulate_post("/api/repos", json={}).json["root"]
        body = {"typename": "uint64blk", "dataname": "g"}
        c.simulate_post(f"/api/repo/{root}/instance", json=body)
    else:
        root, _ = make(c)
    if setup == "clash":
        body = {"typename": "uint8blk", "dataname": "g_1", "BlockSize": "32,32,32"}
        assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    if setup == "locked":
        c.simulate_post(f"/api/node/{root}/commit", json={"note": "x"})
    before = c.simulate_get("/api/repos/info").json[root]["DataInstances"]
    r = c.simulate_post(f"/api/node/{root}/g/downres{query}")
    assert r.status_code == 400 and message in r.text, r.text
    assert c.simulate_get("/api/repos/info").json[root]["DataInstances"] == before


def test_cli_downres_over_waitress() -> None:
    app = create_app(ServerConfig("memory://"))
    c = falcon.testing.TestClient(app)
    root, vol = make(c)
    with LiveServer(app) as srv:
        r = subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "node", root, "g", "downres", "--levels", "2"]
            + ["--server", srv.url],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert "Built 2 levels of g" in r.stdout
        status, _, body = srv.request("GET", f"/api/node/{root}/g/raw/0_1_2/48_40_32/0_0_0?scale=1")
        assert status == 200
        want = _reference.mean_2x2x2(vol)
        assert np.array_equal(np.frombuffer(body, np.uint8).reshape(32, 40, 48), want)
        status, _, body = srv.request("GET", f"/api/node/{root}/g/downres")
        assert json.loads(body)["Status"] == "done"
