"""DVID's Simple Example to its end: the multiscale2d tiles, exactly as the seed's README has them.

Runs the walk-through verbatim through the CLI and a served store (``cas-dvid`` for
``dvid``): init, serve, new repo, new grayscale8, load 100,100,2600, new multiscale2d with
``source=grayscale TileSize=128``, ``generate``, then the tiles the README names, compared
with numpy computations from the PNG slices.  It uses ../shared/sample-grayscale (250
slices of 250 x 250) when present, else a synthetic stack of the same geometry.
"""

from __future__ import annotations

import glob
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cas_dvid.testing.s3server import free_port

SAMPLE = Path(
    os.environ.get(
        "CAS_DVID_SAMPLE", Path(__file__).parents[1] / ".." / "shared" / "sample-grayscale"
    )
)


@pytest.fixture
def slices(tmp_path: Path) -> Path:
    if list(SAMPLE.glob("*.png")):
        return SAMPLE
    out = tmp_path / "slices"
    out.mkdir()
    rng = np.random.default_rng(2600)
    for z in range(250):
        img = rng.integers(26, 218, size=(250, 250), dtype=np.uint8)
        Image.fromarray(img, mode="L").save(out / f"iso.{2600 + z}.png", compress_level=1)
    return out


def run(*args: str, server: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args, "--server", server],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def halve(img: np.ndarray) -> np.ndarray:
    """One DVID tile level: the truncating mean of each 2 x 2 cell."""
    h, w = img.shape
    return (img.astype(np.uint32).reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)) // 4).astype(
        np.uint8
    )


def padded(img: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size), np.uint8)
    out[: img.shape[0], : img.shape[1]] = img
    return out


def test_simple_example_multiscale2d(tmp_path: Path, slices: Path) -> None:
    store = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "init", str(store)], check=True, capture_output=True
    )
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cas_dvid.cli", "serve", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{server}/api/heartbeat", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        uuid = run("repos", "new", "sample", "the simple example", server=server).split()[-1]
        run("repo", uuid, "new", "grayscale8", "grayscale", server=server)
        out = run(
            "node", uuid, "grayscale", "load", "100,100,2600", str(slices / "*.png"), server=server
        )
        assert "Loaded 15625000 voxels" in out
        run(
            "repo", uuid, "new", "multiscale2d", "mymultiscale2d", "source=grayscale",
            "TileSize=128", server=server,
        )  # fmt: skip
        out = run("node", uuid, "mymultiscale2d", "generate", server=server)
        assert "2 scales" in out  # "we only need two scales"
        assert "Generated 3750 tiles" in out  # 3 planes x 250 slices x (4 + 1) tiles

        files = sorted(glob.glob(str(slices / "*.png")))
        stack = np.stack([np.asarray(Image.open(f)) for f in files])  # z, y, x from 2600,100,100
        tile = f"{server}/api/node/{uuid}/mymultiscale2d/tile"
        # "a 128x128 pixel PNG tile, basically the upper left quadrant of the first slice"
        status, data = get(f"{tile}/xy/0/0_0_0")
        assert status == 200
        assert np.array_equal(png(data), stack[0, :128, :128])
        # "the upper right quadrant (tile x=1, y=0) of the first 250x250 image"
        status, data = get(f"{tile}/xy/0/1_0_0")
        assert np.array_equal(png(data), padded(stack[0, :128, 128:], 128))
        # "a 128x128 pixel tile that covers the original 250x250 image ... black at the edges"
        status, data = get(f"{tile}/xy/1/0_0_0")
        got = png(data)
        assert np.array_equal(got, halve(padded(stack[0], 256)))
        assert not got[125:, :].any()
        assert not got[:, 125:].any()
        # "As an exercise, look at the XZ and YZ multiscale2d as well."
        status, data = get(f"{tile}/xz/0/0_0_0")
        assert np.array_equal(png(data), stack[:128, 0, :128])  # rows z, columns x, at y = 100
        status, data = get(f"{tile}/yz/0/0_1_0")
        assert np.array_equal(png(data), padded(stack[:128, 128:, 0], 128))  # rows z, columns y
        status, data = get(f"{tile}/xz/1/0_249_0")
        assert np.array_equal(png(data), halve(padded(stack[:, 249, :], 256)))
        status, data = get(f"{tile}/yz/1/249_0_0")
        assert np.array_equal(png(data), halve(padded(stack[:, :, 249], 256)))
        # beyond the source: a black tile, or 404 with noblanks=true
        assert get(f"{tile}/xy/0/2_0_0?noblanks=true")[0] == 404
        assert not png(get(f"{tile}/xy/0/2_0_0")[1]).any()
    finally:
        proc.terminate()
        proc.wait(10)
