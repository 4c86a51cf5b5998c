"""Benchmark the Dask ingest (issue 11) against the single-process loader and tensorstore.

Same run, same data: an EM-like uint8 zarr v3 (the real EM sample, tiled with a
per-tile shift so no two tiles share blocks), default 1024^3, loaded into a
uint8blk instance (32^3 blocks, lz4) on a file store:

- ``cas_dvid.batch.ingest`` on a 2-worker LocalCluster (a driver subprocess, so its
  peak RSS is the driver's alone; cluster start-up is timed apart) vs the
  single-process loader (``node UUID NAME load``'s ``load()`` into a waitress server);
  target >= 1.6x;
- the same vs tensorstore copying the zarr to a zarr3 array of 32^3 lz4 chunks;
  target >= 1.0x;
- the driver's peak RSS at 256^3 and at the full edge (flat: the driver never holds
  the volume).

Both loaders must end at the same root id, which is checked.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import load_sample_volume, report  # noqa: E402

from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.api.client import DvidClient  # noqa: E402
from cas_dvid.backends import open_backend  # noqa: E402
from cas_dvid.cli.load import Target, load  # noqa: E402
from cas_dvid.datatypes import open_versions  # noqa: E402
from cas_dvid.datatypes.sources import open_source  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.testing.live import LiveServer  # noqa: E402

TILE = 256

DRIVER = """
import json, resource, sys, time, tracemalloc
from cas_dvid.batch import ingest, open_client

def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return (u.ru_utime, u.ru_stime)

def cluster_cpu(c):
    # every process of the job: workers, scheduler and this driver (nannies idle)
    parts = [*c.run(cpu).values(), c.run_on_scheduler(cpu), cpu()]
    return sum(p[0] for p in parts), sum(p[1] for p in parts)

t0 = time.perf_counter()
with open_client(None, 2) as c:
    t1 = time.perf_counter()
    c0 = cluster_cpu(c)
    tracemalloc.start()
    r = ingest(c, sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4])
    peak = tracemalloc.get_traced_memory()[1]
    t2 = time.perf_counter()
    c1 = cluster_cpu(c)
    user, system = c1[0] - c0[0], c1[1] - c0[1]
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forking parent
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")]
rss = int(hwm[0].split()[1]) * 1024 if hwm else 0
doc = {"startup": t1 - t0, "seconds": t2 - t1, "rss": rss, "peak": peak, "root": r.root.hex(),
       "cpu": user + system, "sys": system}
