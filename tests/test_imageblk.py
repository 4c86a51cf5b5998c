"""Voxel instances end to end: DVID's endpoints byte for byte, bad input, dedup."""

from __future__ import annotations

import io
import json
import struct

import falcon.testing
import lz4.block
import numpy as np
import pytest
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

RNG = np.random.default_rng(7)


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(
        create_app(ServerConfig("memory://", max_voxel_bytes=64 << 20))
    )


def new_volume(
    c: falcon.testing.TestClient, typename: str = "uint8blk", **settings: str
) -> tuple[str, str]:
    root = c.simulate_post("/api/repos", json={}).json["root"]
    r = c.simulate_post(
        f"/api/repo/{root}/instance", json={"typename": typename, "dataname": "g", **settings}
    )
    assert r.status_code == 200, r.text
    return root, f"/api/node/{root}/g"


def post_raw(
    c: falcon.testing.TestClient, base: str, vol: np.ndarray, offset: tuple[int, int, int]
) -> falcon.testing.Result:
    z, y, x = vol.shape
    return c.simulate_post(
        f"{base}/raw/0_1_2/{x}_{y}_{z}/{offset[0]}_{offset[1]}_{offset[2]}", body=vol.tobytes()
    )


def get_raw(
    c: falcon.testing.TestClient,
    base: str,
    size: tuple[int, int, int],
    offset: tuple[int, int, int],
    dtype: str = "<u1",
) -> np.ndarray:
    r = c.simulate_get(
        f"{base}/raw/0_1_2/{size[0]}_{size[1]}_{size[2]}/{offset[0]}_{offset[1]}_{offset[2]}"
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    return np.frombuffer(r.content, dtype=dtype).reshape(size[2], size[1], size[0])


def parse_records(body: bytes) -> dict[tuple[int, int, int], bytes]:
    """DVID's block stream, from the spec: int32 bx, by, bz, nbytes (LE), then nbytes of payload."""
    out, pos = {}, 0
    while pos < len(body):
        bx, by, bz, n = struct.unpack_from("<iiii", body, pos)
        pos += 16
        out[(bx, by, bz)] = body[pos : pos + n]
        pos += n
    assert pos == len(body)
    return out


# -- round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typename", "dtype"),
    [
        ("uint8blk", "<u1"),
        ("uint16blk", "<u2"),
        ("uint32blk", "<u4"),
        ("uint64blk", "<u8"),
        ("float32blk", "<f4"),
    ],
)
def test_raw_round_trip_every_type(
    client: falcon.testing.TestClient, typename: str, dtype: str
) -> None:
    _, base = new_volume(client, typename)
    vol = (RNG.random((32, 64, 96)) * 1000).astype(dtype)
    assert post_raw(client, base, vol, (-32, 0, 32)).status_code == 200
    got = get_raw(client, base, (96, 64, 32), (-32, 0, 32), dtype)
    assert np.array_equal(got, vol)
    info = client.simulate_get(f"{base}/info").json
    assert info["Base"]["TypeName"] == typename
    assert info["Extended"]["Values"][0]["DataType"] == typename.removesuffix("blk")


def test_unaligned_reads_zero_fill_and_negative_coordinates(
    client: falcon.testing.TestClient,
) -> None:
    _, base = new_volume(client)
    vol = RNG.integers(1, 255, (64, 64, 64), dtype=np.uint8)
    post_raw(client, base, vol, (-32, -64, 0))
    got = get_raw(client, base, (100, 90, 80), (-50, -70, -10))
    want = np.zeros((80, 90, 100), np.uint8)
    # vol occupies x -32..31, y -64..-1, z 0..63
    want[10:74, 6:70, 18:82] = vol
    assert np.array_equal(got, want)
    assert not get_raw(client, base, (5, 5, 5), (1000, 1000, 1000)).any()


