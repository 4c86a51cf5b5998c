"""imagetile / multiscale2d: tiles against a numpy model of the source, endpoints, bad input."""

from __future__ import annotations

import io
import json
import time
from typing import Any

import falcon.testing
import numpy as np
import pytest
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.imagetile.layout import tile_key
from cas_dvid.testing.live import LiveServer

OFFSET = (32, 64, 96)  # x, y, z: block aligned, not tile aligned
SHAPE = (64, 64, 96)  # z, y, x
T = 40
RNG = np.random.default_rng(10)
VOL = RNG.integers(1, 256, size=SHAPE, dtype=np.uint8)


def _png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def _wait(c: falcon.testing.TestClient, path: str) -> dict[str, Any]:
    for _ in range(600):
        status = c.simulate_get(path).json
        if status["Status"] != "running":
            return status
        time.sleep(0.05)
    raise AssertionError("generation did not end")


def _setup(typename: str, **settings: str) -> tuple[falcon.testing.TestClient, str]:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    uuid = c.simulate_post("/api/repos", json={"alias": "t"}).json["root"]
    r = c.simulate_post(
        f"/api/repo/{uuid}/instance", json={"typename": "uint8blk", "dataname": "grayscale"}
    )
    assert r.status_code == 200, r.text
    x, y, z = OFFSET
    r = c.simulate_post(
        f"/api/node/{uuid}/grayscale/raw/0_1_2/96_64_64/{x}_{y}_{z}", body=VOL.tobytes()
    )
    assert r.status_code == 200, r.text
    doc = {"typename": typename, "dataname": "tiles", "Source": "grayscale", **settings}
    r = c.simulate_post(f"/api/repo/{uuid}/instance", json=doc)
    assert r.status_code == 200, r.text
    return c, uuid


