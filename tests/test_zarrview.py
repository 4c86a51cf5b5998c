"""The /zarr view read by zarr-python and tensorstore over a real server.

Each reader must get exactly what DVID's raw endpoint returns, at two versions and
at a commit id.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import tensorstore as ts
import zarr
import zarr.storage

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

# (z, y, x) of the written volume (writes must be block aligned).
SHAPE = (64, 96, 128)


@dataclass
class Fixture:
    srv: LiveServer
    v1: str
    v2: str
    commit: str
    grey1: np.ndarray
    grey2: np.ndarray


def post(srv: LiveServer, path: str, body: bytes = b"{}") -> dict[str, str]:
    return srv.post(path, body)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live() -> Iterator[Fixture]:
    rng = np.random.default_rng(7)
    grey1 = rng.integers(0, 255, SHAPE, dtype=np.uint8)
    grey2 = grey1.copy()
    grey2[:32, :32, :32] = 9
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        v1 = post(srv, "/api/repos")["root"]
        post(
            srv,
            f"/api/repo/{v1}/instance",
            b'{"typename":"uint8blk","dataname":"g","BlockSize":"32,32,32"}',
        )
        z, y, x = SHAPE
        post(srv, f"/api/node/{v1}/g/raw/0_1_2/{x}_{y}_{z}/0_0_0", grey1.tobytes())
        commit = post(srv, f"/api/node/{v1}/commit", b'{"note":"one"}')["commit_id"]
        v2 = post(srv, f"/api/node/{v1}/newversion")["child"]
        post(srv, f"/api/node/{v2}/g/raw/0_1_2/32_32_32/0_0_0", grey2[:32, :32, :32].tobytes())
        yield Fixture(srv, v1, v2, commit, grey1, grey2)


def raw(srv: LiveServer, version: str, box: tuple[slice, slice, slice]) -> np.ndarray:
    z, y, x = box
    size = f"{x.stop - x.start}_{y.stop - y.start}_{z.stop - z.start}"
    path = f"/api/node/{version}/g/raw/0_1_2/{size}/{x.start}_{y.start}_{z.start}"
    status, _, body = srv.request("GET", path)
    assert status == 200, body
    return np.frombuffer(body, np.uint8).reshape(z.stop - z.start, y.stop - y.start, -1)


BOX = (slice(5, 60), slice(10, 77), slice(3, 119))


def test_zarr_json(live: Fixture) -> None:
    status, headers, body = live.srv.request("GET", f"/zarr/{live.v1}/g/zarr.json")
    assert status == 200, body
    doc = json.loads(body)
    assert doc["shape"] == list(SHAPE)
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == [32, 32, 32]
    assert doc["data_type"] == "uint8"
    assert headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("which", ["v1", "v2", "commit", "branch"])
def test_zarr_python_reads_versions(live: Fixture, which: str) -> None:
    spec = {"v1": live.v1[:8], "v2": live.v2, "commit": live.commit, "branch": f"{live.v1}:master"}
    version = spec[which]
    store = zarr.storage.FsspecStore.from_url(f"{live.srv.url}/zarr/{version}/g", read_only=True)
    arr = zarr.open_array(store=store, mode="r")
    got = arr[BOX]
    uuid = live.v1 if which in ("v1", "commit") else live.v2
    expected = live.grey1 if uuid == live.v1 else live.grey2
    np.testing.assert_array_equal(got, raw(live.srv, uuid, BOX))
    np.testing.assert_array_equal(got, expected[BOX])


@pytest.mark.parametrize("which", ["v1", "v2", "commit"])
def test_tensorstore_reads_versions(live: Fixture, which: str) -> None:
    version = {"v1": live.v1, "v2": live.v2, "commit": live.commit}[which]
    arr = ts.open(
        {
            "driver": "zarr3",
            "kvstore": {"driver": "http", "base_url": f"{live.srv.url}/zarr/{version}/g/"},
        },
        read=True,
    ).result()
    got = arr[BOX].read().result()
    uuid = live.v2 if which == "v2" else live.v1
    np.testing.assert_array_equal(got, raw(live.srv, uuid, BOX))


def test_missing_chunk_is_404_and_commit_urls_cache(live: Fixture) -> None:
    srv = live.srv
    assert srv.request("GET", f"/zarr/{live.v1}/g/c/9/0/0")[0] == 404
    status, headers, _ = srv.request("GET", f"/zarr/{live.commit}/g/c/0/0/0")
    assert status == 200
    assert "immutable" in headers["cache-control"]
    etag = headers["etag"]
    status, _, body = srv.request(
        "GET", f"/zarr/{live.commit}/g/c/0/0/0", headers={"If-None-Match": etag}
    )
    assert status == 304
    assert body == b""
    # the same chunk by UUID at an open version must be revalidated
    status, headers, _ = srv.request("GET", f"/zarr/{live.v2}/g/c/0/0/0")
    assert headers["cache-control"] == "no-cache"
    assert headers["etag"] != etag  # v2 rewrote that block


def test_labelmap_as_uint64(live: Fixture) -> None:
    srv = live.srv
    rng = np.random.default_rng(3)
    labels = rng.integers(1, 2**40, (32, 32, 64), dtype=np.uint64)
    root = post(srv, "/api/repos")["root"]
    post(
        srv,
        f"/api/repo/{root}/instance",
        b'{"typename":"labelmap","dataname":"s","BlockSize":"32,32,32"}',
    )
    post(srv, f"/api/node/{root}/s/raw/0_1_2/64_32_32/0_0_0", labels.tobytes())
    store = zarr.storage.FsspecStore.from_url(f"{srv.url}/zarr/{root}/s", read_only=True)
    arr = zarr.open_array(store=store, mode="r")
    assert arr.dtype == np.uint64
    np.testing.assert_array_equal(arr[:], labels)


def test_bad_keys(live: Fixture) -> None:
    srv = live.srv
    assert srv.request("GET", f"/zarr/{live.v1}/g/c/a/0/0")[0] == 400
    assert srv.request("GET", f"/zarr/{live.v1}/g/nothing")[0] == 404
    assert srv.request("GET", f"/zarr/{live.v1}/nope/zarr.json")[0] == 400


def test_labelmap_pyramid_is_ome_multiscale_group(live: Fixture) -> None:
    srv = live.srv
    labels = np.random.default_rng(5).integers(1, 9, (32, 64, 64), dtype=np.uint64)
    root = post(srv, "/api/repos")["root"]
    body = b'{"typename":"labelmap","dataname":"p","BlockSize":"32,32,32","MaxDownresLevel":"1"}'
    post(srv, f"/api/repo/{root}/instance", body)
    post(srv, f"/api/node/{root}/p/raw/0_1_2/64_64_32/0_0_0", labels.tobytes())
    post(srv, f"/api/node/{root}/p/downres")
    store = zarr.storage.FsspecStore.from_url(f"{srv.url}/zarr/{root}/p", read_only=True)
    group = zarr.open_group(store=store, mode="r")
    datasets = group.attrs["ome"]["multiscales"][0]["datasets"]
    assert [d["path"] for d in datasets] == ["s0", "s1"]
    np.testing.assert_array_equal(group["s0"][:], labels)
    s1 = group["s1"]
    assert s1.shape == (16, 32, 32)
    status, _, raw1 = srv.request("GET", f"/api/node/{root}/p/raw/0_1_2/32_32_16/0_0_0?scale=1")
    assert status == 200
    np.testing.assert_array_equal(s1[:], np.frombuffer(raw1, np.uint64).reshape(16, 32, 32))
    assert s1[:].any()