def test_grayscale8_alias_and_settings(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(
        client, "grayscale8", BlockSize="64,64,64", VoxelSize="4,4,40", VoxelUnits="nanometers"
    )
    ext = client.simulate_get(f"{base}/info").json["Extended"]
    assert ext["BlockSize"] == [64, 64, 64] and ext["VoxelSize"] == [4, 4, 40]
    assert client.simulate_get(f"{base}/info").json["Extents"] is None


def test_extents_grow_and_are_versioned(client: falcon.testing.TestClient) -> None:
    root, base = new_volume(client)
    post_raw(client, base, np.ones((32, 32, 32), np.uint8), (0, 0, 0))
    assert client.simulate_get(f"{base}/info").json["Extents"] == {
        "MinPoint": [0, 0, 0],
        "MaxPoint": [31, 31, 31],
    }
    client.simulate_post(f"/api/node/{root}/commit", json={})
    child = client.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    post_raw(client, f"/api/node/{child}/g", np.ones((32, 32, 64), np.uint8), (64, -32, 32))
    assert client.simulate_get(f"/api/node/{child}/g/info").json["Extents"] == {
        "MinPoint": [0, -32, 0],
        "MaxPoint": [127, 31, 63],
    }
    assert client.simulate_get(f"{base}/info").json["Extents"]["MaxPoint"] == [31, 31, 31]
    meta = client.simulate_get(f"/api/node/{child}/g/metadata")
    assert meta.headers["content-type"] == "application/vnd.dvid-nd-data+json"
    axes = meta.json["Axes"]
    assert [(a["Label"], a["Size"], a["Offset"]) for a in axes] == [
        ("X", 128, 0),
        ("Y", 64, -32),
        ("Z", 64, 0),
    ]
    r = client.simulate_post(
        f"/api/node/{child}/g/extents", json={"MinPoint": [0, 0, 0], "MaxPoint": [9, 9, 9]}
    )
    assert r.status_code == 200
    assert client.simulate_get(f"/api/node/{child}/g/info").json["Extents"]["MaxPoint"] == [9, 9, 9]
    assert (
        client.simulate_post(f"/api/node/{child}/g/resolution", json=[4, 4, 30]).status_code == 200
    )
    assert client.simulate_get(f"/api/node/{child}/g/info").json["Extended"]["VoxelSize"] == [
        4,
        4,
        30,
    ]


def test_equal_blocks_are_stored_once() -> None:
    from cas_dvid.backends import MemoryBackend
    from cas_dvid.objects import ObjectStore

    backend = MemoryBackend()
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://"), ObjectStore(backend)))
    _, base = new_volume(c)
    before = {i.key for i in backend.list_prefix()}
    block = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    vol = np.tile(block, (2, 2, 4))  # 16 copies of one block
    post_raw(c, base, vol, (0, 0, 0))
    post_raw(c, base, np.zeros((64, 64, 64), np.uint8), (0, 0, 1024))  # 8 all-zero blocks
    new = {i.key for i in backend.list_prefix()} - before
    blobs = [k for k in new if backend.get(k)[3] == 1]  # object kind byte: BLOB
    assert len(blobs) == 2


# -- slices -------------------------------------------------------------------------------


def _image(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


def test_slices_png_jpeg_raw(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client)
    vol = RNG.integers(0, 255, (64, 64, 64), dtype=np.uint8)
    post_raw(client, base, vol, (0, 0, 0))
    xy = client.simulate_get(f"{base}/raw/xy/40_30/3_4_5")
    assert xy.headers["content-type"] == "image/png"
    assert np.array_equal(_image(xy.content), vol[5, 4:34, 3:43])
    xz = client.simulate_get(f"{base}/raw/xz/40_30/3_4_5/png")
    assert np.array_equal(_image(xz.content), vol[5:35, 4, 3:43])
    yz = client.simulate_get(f"{base}/raw/1_2/40_30/3_4_5")
    assert np.array_equal(_image(yz.content), vol[5:35, 4:44, 3])
    raw = client.simulate_get(f"{base}/raw/0_1/40_30/3_4_5/raw")
    assert raw.content == vol[5, 4:34, 3:43].tobytes()
    jpg = client.simulate_get(f"{base}/raw/xy/64_64/0_0_5/jpg:95")
    assert jpg.headers["content-type"] == "image/jpeg"
    assert np.abs(_image(jpg.content).astype(int) - vol[5]).mean() < 20
    iso = client.simulate_get(f"{base}/isotropic/xy/40_30/3_4_5")
    assert np.array_equal(_image(iso.content), vol[5, 4:34, 3:43])


def test_xy_slice_past_written_data_is_zero(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client)
    post_raw(client, base, np.full((32, 32, 32), 9, np.uint8), (0, 0, 0))
    img = _image(client.simulate_get(f"{base}/raw/xy/64_16/0_0_1").content)
    assert (img[:, :32] == 9).all() and (img[:, 32:] == 0).all()


# -- blocks and block streams ----------------------------------------------------------------


def test_blocks_get_post_with_background(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client, Background="7")
    a = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    b = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    assert (
        client.simulate_post(f"{base}/blocks/2_3_4/2", body=a.tobytes() + b.tobytes()).status_code
        == 200
    )
    got = client.simulate_get(f"{base}/blocks/1_3_4/4").content
    assert len(got) == 4 * 32768
    assert got[:32768] == bytes([7]) * 32768 and got[-32768:] == bytes([7]) * 32768
    assert got[32768 : 2 * 32768] == a.tobytes() and got[2 * 32768 : 3 * 32768] == b.tobytes()
    assert np.array_equal(get_raw(client, base, (32, 32, 32), (64, 96, 128)), a)
    short = client.simulate_post(f"{base}/blocks/0_0_0/2", body=a.tobytes())
    assert short.status_code == 400 and "expected 65536" in short.text


def test_subvolblocks_and_specificblocks_streams(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client)
    vol = RNG.integers(0, 255, (64, 64, 64), dtype=np.uint8)
    post_raw(client, base, vol, (32, 0, 0))
    r = client.simulate_get(f"{base}/subvolblocks/64_64_64/32_0_0")
    recs = parse_records(r.content)
    assert set(recs) == {(x, y, z) for x in (1, 2) for y in (0, 1) for z in (0, 1)}
    for (x, y, z), payload in recs.items():
        size = struct.unpack_from("<I", payload)[0]  # DVID lz4: u32 raw size, then an LZ4 block
        raw = lz4.block.decompress(payload[4:], uncompressed_size=size)
        want = vol[z * 32 : z * 32 + 32, y * 32 : y * 32 + 32, (x - 1) * 32 : (x - 1) * 32 + 32]
        assert raw == want.tobytes()
    unc = parse_records(
        client.simulate_get(
            f"{base}/subvolblocks/64_64_64/32_0_0", params={"compression": "uncompressed"}
        ).content
    )
    assert unc[(2, 1, 1)] == vol[32:, 32:, 32:].tobytes()
    spec = client.simulate_get(
        f"{base}/specificblocks",
        params={"blocks": "2,1,1,9,9,9,1,0,0", "compression": "uncompressed"},
    )
    recs = parse_records(spec.content)
    assert set(recs) == {(2, 1, 1), (1, 0, 0)}
    assert recs[(1, 0, 0)] == vol[:32, :32, :32].tobytes()
    bad = client.simulate_get(f"{base}/subvolblocks/64_64_64/33_0_0")
    assert bad.status_code == 400 and "block-aligned" in bad.text
    jpeg = client.simulate_get(
        f"{base}/subvolblocks/64_64_64/32_0_0", params={"compression": "jpeg"}
    )
    assert jpeg.status_code == 400


def test_jpeg_compressed_instance(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client, Compression="jpeg")
    assert "jpeg compression" in client.simulate_get(f"{base}/info").json["Base"]["Compression"]
    smooth = (
        np.add.outer(np.add.outer(np.arange(32), np.arange(32)), np.arange(32)).astype(np.uint8) * 2
    )
    post_raw(client, base, smooth, (0, 0, 0))
    got = get_raw(client, base, (32, 32, 32), (0, 0, 0))
    assert np.abs(got.astype(int) - smooth).mean() < 3
    recs = parse_records(
        client.simulate_get(f"{base}/specificblocks", params={"blocks": "0,0,0"}).content
    )
    img = _image(recs[(0, 0, 0)])
    assert img.shape == (32 * 32, 32)  # width X, height Y*Z, as DVID stores it
    r = client.simulate_post("/api/repos", json={}).json["root"]
    bad = client.simulate_post(
        f"/api/repo/{r}/instance",
        json={"typename": "uint16blk", "dataname": "x", "Compression": "jpeg"},
    )
    assert bad.status_code == 400 and "only for uint8" in bad.text


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        pytest.param(
            "POST", "raw/0_1_2/32_32_32/1_0_0", bytes(32768), "non-block aligned", id="unaligned"
        ),
        pytest.param(
            "POST",
            "raw/0_1_2/32_32_32/0_0_0",
            bytes(100),
            "voxels data was 100 bytes, expected 32768",
            id="length",
        ),
        pytest.param("POST", "raw/xy/32_32/0_0_0", bytes(1024), "3d", id="post-2d"),
        pytest.param("GET", "raw/0_1_2/0_10_10/0_0_0", None, "positive", id="zero-size"),
        pytest.param("GET", "raw/0_1_2/-5_10_10/0_0_0", None, "positive", id="negative-size"),
        pytest.param("GET", "raw/0_1_2/5000_5000_5000/0_0_0", None, "limit of", id="over-limit"),
        pytest.param("GET", "raw/4d/10_10_10/0_0_0", None, "unsupported dims", id="dims"),
        pytest.param("GET", "raw/0_1_2/10_10_10/a_0_0", None, "integers", id="non-numeric"),
        pytest.param(
            "GET", "raw/xy/10_10/0_0_0/gif", None, "unsupported image format", id="format"
        ),
        pytest.param("GET", "raw/xy/10_10/0_0_0/png:5", None, "quality", id="png-quality"),
        pytest.param("GET", "raw/0_1_2/10_10/0_0_0", None, "3 integers", id="2d-size-for-3d"),
        pytest.param("GET", "specificblocks?blocks=1,2", None, "multiple of 3", id="blocks-count"),
        pytest.param("GET", "nonsense/1", None, "Bad API call", id="endpoint"),
    ],
)
def test_bad_voxel_requests_leave_data_unchanged(
    client: falcon.testing.TestClient, method: str, path: str, body: bytes | None, message: str
) -> None:
    _, base = new_volume(client)
    vol = RNG.integers(0, 255, (32, 32, 32), dtype=np.uint8)
    post_raw(client, base, vol, (0, 0, 0))
    p, _, q = path.partition("?")
    r = client.simulate_request(method, f"{base}/{p}", query_string=q or None, body=body)
    assert r.status_code == 400 and message in r.text, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert np.array_equal(get_raw(client, base, (32, 32, 32), (0, 0, 0)), vol)