print(json.dumps(doc))
"""


def ts_spec(path: str, shape: list[int] | None = None, chunk: int = 64) -> dict[str, object]:
    spec: dict[str, object] = {"driver": "zarr3", "kvstore": {"driver": "file", "path": path}}
    if shape is not None:
        blosc = {"cname": "lz4", "clevel": 5, "shuffle": "noshuffle", "typesize": 1, "blocksize": 0}
        spec["metadata"] = {
            "shape": shape,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [chunk] * 3}},
            "chunk_key_encoding": {"name": "default"},
            "data_type": "uint8",
            "codecs": [{"name": "bytes"}, {"name": "blosc", "configuration": blosc}],
        }
        spec["create"] = True
        spec["delete_existing"] = True
    return spec


def make_source(path: str, edge: int) -> None:
    """Write the tiled EM volume tile by tile (the bench never holds it whole)."""
    import tensorstore as ts

    sample = load_sample_volume()[:TILE, :TILE, :TILE]
    sample = np.pad(sample, [(0, TILE - s) for s in sample.shape], mode="reflect")
    arr = ts.open(ts_spec(path, [edge] * 3)).result()
    n = edge // TILE
    for k in range(n**3):
        z, y, x = k // (n * n), (k // n) % n, k % n
        tile = (sample.astype(np.uint16) + 37 * k) % 256
        box = arr[z * TILE : (z + 1) * TILE, y * TILE : (y + 1) * TILE, x * TILE : (x + 1) * TILE]
        box.write(tile.astype(np.uint8)).result()


def new_repo(url: str) -> tuple[LiveServer, str]:
    open_backend(url, create=True)
    srv = LiveServer(create_app(ServerConfig(url))).__enter__()
    c = DvidClient(srv.url)
    root = c.post_json("/api/repos", {})["root"]
    for name in ("single", "dask"):
        c.post_json(f"/api/repo/{root}/instance", {"typename": "uint8blk", "dataname": name})
    return srv, root


def root_of(url: str, uuid: str, name: str) -> str:
    versions = open_versions(ObjectStore(open_backend(url), cache_bytes=0))
    at = versions.resolve(uuid)
    return bytes(versions.root_at(at, versions.instance(at, name))).hex()


def run_driver(url: str, uuid: str, name: str, source: str) -> dict[str, float | str]:
    env_path = str(Path(__file__).resolve().parents[1])
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, url, uuid, name, source],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "PYTHONPATH": env_path},
    )
    doc: dict[str, float | str] = json.loads(out.stdout.strip().splitlines()[-1])
    return doc


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system, system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_stime


def main() -> int:
    """Run the benchmark; exit 1 if a target is missed."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--edge", type=int, default=1024, help="volume edge (a multiple of 256)")
    args = p.parse_args()
    edge = args.edge
    ok = True
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        src = f"{tmp}/src.zarr"
        make_source(src, edge)
        small = f"{tmp}/small.zarr"
        make_source(small, TILE)
        # NOTE: separate stores, so neither loader finds the other's blocks already stored
        url, url1 = f"file://{tmp}/store", f"file://{tmp}/store1"
        srv, uuid = new_repo(url)
        srv.__exit__(None, None, None)
        mib = edge**3 / 2**20
        # NOTE: each timed run starts with no dirty pages: the kernel writing back the
        # 1 GiB source (or the previous run's store) slowed whichever run came next ~2x.
        os.sync()
        dask = run_driver(url, uuid, "dask", src)
        srv, uuid1 = new_repo(url1)
        os.sync()
        try:
            t0, c0 = time.perf_counter(), _cpu()
            target = Target.lookup(DvidClient(srv.url), uuid1, "single")
            load(open_source(src), target, (0, 0, 0), progress=False)
            single = time.perf_counter() - t0
            c1 = _cpu()
            cores, sys_single = (c1[0] - c0[0]) / single, c1[1] - c0[1]
        finally:
            srv.__exit__(None, None, None)
        same = root_of(url1, uuid1, "single") == root_of(url, uuid, "dask") == dask["root"]
        print(f"volume {edge}^3 uint8 ({mib:.0f} MiB), 32^3 blocks; roots identical: {same}")
        ok &= same
        import tensorstore as ts

        os.sync()
        t0 = time.perf_counter()
        source = ts.open(ts_spec(src)).result()
        dest = ts.open(ts_spec(f"{tmp}/copy.zarr", [edge] * 3, chunk=32)).result()
        dest.write(source).result()
        tscopy = time.perf_counter() - t0
        seconds = float(dask["seconds"])
        print(f"dask cluster start-up {float(dask['startup']):.1f} s (not in the figures)")
        cpu_single, cpu_dask = cores * single / mib, float(dask["cpu"]) / mib
        ncpu = os.cpu_count() or 1
        print(
            f"the single loader (client and server threads in one process) kept {cores:.2f} of "
            f"{ncpu} cores busy, {cpu_single * 1e3:.1f} CPU ms per MiB "
            f"({sys_single / mib * 1e3:.1f} of them in the kernel); the dask job "
            f"{float(dask['cpu']) / seconds:.2f} cores, {cpu_dask * 1e3:.1f} CPU ms per MiB "
            f"({float(dask['sys']) / mib * 1e3:.1f} in the kernel)"
        )
        # The most the cluster can gain on this machine: every core busy at its CPU cost
        # per MiB, against the single loader's measured speed.
        ceiling = (ncpu / cpu_dask) / (mib / single)
        print(f"so {ncpu} cores cap the dask job at {ceiling:.2f}x the single loader here")
        ok &= report(
            f"dask 2-worker ingest {edge}^3 vs single loader",
            mib / seconds,
            mib / single,
            "MiB/s",
            1.6,
        )
        ok &= report(
            f"dask 2-worker ingest {edge}^3 vs tensorstore copy",
            mib / seconds,
            mib / tscopy,
            "MiB/s",
            1.0,
        )
        srv, uuid2 = new_repo(f"file://{tmp}/store2")
        srv.__exit__(None, None, None)
        little = run_driver(f"file://{tmp}/store2", uuid2, "dask", small)
        big_rss, small_rss = float(dask["rss"]) / 2**20, float(little["rss"]) / 2**20
        big_py, small_py = float(dask["peak"]) / 2**20, float(little["peak"]) / 2**20
        print(
            f"driver peak RSS: {small_rss:.0f} MiB at {TILE}^3, {big_rss:.0f} MiB at {edge}^3 "
            f"({(edge / TILE) ** 3:.0f}x the voxels); Python allocations during the job "
            f"(tracemalloc peak): {small_py:.1f} MiB vs {big_py:.1f} MiB"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