def _halve(img: np.ndarray) -> np.ndarray:
    h, w = img.shape
    s = img.astype(np.uint32).reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))
    return (s // 4).astype(np.uint8)


def _model_tile(
    plane: str,
    scale: int,
    coord: tuple[int, int, int],
    origin: tuple[int, ...],
    vol: np.ndarray = VOL,
) -> np.ndarray:
    """The tile a numpy model of the source gives: zeros outside, truncating 2x2 means."""
    a, b, f = {"xy": (0, 1, 2), "xz": (0, 2, 1), "yz": (1, 2, 0)}[plane]
    span = T << scale
    lo = [0, 0, 0]
    lo[a] = origin[a] + coord[a] * span
    lo[b] = origin[b] + coord[b] * span
    lo[f] = origin[f] + coord[f]
    img = np.zeros((span, span), np.uint8)
    for r in range(span):
        for_b = lo[b] + r
        idx = [0, 0, 0]
        idx[b] = for_b
        idx[f] = lo[f]
        xs = np.arange(lo[a], lo[a] + span)
        vox = [np.full(span, idx[0]), np.full(span, idx[1]), np.full(span, idx[2])]
        vox[a] = xs
        inside = np.ones(span, bool)
        for ax in range(3):
            rel = vox[ax] - OFFSET[ax]
            inside &= (rel >= 0) & (rel < SHAPE[2 - ax])
        z, y, x = (
            (vox[2] - OFFSET[2])[inside],
            (vox[1] - OFFSET[1])[inside],
            (vox[0] - OFFSET[0])[inside],
        )
        img[r, inside] = vol[z, y, x]
    for _ in range(scale):
        img = _halve(img)
    return img


@pytest.mark.parametrize(
    ("typename", "origin", "scales"),
    [
        pytest.param("imagetile", (0, 0, 0), 3, id="imagetile-absolute"),
        pytest.param("multiscale2d", OFFSET, 3, id="multiscale2d-relative"),
    ],
)
def test_generated_tiles_equal_numpy_model(
    typename: str, origin: tuple[int, ...], scales: int
) -> None:
    c, uuid = _setup(typename, TileSize=str(T))
    base = f"/api/node/{uuid}/tiles"
    assert c.simulate_get(f"{base}/metadata").status_code == 400  # not set before generation
    r = c.simulate_post(f"{base}/generate")
    assert r.status_code == 202, r.text
    status = _wait(c, f"{base}/generate")
    assert status["Status"] == "done", status
    assert status["Scales"] == scales
    assert status["Done"] == status["Total"] == status["Tiles"]
    meta = c.simulate_get(f"{base}/metadata").json
    assert sorted(meta) == ["Levels", "MaxTileCoord", "MinTileCoord"]
    assert meta["Levels"]["1"] == {"Resolution": [16, 16, 16], "TileSize": [T, T, T]}
    rel = [o - g for o, g in zip(OFFSET, origin, strict=True)]
    assert meta["MinTileCoord"] == [v // T for v in rel]
    assert _check_tiles(c, base, origin, scales) > 30


def _check_tiles(
    c: falcon.testing.TestClient,
    base: str,
    origin: tuple[int, ...],
    scales: int,
    vol: np.ndarray = VOL,
    inner: tuple[int, int, int] | None = None,
) -> int:
    """Compare tiles of the first, last (and ``inner``, x y z) slices with the model."""
    rel = [o - g for o, g in zip(OFFSET, origin, strict=True)]
    checked = 0
    for plane, f in (("xy", 2), ("xz", 1), ("yz", 0)):
        a, b = {"xy": (0, 1), "xz": (0, 2), "yz": (1, 2)}[plane]
        fixes = [OFFSET[f], OFFSET[f] + SHAPE[2 - f] - 1] + ([inner[f]] if inner else [])
        for scale in range(scales):
            span = T << scale
            for fixed in fixes:
                for ta in range(rel[a] // span, (rel[a] + SHAPE[2 - a] - 1) // span + 1):
                    for tb in range(rel[b] // span, (rel[b] + SHAPE[2 - b] - 1) // span + 1):
                        coord = [0, 0, 0]
                        coord[a], coord[b], coord[f] = ta, tb, fixed - origin[f]
                        url = f"{base}/tile/{plane}/{scale}/{coord[0]}_{coord[1]}_{coord[2]}"
                        r = c.simulate_get(url)
                        assert r.status_code == 200
                        assert r.headers["content-type"] == "image/png"
                        want = _model_tile(
                            plane, scale, (coord[0], coord[1], coord[2]), origin, vol
                        )
                        assert np.array_equal(_png(r.content), want), url
                        checked += 1
    return checked


def test_regenerating_after_an_edit_remakes_only_tiles_over_it() -> None:
    c, uuid = _setup("multiscale2d", TileSize=str(T))
    assert _wait_done(c, f"/api/node/{uuid}/tiles")
    full = c.simulate_get(f"/api/node/{uuid}/tiles/generate").json["Tiles"]
    assert c.simulate_post(f"/api/node/{uuid}/commit", json={"note": "tiled"}).status_code == 200
    child = c.simulate_post(f"/api/node/{uuid}/newversion", json={}).json["child"]
    base = f"/api/node/{child}/tiles"
    assert _wait_done(c, base)  # nothing changed: nothing to redo
    assert c.simulate_get(f"{base}/generate").json["Tiles"] == 0
    edit = RNG.integers(1, 256, size=(32, 32, 32), dtype=np.uint8)
    r = c.simulate_post(
        f"/api/node/{child}/grayscale/raw/0_1_2/32_32_32/64_96_128", body=edit.tobytes()
    )
    assert r.status_code == 200
    vol = VOL.copy()
    vol[32:64, 32:64, 32:64] = edit
    assert _wait_done(c, base)
    redone = c.simulate_get(f"{base}/generate").json["Tiles"]
    assert redone == 3 * 32 * (4 + 1 + 1) < full  # 32 slices per plane, 4 + 1 + 1 tiles each
    assert _check_tiles(c, base, OFFSET, 3, vol, inner=(70, 100, 140)) > 30
    # the parent keeps its tiles
    assert _check_tiles(c, f"/api/node/{uuid}/tiles", OFFSET, 3, VOL, inner=(70, 100, 140)) > 30


def test_relative_and_absolute_addressing_differ_as_documented() -> None:
    rel, uuid = _setup("multiscale2d", TileSize=str(T))
    assert _wait_done(rel, f"/api/node/{uuid}/tiles")
    got = _png(rel.simulate_get(f"/api/node/{uuid}/tiles/tile/xy/0/0_0_0").content)
    assert np.array_equal(got, VOL[0, :T, :T])  # upper-left tile of the first slice
    ab, uuid2 = _setup("imagetile", TileSize=str(T))
    assert _wait_done(ab, f"/api/node/{uuid2}/tiles")
    r = ab.simulate_get(f"/api/node/{uuid2}/tiles/tile/xy/0/0_0_0?noblanks=true")
    assert r.status_code == 404  # z = 0 holds no data in absolute tile space
    got = _png(ab.simulate_get(f"/api/node/{uuid2}/tiles/tile/xy/0/0_1_96").content)
    want = np.zeros((T, T), np.uint8)
    want[64 - T :, 32:] = VOL[0, : 2 * T - 64, : T - 32]
    assert np.array_equal(got, want)


def _wait_done(c: falcon.testing.TestClient, base: str) -> bool:
    assert c.simulate_post(f"{base}/generate").status_code == 202
    return bool(_wait(c, f"{base}/generate")["Status"] == "done")


def test_blank_tiles_dedup_and_raw_stitching() -> None:
    c, uuid = _setup("imagetile", TileSize=str(T))
    base = f"/api/node/{uuid}/tiles"
    assert _wait_done(c, base)
    # a black source: every tile of every scale and plane is the same object
    inst = {"typename": "uint8blk", "dataname": "zeros"}
    assert c.simulate_post(f"/api/repo/{uuid}/instance", json=inst).status_code == 200
    zeros = bytes(64 * 64 * 64)
    assert (
        c.simulate_post(f"/api/node/{uuid}/zeros/raw/0_1_2/64_64_64/0_0_0", body=zeros).status_code
        == 200
    )
    doc = {"typename": "imagetile", "dataname": "blank", "Source": "zeros", "TileSize": "16"}
    assert c.simulate_post(f"/api/repo/{uuid}/instance", json=doc).status_code == 200
    assert _wait_done(c, f"/api/node/{uuid}/blank")
    status = c.simulate_get(f"/api/node/{uuid}/blank/generate").json
    assert status["Tiles"] == 3 * 64 * (16 + 4 + 1)
    assert status["Objects"] == 1
    blank = c.simulate_get(f"{base}/tile/xy/0/9_9_96")  # missing: a black tile of the level
    assert blank.status_code == 200
    assert not _png(blank.content).any()
    assert _png(blank.content).shape == (T, T)
    assert c.simulate_get(f"{base}/tile/xy/0/-1_0_96?noblanks=true").status_code == 404
    r = c.simulate_get(f"{base}/raw/xy/100_70/20_60_100")
    want = np.zeros((70, 100), np.uint8)
    want[4:68, 12:] = VOL[4, :, :88]
    assert np.array_equal(_png(r.content), want)
    r = c.simulate_get(f"{base}/raw/xz/96_64/32_70_96/raw")
    assert r.content == VOL[:, 6, :].tobytes()


def test_post_tile_metadata_and_tilekey() -> None:
    c, uuid = _setup("imagetile")
    base = f"/api/node/{uuid}/tiles"
    meta = {
        "MinTileCoord": [0, 0, 0],
        "MaxTileCoord": [5, 5, 4],
        "Levels": {"0": {"Resolution": [10.0, 10.0, 10.0], "TileSize": [512, 512, 512]}},
    }
    assert c.simulate_post(f"{base}/metadata", json=meta).status_code == 200
    assert c.simulate_get(f"{base}/metadata").json == meta
    body = b"\x89PNG not checked, stored verbatim"
    assert c.simulate_post(f"{base}/tile/xz/0/1_2_3", body=body).status_code == 200
    assert c.simulate_get(f"{base}/tile/0_2/0/1_2_3").content == body
    key = c.simulate_get(f"{base}/tilekey/xz/0/1_2_3").json["key"]
    assert bytes.fromhex(key) == tile_key("xz", 0, (1, 2, 3))
    assert key == "030200020000000003" + "80000003" + "80000002" + "80000001"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "tile/xw/0/0_0_0", None, id="unknown-plane"),
        pytest.param("GET", "tile/xy/x/0_0_0", None, id="bad-scale"),
        pytest.param("GET", "tile/xy/0/0_0", None, id="short-coord"),
        pytest.param("GET", "tile/xy/7/0_0_0", None, id="scale-out-of-range"),
        pytest.param("GET", "tile/xy/0/0_0_99999999999", None, id="coord-out-of-int32"),
        pytest.param("POST", "metadata", b'{"Levels": {}}', id="empty-levels"),
        pytest.param("POST", "metadata", b"{nope", id="malformed-json"),
        pytest.param("POST", "generate?scales=x", b"", id="bad-scales"),
        pytest.param("POST", "generate?planes=xy,ab", b"", id="bad-planes"),
        pytest.param("POST", "tile/xy/0/0_0_0", b"", id="empty-tile"),
    ],
)
def test_bad_input_is_400_and_changes_nothing(method: str, path: str, body: bytes | None) -> None:
    c, uuid = _setup("imagetile", TileSize=str(T))
    base = f"/api/node/{uuid}/tiles"
    assert _wait_done(c, base)
    before = c.simulate_get(f"{base}/metadata").json
    r = c.simulate_request(method, f"{base}/{path}", body=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("text/plain")
    assert c.simulate_get(f"{base}/metadata").json == before


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"TileSize": "0"}, "TileSize", id="zero-tilesize"),
        pytest.param({"Format": "gif"}, "Format", id="bad-format"),
        pytest.param({"Placeholder": "maybe"}, "Placeholder", id="bad-placeholder"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, str], message: str) -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    uuid = c.simulate_post("/api/repos", json={}).json["root"]
    doc = {"typename": "imagetile", "dataname": "t", **settings}
    r = c.simulate_post(f"/api/repo/{uuid}/instance", json=doc)
    assert r.status_code == 400
    assert message in r.text
    assert "t" not in json.loads(c.simulate_get(f"/api/repo/{uuid}/info").text)["DataInstances"]


