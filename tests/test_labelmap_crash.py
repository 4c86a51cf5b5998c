"""A labelmap writer killed mid-write (SIGKILL between objects and the ref) leaves blocks and
index agreeing; a rerun of the write lands."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from _bodies import voronoi

from cas_dvid.backends import open_backend
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.invariants import check_version
from cas_dvid.objects import ObjectStore
from cas_dvid.testing.process import ServerProcess


def _post(url: str, body: bytes) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=120) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return -1  # the server died under it


def test_kill_during_labelmap_write_leaves_index_and_blocks_agreeing(tmp_path: Path) -> None:
    store = tmp_path / "store"
    subprocess.run([sys.executable, "-m", "cas_dvid.cli", "init", str(store)], check=True)
    srv = ServerProcess(store).start()
    base_url = srv.url
    try:
        root = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(f"{base_url}/api/repos", data=b"{}"), timeout=30
            ).read()
        )["root"]
        inst = b'{"typename":"labelmap","dataname":"seg","BlockSize":"32,32,32"}'
        assert _post(f"{base_url}/api/repo/{root}/instance", inst) == 200
        first = voronoi((64, 64, 64), 30, 1)
        node = f"{base_url}/api/node/{root}/seg"
        assert _post(f"{node}/raw/0_1_2/64_64_64/0_0_0", first.tobytes()) == 200
        cells = np.random.default_rng(2).integers(1, 5000, (16, 32, 32)).astype(np.uint64)
        big = cells.repeat(8, 0).repeat(8, 1).repeat(8, 2)  # 64 blocks of many labels
        statuses: list[int] = []
        t = threading.Thread(
            target=lambda: statuses.append(
                _post(f"{node}/raw/0_1_2/256_256_128/0_0_64", big.tobytes())
            )
        )
        t.start()
        time.sleep(0.6)
        srv.kill()
        t.join(60)
    finally:
        srv.kill()
    versions = open_versions(ObjectStore(open_backend(f"file://{store}")))
    labels = LabelStore.on(versions)
    at = versions.resolve(root)
    assert check_version(labels, at, at.instance("seg")) == []
    with srv.start():
        assert _post(f"{node}/raw/0_1_2/256_256_128/0_0_64", big.tobytes()) == 200
    at = versions.resolve(root)
    assert check_version(labels, at, at.instance("seg")) == []
    box = labels.read_box(at, at.instance("seg"), _box(0, 0, 64, 256, 256, 128), supervoxels=True)
    assert np.array_equal(box, big)
    assert statuses and statuses[0] in (-1, 200), statuses


def _box(x: int, y: int, z: int, sx: int, sy: int, sz: int) -> Box3:
    return Box3.at(Point3(x, y, z), Point3(sx, sy, sz))
