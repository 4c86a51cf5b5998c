"""GET arb (arbitrarily oriented slices) through uint8blk and labelmap, against numpy sampling.

The expected images come from the plain per-pixel twin (``kernels/_reference.py``,
a transcription of DVID's ``imageblk/arb_image.go`` walk) reading a numpy volume,
so the store path (which blocks are read, how they are stitched) is checked end to
end, not only the kernel.
"""

from __future__ import annotations

import io
import json

import falcon.testing
import numpy as np
import pytest
from PIL import Image

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.kernels import _reference
from cas_dvid.testing.live import LiveServer

EDGE = 64
VOX = (8.0, 8.0, 8.0)  # DVID's default VoxelSize: world units are nm


def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://")))


def setup(c: falcon.testing.TestClient) -> tuple[str, np.ndarray, np.ndarray]:
    """A repo with uint8blk ``g`` (one block left unwritten) and labelmap ``seg``."""
    root = c.simulate_post("/api/repos", json={}).json["root"]
    for body in (
        {"typename": "uint8blk", "dataname": "g", "BlockSize": "32,32,32"},
        {"typename": "labelmap", "dataname": "seg", "BlockSize": "32,32,32"},
        {"typename": "roi", "dataname": "r", "BlockSize": "32,32,32"},
    ):
        assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    rng = np.random.default_rng(11)
    gray = rng.integers(1, 256, (EDGE, EDGE, EDGE), dtype=np.uint8)
    gray[32:, 32:, 32:] = 0  # that block is never written: reads as 0
    for z in (0, 32):
        for y in (0, 32):
            for x in (0, 32):
                if (x, y, z) == (32, 32, 32):
                    continue
                blk = np.ascontiguousarray(gray[z : z + 32, y : y + 32, x : x + 32])
                r = c.simulate_post(
                    f"/api/node/{root}/g/raw/0_1_2/32_32_32/{x}_{y}_{z}", body=blk.tobytes()
                )
                assert r.status_code == 200, r.text
    labels = (np.arange(EDGE**3, dtype=np.uint64).reshape(EDGE, EDGE, EDGE) // 4096 + 1) * 7
    r = c.simulate_post(
        f"/api/node/{root}/seg/raw/0_1_2/{EDGE}_{EDGE}_{EDGE}/0_0_0", body=labels.tobytes()
    )
    assert r.status_code == 200, r.text
    return root, gray, labels


def expected(vol: np.ndarray, tl: tuple, tr: tuple, bl: tuple, res: float, interp: bool) -> list:
    def read(x: int, y: int, z: int) -> int:
        inside = 0 <= x < EDGE and 0 <= y < EDGE and 0 <= z < EDGE
        return int(vol[z, y, x]) if inside else 0

    _, _, rows = _reference.arb_points(tl, tr, bl, res)
    return [[_reference.arb_value(p, VOX, read, interp) for p in row] for row in rows]


def coords(p: tuple[float, float, float]) -> str:
    return "_".join(repr(float(v)) for v in p)


PLANES = [
    pytest.param((0, 0, 80), (504, 0, 80), (0, 504, 80), 8.0, id="xy-aligned"),
    pytest.param((4, 80, 0), (500, 80, 0), (4, 80, 500), 8.0, id="xz-aligned"),
    pytest.param((10.5, 3, 20), (400, 300, 100), (-20, 120, 480), 7.3, id="oblique"),
    pytest.param((300, 300, 300), (700, 310, 290), (310, 700, 305), 9.0, id="into-empty"),
]


@pytest.mark.parametrize(("tl", "tr", "bl", "res"), PLANES)
def test_grayscale_arb_equals_numpy_sampling(tl: tuple, tr: tuple, bl: tuple, res: float) -> None:
    c = client()
    root, gray, _ = setup(c)
    url = f"/api/node/{root}/g/arb/{coords(tl)}/{coords(tr)}/{coords(bl)}/{res}"
    r = c.simulate_get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    assert got.tolist() == expected(gray, tl, tr, bl, res, interp=True)
    jpg = c.simulate_get(url + "/jpg:90")
    assert jpg.status_code == 200 and jpg.content[:2] == b"\xff\xd8"


@pytest.mark.parametrize(("tl", "tr", "bl", "res"), PLANES)
def test_label_arb_is_nearest_and_mapped(tl: tuple, tr: tuple, bl: tuple, res: float) -> None:
    c = client()
    root, _, labels = setup(c)
    url = f"/api/node/{root}/seg/arb/{coords(tl)}/{coords(tr)}/{coords(bl)}/{res}/raw"
    r = c.simulate_get(url)
    assert r.status_code == 200, r.text
    want = np.array(expected(labels, tl, tr, bl, res, interp=False), dtype=np.uint64)
    assert np.frombuffer(r.content, "<u8").reshape(want.shape).tolist() == want.tolist()
    # After a merge, the body is shown unless supervoxels=true.
    present = [int(v) for v in np.unique(want) if v]
    if len(present) >= 2:
        a, b = present[:2]
        assert c.simulate_post(f"/api/node/{root}/seg/merge", body=f"[{a},{b}]").status_code == 200
        merged = np.where(want == b, a, want)
        got = np.frombuffer(c.simulate_get(url).content, "<u8").reshape(want.shape)
        assert got.tolist() == merged.tolist()
        sv = c.simulate_get(url + "?supervoxels=true").content
        assert np.frombuffer(sv, "<u8").reshape(want.shape).tolist() == want.tolist()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("arb/0_0_0/8_8_8/16_16_16/1", "collinear"),
        ("arb/0_0_0/0_0_0/0_8_0/1", "collinear"),
        ("arb/0_0_0/80_0_0/0_80_0/0", "resolution > 0"),
        ("arb/0_0_0/80_0_0/0_80_0/-2", "resolution > 0"),
        ("arb/0_0_0/80_0_0/0_80_0", "top-left/top-right/bottom-left/res"),
        ("arb/0_0/80_0_0/0_80_0/1", "Vector3d"),
        ("arb/0_0_x/80_0_0/0_80_0/1", "invalid syntax"),
        ("arb/0_0_0/80_0_0/0_80_0/1/gif", "unsupported image format"),
        ("arb/0_0_0/30000_0_0/0_30000_0/1", "over the limit"),
        ("arb/0_0_0/1e9_0_0/0_1e9_0/1", "Bad arbitrary image size"),
    ],
)
def test_degenerate_or_bad_arb_is_400(path: str, message: str) -> None:
    c = client()
    root, _, _ = setup(c)
    for inst in ("g", "seg"):
        r = c.simulate_get(f"/api/node/{root}/{inst}/{path}")
        assert r.status_code in (400, 413) and message in r.text, (inst, path, r.text)