def test_generate_without_source_or_on_locked_node_is_400() -> None:
    c, uuid = _setup("imagetile")
    c.simulate_post(
        f"/api/repo/{uuid}/instance", json={"typename": "imagetile", "dataname": "nosrc"}
    )
    r = c.simulate_post(f"/api/node/{uuid}/nosrc/generate")
    assert r.status_code == 400
    assert "Source" in r.text
    assert c.simulate_post(f"/api/node/{uuid}/commit", json={"note": "x"}).status_code == 200
    r = c.simulate_post(f"/api/node/{uuid}/tiles/generate")
    assert r.status_code == 400
    assert "locked" in r.text
    assert c.simulate_get(f"/api/node/{uuid}/tiles/generate").json["Status"] == "none"
    r = c.simulate_post(f"/api/node/{uuid}/tiles/tile/xy/0/0_0_0", body=b"png")
    assert r.status_code == 400
    meta = {"Levels": {"0": {"Resolution": [8, 8, 8], "TileSize": [64, 64, 64]}}}
    assert c.simulate_post(f"/api/node/{uuid}/tiles/metadata", json=meta).status_code == 400
    assert c.simulate_get(f"/api/node/{uuid}/tiles/metadata").status_code == 400  # still unset


def test_every_endpoint_over_waitress() -> None:
    app = create_app(ServerConfig("memory://"))
    with LiveServer(app) as srv:

        def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            status, _, data = srv.request(method, path, body)
            return status, data

        uuid = json.loads(call("POST", "/api/repos", b"{}")[1])["root"]
        inst = {"typename": "uint8blk", "dataname": "grayscale"}
        assert call("POST", f"/api/repo/{uuid}/instance", json.dumps(inst).encode())[0] == 200
        x, y, z = OFFSET
        path = f"/api/node/{uuid}/grayscale/raw/0_1_2/96_64_64/{x}_{y}_{z}"
        assert call("POST", path, VOL.tobytes())[0] == 200
        doc = {
            "typename": "multiscale2d",
            "dataname": "tiles",
            "source": "grayscale",
            "TileSize": "40",
        }
        assert call("POST", f"/api/repo/{uuid}/instance", json.dumps(doc).encode())[0] == 200
        base = f"/api/node/{uuid}/tiles"
        assert call("POST", f"{base}/generate?planes=xy")[0] == 202
        for _ in range(600):
            status = json.loads(call("GET", f"{base}/generate")[1])
            if status["Status"] != "running":
                break
            time.sleep(0.05)
        assert status["Status"] == "done"
        code, data = call("GET", f"{base}/tile/xy/0/0_0_0")
        assert code == 200
        assert np.array_equal(_png(data), VOL[0, :T, :T])
        assert call("GET", f"{base}/tile/xz/0/0_0_0?noblanks=true")[0] == 404  # xz not generated
        assert call("POST", f"{base}/tile/xz/0/0_0_0", data)[0] == 200
        assert call("GET", f"{base}/tile/xz/0/0_0_0?noblanks=true")[1] == data
        assert json.loads(call("GET", f"{base}/metadata")[1])["Levels"]["0"]["TileSize"] == [40] * 3
        meta = call("GET", f"{base}/metadata")[1]
        assert call("POST", f"{base}/metadata", meta)[0] == 200
        assert "key" in json.loads(call("GET", f"{base}/tilekey/xy/0/0_0_0")[1])
        code, data = call("GET", f"{base}/raw/xy/96_64/32_64_96")
        assert code == 200
        assert np.array_equal(_png(data), VOL[0])
        code, data = call("GET", f"{base}/isotropic/xy/96_64/32_64_96")
        assert code == 200
        assert np.array_equal(_png(data), VOL[0])
        code, data = call("GET", f"{base}/tile/ab/0/0_0_0")
        assert code == 400
        assert b"Unknown data shape" in data


