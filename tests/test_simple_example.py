"""DVID's "Simple Example", exactly as the README walks through it, on a fresh store."""

from __future__ import annotations

import glob
import io
import os
import subprocess
import sys
import time
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
pytestmark = pytest.mark.skipif(
    not list(SAMPLE.glob("*.png")), reason="shared/sample-grayscale not present"
)


def run(*args: str, server: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args, "--server", server],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_simple_example(tmp_path: Path) -> None:
    store = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "init", str(store)], check=True, capture_output=True
    )
    port = free_port()
    server = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cas_dvid.cli", "serve", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
            "node", uuid, "grayscale", "load", "100,100,2600", str(SAMPLE / "*.png"), server=server
        )
        assert "Loaded 15625000 voxels" in out

        files = sorted(glob.glob(str(SAMPLE / "*.png")))
        stack = np.stack([np.asarray(Image.open(f)) for f in files])  # z 2600.., y 100.., x 100..
        with urllib.request.urlopen(
            f"{server}/api/node/{uuid}/grayscale/raw/xy/250_250/100_100_2600"
        ) as r:
            xy = np.asarray(Image.open(io.BytesIO(r.read())))
        assert np.array_equal(xy, np.asarray(Image.open(files[0])))
        with urllib.request.urlopen(
            f"{server}/api/node/{uuid}/grayscale/raw/xz/500_500/0_0_2500"
        ) as r:
            xz = np.asarray(Image.open(io.BytesIO(r.read())))
        want = np.zeros((500, 500), np.uint8)  # rows are z 2500..2999, columns x 0..499, at y = 0
        assert xz.shape == want.shape and not xz.any()  # y = 0 lies outside the loaded y 100..349
        with urllib.request.urlopen(
            f"{server}/api/node/{uuid}/grayscale/raw/xz/500_500/0_150_2500"
        ) as r:
            xz = np.asarray(Image.open(io.BytesIO(r.read())))
        want[100:350, 100:350] = stack[:, 50, :]
        assert np.array_equal(xz, want)
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