def test_label_reads_masked_by_a_roi() -> None:
    c = client()
    root, _, labels = setup(c)
    spans = [[0, 0, 0, 0], [1, 1, 0, 1]]
    assert c.simulate_post(f"/api/node/{root}/r/roi", body=json.dumps(spans)).status_code == 200
    r = c.simulate_get(f"/api/node/{root}/seg/raw/0_1_2/48_60_64/8_4_0?roi=r")
    assert r.status_code == 200, r.text
    got = np.frombuffer(r.content, "<u8").reshape(64, 60, 48)
    want = labels[0:64, 4:64, 8:56].copy()
    inside = np.zeros_like(want, dtype=bool)
    for z, y, x0, x1 in spans:  # block coordinates, x1 inclusive
        zz, yy = slice(z * 32, z * 32 + 32), slice(y * 32 - 4, y * 32 + 28)
        inside[zz, max(yy.start, 0) : yy.stop, max(x0 * 32 - 8, 0) : x1 * 32 + 24] = True
    want[~inside] = 0
    assert np.array_equal(got, want)
    xy = c.simulate_get(f"/api/node/{root}/seg/raw/xy/64_64/0_0_40/raw?roi=r")
    plane = np.frombuffer(xy.content, "<u8").reshape(64, 64)
    assert (plane[:32, :32] == 0).all() and (plane[32:, :] == labels[40, 32:, :]).all()
    assert c.simulate_get(f"/api/node/{root}/seg/raw/0_1_2/8_8_8/0_0_0?roi=g").status_code == 400
    r = c.simulate_get(f"/api/node/{root}/seg/raw/0_1_2/8_8_8/0_0_0?roi=r&scale=1")
    assert r.status_code == 400


def test_arb_over_waitress() -> None:
    app = create_app(ServerConfig("memory://"))
    c = falcon.testing.TestClient(app)
    root, gray, labels = setup(c)
    tl, tr, bl, res = (0, 0, 80), (504, 0, 80), (0, 504, 80), 8.0
    with LiveServer(app) as srv:
        args = f"{coords(tl)}/{coords(tr)}/{coords(bl)}/{res}"
        status, headers, body = srv.request("GET", f"/api/node/{root}/g/arb/{args}")
        assert status == 200 and headers["content-type"] == "image/png"
        assert (np.asarray(Image.open(io.BytesIO(body))) == gray[10]).all()
        status, _, body = srv.request("GET", f"/api/node/{root}/seg/arb/{args}/raw")
        assert status == 200
        assert (np.frombuffer(body, "<u8").reshape(64, 64) == labels[10]).all()
