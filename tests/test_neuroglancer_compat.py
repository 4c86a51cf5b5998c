"""The requests neuroglancer's stock dvid:// datasource makes, answered as it needs them.

From google/neuroglancer ``src/datasource/dvid/frontend.ts`` (repo info: each instance's
``Extended`` with ``Values[0].DataType``, ``VoxelSize``, ``BlockSize``, ``MinPoint``,
``MaxPoint``; grayscale levels found as instances ``NAME_1``, ``NAME_2``...) and
``backend.ts`` (chunks: ``raw/0_1_2/{size}/{offset}/jpeg`` for grayscale,
``raw/0_1_2/{size}/{offset}?compression=googlegzip&scale=N`` for labelmap), fetched
cross-origin from the viewer's page, so every answer needs CORS headers.
"""

from __future__ import annotations

import io
import json
import time

import numpy as np
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

ORIGIN = {"Origin": "https://neuroglancer-demo.appspot.com"}


def test_neuroglancer_opens_grayscale_and_labels() -> None:
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
        assert status == 200 and headers["access-control-allow-origin"] == "*"
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