def test_cli_generate_planes_and_scales() -> None:
    from cas_dvid.cli import main

    app = create_app(ServerConfig("memory://"))
    with LiveServer(app) as srv:
        uuid = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        inst = {"typename": "uint8blk", "dataname": "grayscale"}
        srv.request("POST", f"/api/repo/{uuid}/instance", json.dumps(inst).encode())
        x, y, z = OFFSET
        srv.request(
            "POST", f"/api/node/{uuid}/grayscale/raw/0_1_2/96_64_64/{x}_{y}_{z}", VOL.tobytes()
        )
        doc = {"typename": "imagetile", "dataname": "t", "Source": "grayscale", "TileSize": "40"}
        srv.request("POST", f"/api/repo/{uuid}/instance", json.dumps(doc).encode())
        argv = ["node", uuid, "t", "generate", "--planes", "yz", "--scales", "1"]
        assert main([*argv, "--server", srv.url]) == 0
        status = json.loads(srv.request("GET", f"/api/node/{uuid}/t/generate")[2])
        assert status["Tiles"] == 576  # 96 x-slices x 3 x 2 tiles
        meta = json.loads(srv.request("GET", f"/api/node/{uuid}/t/metadata")[2])
        assert list(meta["Levels"]) == ["0"]
        assert srv.request("GET", f"/api/node/{uuid}/t/tile/xy/0/1_2_96?noblanks=true")[0] == 404
        assert main(["node", uuid, "nope", "generate", "--server", srv.url]) == 1


