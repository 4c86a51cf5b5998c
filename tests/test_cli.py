"""The cas-dvid command line against a real server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(create_app(ServerConfig("memory://cli-tests"))) as srv:
        yield srv


def cli(server: LiveServer, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args, "--server", server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if ok:
        assert r.returncode == 0, r.stderr
    return r


def test_repo_life_cycle(server: LiveServer) -> None:
    out = cli(server, "repos", "new", "mine", "a test repo").stdout
    assert out.startswith("Root UUID for new repo is ")
    root = out.split()[-1]
    assert root in cli(server, "repos", "list").stdout
    assert (
        "Added kv [keyvalue] to node"
        in cli(server, "repo", root[:8], "new", "keyvalue", "kv").stdout
    )
    grey = cli(server, "repo", root, "new", "keyvalue", "kv2", "Compression=zstd").stdout
    assert "Added kv2" in grey
    assert f"Locked node {root}" in cli(server, "node", root, "commit", "first", "version").stdout
    child = cli(server, "node", root, "newversion").stdout.split()[-1]
    side = cli(server, "node", root, "branch", "side").stdout.split()[-1]
    log = cli(server, "repo", root, "log").stdout
    assert child in log and side in log and "first version" in log and "side" in log


def test_errors_go_to_stderr_with_status(server: LiveServer) -> None:
    r = cli(server, "repo", "ffffffff", "new", "keyvalue", "x", ok=False)
    assert r.returncode == 1 and "could not find UUID with partial match to ffffffff" in r.stderr
    r = cli(server, "repo", "ffffffff", "new", "keyvalue", "x", "notasetting", ok=False)
    assert r.returncode == 1 and "key=value" in r.stderr


def test_types_about_help(server: LiveServer) -> None:
    assert "keyvalue" in cli(server, "types").stdout
    assert "DVID Version" in cli(server, "about").stdout
    assert "/api/node/{uuid}/commit" in cli(server, "help").stdout


def test_unreachable_server() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", "repos", "list", "--server", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1 and "cannot reach cas_dvid server at http://127.0.0.1:1" in r.stderr


def test_labelmap_downres_verb(server: LiveServer) -> None:
    """Blocks written without downres are marked stale; the verb rebuilds them."""
    import json

    import numpy as np

    root = json.loads(server.request("POST", "/api/repos", b"{}")[2])["root"]
    body = b'{"typename":"labelmap","dataname":"seg","BlockSize":"16,16,16","MaxDownresLevel":"2"}'
    assert server.request("POST", f"/api/repo/{root}/instance", body)[0] == 200
    vol = np.zeros((32, 32, 32), np.uint64)
    vol[:16] = 7
    vol[16:] = 9
    status, _, text = server.request(
        "POST", f"/api/node/{root}/seg/raw/0_1_2/32_32_32/0_0_0", vol.tobytes()
    )
    assert status == 200, text
    out = cli(server, "node", root, "seg", "downres").stdout
    assert "Rebuilt 2 lower-resolution blocks of seg" in out  # one at scale 1, one at scale 2
    _, _, data = server.request("GET", f"/api/node/{root}/seg/raw/0_1_2/16_16_16/0_0_0?scale=1")
    low = np.frombuffer(data, "<u8").reshape(16, 16, 16)
    assert (low[:8] == 7).all() and (low[8:] == 9).all()
    assert "Rebuilt 0 lower-resolution" in cli(server, "node", root, "seg", "downres").stdout


def test_load_errors_are_one_line_not_tracebacks(server: LiveServer, tmp_path: object) -> None:
    import json
    from pathlib import Path

    import zarr

    tmp = Path(str(tmp_path))
    root = json.loads(server.request("POST", "/api/repos", b"{}")[2])["root"]
    body = b'{"typename":"uint8blk","dataname":"g"}'
    assert server.request("POST", f"/api/repo/{root}/instance", body)[0] == 200
    (tmp / "a.png").write_text("not an image")
    group = zarr.open_group(str(tmp / "grp.zarr"), mode="w")
    group.create_array("s0", shape=(4, 4, 4), dtype="u1")
    cases = [
        (str(tmp / "missing.zarr"), "the path does not exist"),
        (str(tmp / "*.png"), "a.png is not an image file"),
        (str(tmp / "grp.zarr") + "::s1", "has no array 's1'"),
        (str(tmp / "grp.zarr"), "is not a 3-D zarr array"),
    ]
    for src, message in cases:
        r = cli(server, "node", root, "g", "load", "0,0,0", src, ok=False)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert "Loaded 64 voxels" in cli(server, "node", root, "g", "load", "0,0,0", src + "::s0").stdout


def test_unknown_words_are_named(server: LiveServer) -> None:
    r = cli(server, "node", "abc", "grayscale", "frob", ok=False)
    assert r.returncode == 2
    assert "unknown word 'frob' after 'node abc grayscale'" in r.stderr
    assert "node UUID NAME load" in r.stderr and "repo UUID new" not in r.stderr
    r = cli(server, "node", "abc", "grayscale", ok=False)
    assert "'node abc grayscale' needs more words" in r.stderr
