"""Benchmark the zarr view: tensorstore over HTTP against tensorstore on a local zarr3 copy.

A 512^3 uint8 volume (64^3 blocks cut from the real EM stack) is written through the
DVID API into a file:// store and committed; tensorstore then reads random 256^3
subvolumes (the same offsets for both) through ``/zarr/{commit id}/grey/`` on a live
waitress server, and from a local zarr3 array with the same chunks and codecs (bytes,
no compression) written by tensorstore itself. Prints both rates and the ratio
view / local (target >= 0.8x), and the transport ceiling: the local copy's files
served as ready bytes by a falcon app under the same waitress settings, read by
tensorstore over HTTP the same way.  Exits 0; a missed target is reported, not fatal.

    .venv/bin/python tools/bench_zarrview.py [--repeat 5] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import falcon
import numpy as np
import tensorstore as ts

sys.path.insert(0, str(Path(__file__).parent))
from _common import em_blocks, report  # noqa: E402

from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.testing.live import LiveServer  # noqa: E402
from cas_dvid.versions.stores import init_store  # noqa: E402

N, EDGE, SUB = 512, 64, 256


def volume() -> np.ndarray:
    """512^3 of EM texture: 512 distinct 64^3 blocks."""
    blocks = em_blocks((N // EDGE) ** 3, EDGE)
    vol = np.empty((N, N, N), np.uint8)
    i = 0
    for z in range(0, N, EDGE):
        for y in range(0, N, EDGE):
            for x in range(0, N, EDGE):
                vol[z : z + EDGE, y : y + EDGE, x : x + EDGE] = np.frombuffer(
                    blocks[i], np.uint8
                ).reshape(EDGE, EDGE, EDGE)
                i += 1
    return vol


def load(srv: LiveServer, vol: np.ndarray) -> str:
    """Write ``vol`` as instance ``grey``, commit, and return the commit id."""
    root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
    body = b'{"typename":"uint8blk","dataname":"grey","BlockSize":"64,64,64"}'
    assert srv.request("POST", f"/api/repo/{root}/instance", body)[0] == 200
    for z in range(0, N, EDGE):
        slab = np.ascontiguousarray(vol[z : z + EDGE]).tobytes()
        status, _, out = srv.request(
            "POST", f"/api/node/{root}/grey/raw/0_1_2/{N}_{N}_{EDGE}/0_0_{z}", slab
        )
        assert status == 200, out
    status, _, out = srv.request("POST", f"/api/node/{root}/commit", b'{"note":"bench"}')
    assert status == 200, out
    return str(json.loads(out)["commit_id"])


def local_copy(path: Path, vol: np.ndarray) -> None:
    """The same array as a local zarr3 store: 64^3 chunks, bytes codec only."""
    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": str(path)},
        "metadata": {
            "shape": list(vol.shape),
            "data_type": "uint8",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [EDGE] * 3}},
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        },
        "create": True,
    }
    ts.open(spec).result().write(vol).result()


def timed_reads(
    spec: dict[str, object], offsets: list[tuple[int, int, int]], vol: np.ndarray
) -> float:
    """Median seconds per 256^3 read over ``offsets`` (each checked against ``vol``)."""
    arr = ts.open(spec, read=True).result()
    times = []
    for z, y, x in offsets:
        t0 = time.perf_counter()
        got = arr[z : z + SUB, y : y + SUB, x : x + SUB].read().result()
        times.append(time.perf_counter() - t0)
        if not np.array_equal(got, vol[z : z + SUB, y : y + SUB, x : x + SUB]):
            raise SystemExit(f"wrong data at offset {(x, y, z)}")
    return float(np.median(times))


def ceiling_app(root: Path) -> falcon.App:
    """The transport ceiling: a falcon app answering each key from a dict of ready bytes."""
    files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    def sink(req: falcon.Request, resp: falcon.Response) -> None:
        data = files.get(req.path[1:])
        if data is None:
            raise falcon.HTTPNotFound()
        resp.data = data
        resp.content_type = "application/octet-stream"

    app = falcon.App()
    app.add_sink(sink, "/")
    return app


def main() -> None:
    """Run the benchmark and print the ratio."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    vol = volume()
    rng = np.random.default_rng(2)
    offsets = [tuple(int(v) for v in rng.integers(0, N - SUB + 1, 3)) for _ in range(args.repeat)]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "local.zarr"
        local_copy(local, vol)
        init_store(f"file://{tmp}/store")
        config = ServerConfig(f"file://{tmp}/store")
        with LiveServer(create_app(config), threads=args.threads) as srv:
            commit = load(srv, vol)
            view = {
                "driver": "zarr3",
                "kvstore": {"driver": "http", "base_url": f"{srv.url}/zarr/{commit}/grey/"},
            }
            disk = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(local)}}
            with LiveServer(ceiling_app(local), threads=args.threads) as ready:
                ceiling = {"driver": "zarr3", "kvstore": {"driver": "http", "base_url": ready.url}}
                for spec in (view, disk, ceiling):  # warm (imports, first connections)
                    timed_reads(spec, offsets[:1], vol)
                t_view, t_disk, t_ceil = [], [], []
                for i in range(len(offsets)):  # interleaved, so drift hits all three alike
                    t_view.append(timed_reads(view, offsets[i : i + 1], vol))
                    t_disk.append(timed_reads(disk, offsets[i : i + 1], vol))
                    t_ceil.append(timed_reads(ceiling, offsets[i : i + 1], vol))
    mb = SUB**3 / 1e6
    tv, td, tc = (float(np.median(t)) for t in (t_view, t_disk, t_ceil))
    print(
        f"256^3 uint8 read: zarr view {tv * 1e3:.1f} ms, local zarr3 {td * 1e3:.1f} ms, "
        f"the same chunks as ready bytes from falcon+waitress {tc * 1e3:.1f} ms"
    )
    report("tensorstore 256^3 read via /zarr view (MB/s)", mb / tv, mb / td, "MB/s", 0.8)
    print(
        f"transport ceiling (ready bytes over the same HTTP stack) vs local: {td / tc:.2f}x; "
        f"the view reaches {tc / tv:.2f}x of that ceiling"
    )


if __name__ == "__main__":
    main()