def test_jpeg_slice_of_uint16_is_refused(client: falcon.testing.TestClient) -> None:
    _, base = new_volume(client, "uint16blk")
    r = client.simulate_get(f"{base}/raw/xy/10_10/0_0_0/jpg")
    assert r.status_code == 400 and "not available for uint16blk" in r.text


def test_locked_node_refuses_voxel_writes(client: falcon.testing.TestClient) -> None:
    root, base = new_volume(client)
    client.simulate_post(f"/api/node/{root}/commit", json={})
    r = post_raw(client, base, np.zeros((32, 32, 32), np.uint8), (0, 0, 0))
    assert (
        r.status_code == 400 and f'Cannot do POST on endpoint "raw" of locked node {root}' in r.text
    )


# -- a real server ---------------------------------------------------------------------------


def test_volume_family_over_waitress() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        status, _, body = srv.request("POST", "/api/repos", b"{}")
        root = json.loads(body)["root"]
        srv.request("POST", f"/api/repo/{root}/instance", b'{"typename":"uint8blk","dataname":"g"}')
        vol = RNG.integers(0, 255, (64, 64, 64), dtype=np.uint8)
        assert (
            srv.request("POST", f"/api/node/{root}/g/raw/0_1_2/64_64_64/0_0_0", vol.tobytes())[0]
            == 200
        )
        status, headers, body = srv.request("GET", f"/api/node/{root}/g/raw/0_1_2/50_40_30/7_8_9")
        assert status == 200 and body == vol[9:39, 8:48, 7:57].tobytes()
        status, headers, body = srv.request("GET", f"/api/node/{root}/g/raw/xy/64_64/0_0_3")
        assert headers["content-type"] == "image/png" and np.array_equal(_image(body), vol[3])
        recs = parse_records(
            srv.request(
                "GET", f"/api/node/{root}/g/specificblocks?blocks=1,1,1&compression=uncompressed"
            )[2]
        )
        assert recs[(1, 1, 1)] == vol[32:, 32:, 32:].tobytes()