def test_jpg_format_stores_jpeg_tiles() -> None:
    c, uuid = _setup("multiscale2d", TileSize=str(T), Format="jpg")
    base = f"/api/node/{uuid}/tiles"
    assert _wait_done(c, base)
    r = c.simulate_get(f"{base}/tile/xy/0/0_0_0")
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content[:2] == b"\xff\xd8"
    got = _png(r.content).astype(float)
    want = VOL[0, :T, :T].astype(float)
    assert got.shape == want.shape
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9  # lossy, but the same picture
    blank = c.simulate_get(f"{base}/tile/xy/0/5_5_0/jpg")  # a missing tile in the asked format
    assert blank.headers["content-type"] == "image/jpeg"
    assert _png(blank.content).max() < 3


def test_placeholder_fills_missing_tiles_of_raw_slices() -> None:
    c, uuid = _setup("imagetile", TileSize=str(T), Placeholder="true")
    base = f"/api/node/{uuid}/tiles"
    assert _wait_done(c, base)
    r = c.simulate_get(f"{base}/raw/xy/80_80/0_0_96")  # tiles 0_0 and 0_1 hold no data
    img = _png(r.content)
    missing = img[:40, :40]  # tile (0, 0): never generated, so a placeholder
    assert missing[10, 10:29].tolist() == [0xDD] * 19  # the rulers
    assert missing[10:29, 10].tolist() == [0xDD] * 19
    assert (missing < 100).any()  # the caption
    assert (missing == 255).mean() > 0.5
    assert np.array_equal(img[64:, 32:], VOL[0, :16, :48])  # real tiles as they are
    assert c.simulate_get(f"{base}/tile/xy/0/0_0_96?noblanks=true").status_code == 404


def test_isotropic_scales_out_the_plane_anisotropy() -> None:
    c, uuid = _setup("imagetile", TileSize=str(T))
    base = f"/api/node/{uuid}/tiles"
    assert _wait_done(c, base)
    r = c.simulate_get(f"{base}/isotropic/xz/96_64/32_70_96/raw")
    assert r.content == VOL[:, 6, :].tobytes()  # 8 nm everywhere: the same as raw
    meta = c.simulate_get(f"{base}/metadata").json
    for level in meta["Levels"].values():
        level["Resolution"][2] *= 2  # z voxels twice as long as x
    assert c.simulate_post(f"{base}/metadata", json=meta).status_code == 200
    r = c.simulate_get(f"{base}/isotropic/xz/96_64/32_70_96/raw")
    got = np.frombuffer(r.content, np.uint8).reshape(64, 96)
    assert np.array_equal(got, np.repeat(VOL[:32, 6, :], 2, axis=0))  # 32 z rows, each twice
    r = c.simulate_get(f"{base}/isotropic/xy/96_64/32_64_100/raw")
    assert r.content == VOL[4].tobytes()
