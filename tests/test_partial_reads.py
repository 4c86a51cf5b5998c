"""A box-pulled (partial) version serves the region it holds and refuses reads outside it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import falcon.testing
import numpy as np

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.versions.stores import init_store


def test_box_pull_refuses_reads_outside_the_region(tmp_path: Path) -> None:
    src, dst = f"file://{tmp_path}/src", f"file://{tmp_path}/dst"
    init_store(src)
    init_store(dst)
    c = falcon.testing.TestClient(create_app(ServerConfig(src)))
    root = c.simulate_post("/api/repos", json={}).json["root"]
    c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "uint8blk", "dataname": "g"})
    vol = np.random.default_rng(1).integers(1, 255, (64, 64, 128), dtype=np.uint8)
    assert (
        c.simulate_post(
            f"/api/node/{root}/g/raw/0_1_2/128_64_64/0_0_0", body=vol.tobytes()
        ).status_code
        == 200
    )
    c.simulate_post(f"/api/node/{root}/commit", json={})

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cas_dvid.cli",
            "pull",
            src,
            root,
            "--box",
            "0,0,0,64,64,64",
            "--store",
            dst,
            "--init",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr

    d = falcon.testing.TestClient(create_app(ServerConfig(dst)))
    inside = d.simulate_get(f"/api/node/{root}/g/raw/0_1_2/60_50_40/2_3_4")
    assert inside.status_code == 200 and inside.content == vol[4:44, 3:53, 2:62].tobytes()
    for path in (
        f"raw/0_1_2/10_10_10/100_0_0",
        "raw/xy/128_64/0_0_5",
        "specificblocks?blocks=3,0,0",
        "blocks/2_0_0/2",
        "subvolblocks/128_64_64/0_0_0",
    ):
        p, _, q = path.partition("?")
        out = d.simulate_get(f"/api/node/{root}/g/{p}", query_string=q or None)
        assert out.status_code == 400 and "pulled partially" in out.text, (path, out.text)
    assert (
        d.simulate_get(f"/api/node/{root}/g/specificblocks", params={"blocks": "1,1,1"}).status_code
        == 200
    )
