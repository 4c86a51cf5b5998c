"""The requests neuroglancer's stock dvid:// datasource makes, against a real server.

Derived from google/neuroglancer ``src/datasource/dvid/frontend.ts`` (repos/info
parsing: ``Base.TypeName``, ``Base.Compression``, ``Extended.Values[0].DataType``,
``VoxelSize``, ``BlockSize``, ``MinPoint``, ``MaxPoint`` parsed with ``parseIntVec``,
labelmap ``MaxDownresLevel`` through ``verifyPositiveInt``) and
``src/datasource/dvid/backend.ts`` (``DVIDVolumeChunkSource.getPath``: 64^3 chunks as
``raw/0_1_2/64_64_64/{x}_{y}_{z}/jpeg`` for plain uint8blk, ``subvolblocks/...`` with a
16-byte header sliced off for jpeg-compressed uint8blk, and
``raw/0_1_2/...?compression=googlegzip&scale=N`` for labelmap, decoded as
compressed_segmentation with 8^3 blocks). A browser also needs CORS headers on every
answer and an answered OPTIONS preflight.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

import compressed_segmentation as cseg
import numpy as np
import pytest
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

ORIGIN = {"Origin": "http://viewer.example"}


@dataclass
class Fixture:
    srv: LiveServer
    uuid: str
    grey: np.ndarray
    labels: np.ndarray


def post(srv: LiveServer, path: str, body: bytes = b"{}") -> dict[str, str]:
    return srv.post(path, body)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def live() -> Iterator[Fixture]:
    rng = np.random.default_rng(11)
    # smooth grey so JPEG round trips stay close
    grey = (np.add.outer(np.arange(64), np.add.outer(np.arange(64), np.arange(128))) % 256).astype(
        np.uint8
    )
    labels = rng.integers(1, 5, (64, 64, 128), dtype=np.uint64)
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        uuid = post(srv, "/api/repos")["root"]
        for name, extra in (("grey", ""), ("greyjpg", ',"Compression":"jpeg"')):
            doc = f'"typename":"uint8blk","dataname":"{name}","BlockSize":"64,64,64"{extra}'
            body = ("{" + doc + "}").encode()
            post(srv, f"/api/repo/{uuid}/instance", body)
            post(srv, f"/api/node/{uuid}/{name}/raw/0_1_2/128_64_64/64_0_0", grey.tobytes())
        body = (
            b'{"typename":"labelmap","dataname":"seg","BlockSize":"64,64,64","MaxDownresLevel":"1"}'
        )
        post(srv, f"/api/repo/{uuid}/instance", body)
        post(srv, f"/api/node/{uuid}/seg/raw/0_1_2/128_64_64/64_0_0", labels.tobytes())
        post(srv, f"/api/node/{uuid}/seg/downres")
        yield Fixture(srv, uuid, grey, labels)


def test_repos_info_parses_as_neuroglancer_does(live: Fixture) -> None:
    status, headers, body = live.srv.request("GET", "/api/repos/info", headers=ORIGIN)
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    repo = json.loads(body)[live.uuid]
    assert isinstance(repo["Alias"], str)
    assert isinstance(repo["Description"], str)
    assert live.uuid in repo["DAG"]["Nodes"]
    for name in ("grey", "greyjpg", "seg"):
        inst = repo["DataInstances"][name]
        ext = inst["Extended"]
        assert isinstance(inst["Base"]["TypeName"], str)
        assert ext["Values"][0]["DataType"] in ("uint8", "uint64")
        assert len(ext["VoxelSize"]) == 3
        assert all(v > 0 for v in ext["VoxelSize"] + ext["BlockSize"])
        assert ext["MinPoint"] == [64, 0, 0]
        assert ext["MaxPoint"] == [191, 63, 63]
    assert "jpeg" in repo["DataInstances"]["greyjpg"]["Base"]["Compression"]
    assert "jpeg" not in repo["DataInstances"]["grey"]["Base"]["Compression"]
    level = repo["DataInstances"]["seg"]["Extended"]["MaxDownresLevel"]
    assert isinstance(level, int)
    assert level > 0  # verifyPositiveInt


def test_cors_preflight(live: Fixture) -> None:
    headers = {
        **ORIGIN,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    status, got, _ = live.srv.request(
        "OPTIONS", f"/api/node/{live.uuid}/grey/info", headers=headers
    )
    assert status in (200, 204)
    assert got["access-control-allow-origin"] == "*"
    assert "GET" in got["access-control-allow-methods"]
    assert "authorization" in got["access-control-allow-headers"].lower()
    # errors carry the header too, or the browser hides the message
    status, got, _ = live.srv.request("GET", "/api/node/ffffffff/grey/info", headers=ORIGIN)
    assert status == 400
    assert got["access-control-allow-origin"] == "*"


def jpeg_chunk(body: bytes) -> np.ndarray:
    img = np.asarray(Image.open(io.BytesIO(body)))
    assert img.size == 64 * 64 * 64  # decodeJpegChunk: width * height = chunk voxels
    return img.reshape(64, 64, 64)


@pytest.mark.parametrize(
    "x", [64, 128, 0, 192], ids=["first", "second", "missing-left", "missing-right"]
)
def test_raw_jpeg_chunks(live: Fixture, x: int) -> None:
    path = f"/api/node/{live.uuid}/grey/raw/0_1_2/64_64_64/{x}_0_0/jpeg"
    status, headers, body = live.srv.request("GET", path, headers=ORIGIN)
    assert status == 200
    assert headers["access-control-allow-origin"] == "*"
    got = jpeg_chunk(body).astype(int)
    want = live.grey[:, :, x - 64 : x] if 64 <= x < 192 else np.zeros((64, 64, 64), np.uint8)
    assert np.abs(got - want).mean() < 8


def test_subvolblocks_for_jpeg_instances(live: Fixture) -> None:
    path = f"/api/node/{live.uuid}/greyjpg/subvolblocks/64_64_64/128_0_0"
    status, _, body = live.srv.request("GET", path, headers=ORIGIN)
    assert status == 200
    bx, by, bz, n = struct.unpack("<4i", body[:16])
    assert (bx, by, bz, n) == (2, 0, 0, len(body) - 16)
    got = jpeg_chunk(body[16:]).astype(int)  # response.slice(16)
    assert np.abs(got - live.grey[:, :, 64:128]).mean() < 8


@pytest.mark.parametrize("scale", [0, 1])
def test_labelmap_googlegzip_chunks(live: Fixture, scale: int) -> None:
    path = (
        f"/api/node/{live.uuid}/seg/raw/0_1_2/64_64_64/64_0_0?compression=googlegzip&scale={scale}"
    )
    status, headers, body = live.srv.request("GET", path, headers=ORIGIN)
    assert status == 200, body
    assert headers["access-control-allow-origin"] == "*"
    if headers.get("content-encoding") == "gzip":  # the browser inflates it
        body = gzip.decompress(body)
    # neuroglancer's decoder indexes [x, y, z] with x fastest: Fortran order in the package
    xyz = cseg.decompress(body, (64, 64, 64), np.uint64, (8, 8, 8), order="F")
    got = np.ascontiguousarray(np.asarray(xyz).T)
    if scale == 0:
        np.testing.assert_array_equal(got, live.labels[:, :, :64])
    else:
        # scale 1 covers 128^3 voxels of scale 0 from 64: our data fills its first half in x
        assert set(np.unique(got[:32, :32, :32])) <= set(range(1, 5))
        assert not got[32:].any()


ORIGIN = {"Origin": "https://neuroglancer-demo.appspot.com"}


def test_grayscale_pyramid_levels_and_bounds_in_repo_info() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        for body in (
            b'{"typename":"uint8blk","dataname":"grayscale","BlockSize":"32,32,32"}',
            b'{"typename":"labelmap","dataname":"seg","BlockSize":"32,32,32"}',
        ):
            assert srv.request("POST", f"/api/repo/{root}/instance", body)[0] == 200
        gray = np.random.default_rng(0).integers(0, 256, (64, 64, 128), dtype=np.uint8)
        n = f"/api/node/{root}"
        assert (
            srv.request("POST", f"{n}/grayscale/raw/0_1_2/128_64_64/64_0_0", gray.tobytes())[0]
            == 200
        )
        labels = np.repeat(np.arange(1, 5, dtype=np.uint64), 16 * 64 * 64).reshape(64, 64, 64)
        assert srv.request("POST", f"{n}/seg/raw/0_1_2/64_64_64/0_0_0", labels.tobytes())[0] == 200
        assert srv.request("POST", f"{n}/grayscale/downres?levels=1")[0] == 202
        for _ in range(500):
            status = json.loads(srv.request("GET", f"{n}/grayscale/downres")[2])["Status"]
            if status != "running":
                break
            time.sleep(0.02)
        assert status == "done"
        # 1. repo info, read for each instance's bounds and layout.
        status, headers, data = srv.request("GET", "/api/repos/info", headers=ORIGIN)
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        insts = json.loads(data)[root]["DataInstances"]
        g = insts["grayscale"]["Extended"]
        assert g["MinPoint"] == [64, 0, 0] and g["MaxPoint"] == [191, 63, 63]
        assert g["Values"][0]["DataType"] == "uint8" and g["BlockSize"] == [32, 32, 32]
        assert all(v > 0 for v in g["VoxelSize"])
        assert "grayscale_1" in insts  # numLevels = 2
        s = insts["seg"]["Extended"]
        assert s["MinPoint"] == [0, 0, 0] and s["MaxPoint"] == [63, 63, 63]
        assert s["Values"][0]["DataType"] == "uint64"
        # 2. a preflight, then grayscale chunks as JPEG: stored, and missing (a zero chunk).
        status, headers, _ = srv.request(
            "OPTIONS",
            f"{n}/grayscale/raw/0_1_2/64_64_64/64_0_0/jpeg",
            headers={**ORIGIN, "Access-Control-Request-Method": "GET"},
        )
        assert status in (200, 204) and headers["access-control-allow-origin"] == "*"
        status, headers, data = srv.request(
            "GET", f"{n}/grayscale/raw/0_1_2/64_64_64/64_0_0/jpeg", headers=ORIGIN
        )
        assert status == 200 and headers["access-control-allow-origin"] == "*"
        img = np.asarray(Image.open(io.BytesIO(data)))
        assert img.shape == (64 * 64, 64)
        assert np.abs(img.astype(int) - gray[:, :, :64].reshape(-1, 64)).mean() < 20
        status, _, data = srv.request(
            "GET", f"{n}/grayscale/raw/0_1_2/64_64_64/1024_1024_1024/jpeg", headers=ORIGIN
        )
        assert status == 200 and not np.asarray(Image.open(io.BytesIO(data))).any()
        status, _, data = srv.request(
            "GET", f"{n}/grayscale_1/raw/0_1_2/64_64_64/0_0_0/jpeg", headers=ORIGIN
        )
        assert status == 200 and data[:2] == b"\xff\xd8"
        # 3. label chunks in neuroglancer's compressed segmentation, gzipped.
        status, headers, data = srv.request(
            "GET",
            f"{n}/seg/raw/0_1_2/64_64_64/0_0_0?compression=googlegzip&scale=0",
            headers=ORIGIN,
        )
        assert status == 200 and headers["access-control-allow-origin"] == "*" and data
        # Errors carry the header too, so the viewer can read the message.
        status, headers, _ = srv.request("GET", f"{n}/nope/info", headers=ORIGIN)
        assert status == 400 and headers["access-control-allow-origin"] == "*"


def test_meshes_and_skeletons_from_keyvalue_conventions(live: Fixture) -> None:
    """A ``NAME_meshes`` / ``NAME_skeletons`` keyvalue beside a labelmap, read as neuroglancer does.

    frontend.ts looks for those instance names in repos/info; backend.ts fetches
    ``key/{body}.ngmesh`` (uint32 vertex count, float32 xyz each, then uint32 triangle
    indices, little-endian) and ``key/{body}_swc`` (SWC text).
    """
    verts = np.array([[0, 0, 0], [64, 0, 0], [0, 64, 0], [0, 0, 64]], np.float32)
    tris = np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]], np.uint32)
    mesh = struct.pack("<I", len(verts)) + verts.tobytes() + tris.tobytes()
    swc = b"1 0 10 10 10 2 -1\n2 0 40 10 10 2 1\n"
    for name in ("seg_meshes", "seg_skeletons"):
        post(
            live.srv,
            f"/api/repo/{live.uuid}/instance",
            json.dumps({"typename": "keyvalue", "dataname": name}).encode(),
        )
    post(live.srv, f"/api/node/{live.uuid}/seg_meshes/key/3.ngmesh", mesh)
    post(live.srv, f"/api/node/{live.uuid}/seg_skeletons/key/3_swc", swc)
    _, _, body = live.srv.request("GET", "/api/repos/info", headers=ORIGIN)
    names = set(json.loads(body)[live.uuid]["DataInstances"])
    assert {"seg", "seg_meshes", "seg_skeletons"} <= names
    status, headers, got = live.srv.request(
        "GET", f"/api/node/{live.uuid}/seg_meshes/key/3.ngmesh", headers=ORIGIN
    )
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    n = struct.unpack_from("<I", got)[0]
    assert np.array_equal(np.frombuffer(got, np.float32, 3 * n, 4).reshape(n, 3), verts)
    assert np.array_equal(np.frombuffer(got, np.uint32, offset=4 + 12 * n).reshape(-1, 3), tris)
    status, _, got = live.srv.request(
        "GET", f"/api/node/{live.uuid}/seg_skeletons/key/3_swc", headers=ORIGIN
    )
    assert status == 200 and got == swc
