"""Voxel volume benchmark (issue 5): a 512^3 EM-like uint8 volume in 64^3 blocks.

Same run, same data, same chunk size and codec (lz4):
- library read of random unaligned 256^3 cut-outs, cached and uncached, vs tensorstore's
  zarr3 driver on a file kvstore;
- write of the whole volume vs zarr-python v3 with a LocalStore;
- HTTP GET raw 256^3 through waitress vs the same server returning a ready 16 MiB body;
- median XY 512x512 PNG slice over HTTP.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import load_sample_volume  # noqa: E402

from cas_dvid.backends import open_backend  # noqa: E402
from cas_dvid.datatypes.geometry import Box3, Point3  # noqa: E402
from cas_dvid.datatypes.imageblk import ImageStore  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.versions.stores import init_store  # noqa: E402
from cas_dvid.testing.s3server import free_port  # noqa: E402
from cas_dvid.versions import VersionService  # noqa: E402

N = 512
B = 64
CUT = 256


def volume() -> np.ndarray:
    """512^3 from the real EM stack, tiled (blocks rarely repeat: 64 and 250 are coprime-ish)."""
    em = load_sample_volume()
    return np.ascontiguousarray(np.tile(em, (3, 3, 3))[:N, :N, :N])


def offsets(n: int, seed: int = 5) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(0, N - CUT, 3)) for _ in range(n)]


def med(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def line(
    name: str, ours: float, base: float, unit: str, target: float | None, higher: bool = True
) -> bool:
    ratio = ours / base if higher else base / ours
    ok = target is None or ratio >= target
    t = "" if target is None else f"target >= {target:.1f}x  {'OK' if ok else 'MISSED'}"
    print(
        f"{name:<46} ours {ours:9.1f} {unit:<6} baseline {base:9.1f} {unit:<6} ratio {ratio:5.2f}x  {t}"
    )
    return ok


# -- ours ---------------------------------------------------------------------------------


def ours_open(url: str, cache: int) -> tuple[ImageStore, object, object]:
    v = VersionService(ObjectStore(open_backend(url), cache_bytes=cache))
    root = next(iter(v.repos()))
    at = v.resolve(root)
    return ImageStore.on(v), at, v.instance(at, "grayscale")


def ours_write(url: str, vol: np.ndarray) -> float:
    init_store(url)
    v = VersionService(ObjectStore(open_backend(url)))
    root = v.create_repo()
    inst = v.new_instance(root, "grayscale", "uint8blk", settings={"blocksize": f"{B},{B},{B}"})
    images = ImageStore.on(v)
    t0 = time.perf_counter()
    for z in range(0, N, B):  # one block-thick slab per call, as the loader sends them
        images.write(v.resolve(root), inst, Point3(0, 0, z), vol[z : z + B], "bench")
    return time.perf_counter() - t0


# -- baselines ------------------------------------------------------------------------------


def zarr_write(path: str, vol: np.ndarray) -> float:
    import zarr
    from zarr.codecs import BloscCodec

    t0 = time.perf_counter()
    arr = zarr.create_array(
        store=path,
        shape=vol.shape,
        chunks=(B, B, B),
        dtype="u1",
        compressors=BloscCodec(cname="lz4", shuffle="noshuffle"),
    )
    arr[:] = vol
    return time.perf_counter() - t0


def ts_open(path: str, cache: int):  # type: ignore[no-untyped-def]
    import tensorstore as ts

    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": path},
        "context": {"cache_pool": {"total_bytes_limit": cache}},
        "recheck_cached_data": False,
    }
    return ts.open(spec).result()


def ts_create(path: str, vol: np.ndarray) -> None:
    import tensorstore as ts

    spec = {
        "driver": "zarr3",
        "kvstore": {"driver": "file", "path": path},
        "metadata": {
            "shape": list(vol.shape),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [B, B, B]}},
            "chunk_key_encoding": {"name": "default"},
            "data_type": "uint8",
            "codecs": [
                {"name": "bytes"},
                {
                    "name": "blosc",
                    "configuration": {
                        "cname": "lz4",
                        "clevel": 5,
                        "shuffle": "noshuffle",
                        "typesize": 1,
                        "blocksize": 0,
                    },
                },
            ],
        },
        "create": True,
        "delete_existing": True,
    }
    arr = ts.open(spec).result()
    arr.write(vol).result()


def bench_reads(tmp: Path, url: str, vol: np.ndarray, reps: int) -> bool:
    ts_path = str(tmp / "ts.zarr")
    ts_create(ts_path, vol)
    cuts = offsets(reps)
    ok = True
    for label, cache in (("uncached", 0), ("cached", 1 << 30)):
        images, at, inst = ours_open(url, cache)
        arr = ts_open(ts_path, cache)
        if cache:  # warm both caches on every cut-out used
            for x, y, z in cuts:
                images.read(at, inst, Box3.at(Point3(x, y, z), Point3(CUT, CUT, CUT)))
                arr[z : z + CUT, y : y + CUT, x : x + CUT].read().result()
        ours_t, ts_t = [], []
        for x, y, z in cuts:
            box = Box3.at(Point3(x, y, z), Point3(CUT, CUT, CUT))
            if not cache:
                images.store.cache.clear()
                images.tree.clear_cache()
            t0 = time.perf_counter()
            got = images.read(at, inst, box)
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            want = arr[z : z + CUT, y : y + CUT, x : x + CUT].read().result()
            ts_t.append(time.perf_counter() - t0)
            assert np.array_equal(got, want)
        o, b = statistics.median(ours_t) * 1e3, statistics.median(ts_t) * 1e3
        ok &= line(f"read 256^3 unaligned, {label} (ms)", o, b, "ms", 1.0, higher=False)
    return ok


def serve_ready_body(port: int) -> None:
    import falcon

    from cas_dvid.api.serve import serve

    body = bytes(CUT**3)

    class Ready:
        def on_get(self, req, resp, **_):  # type: ignore[no-untyped-def]
            resp.content_type = "application/octet-stream"
            resp.data = body

    app = falcon.App()
    app.add_route("/ready", Ready())
    serve(app, port=port)


def start(cmd: list[str], url: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{url} did not come up")


def fetch(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    r = conn.getresponse()
    data = r.read()
    assert r.status == 200, data[:200]
    return data


def bench_http(store: str, reps: int) -> bool:
    p1, p2 = free_port(), free_port()
    ours = start(
        [sys.executable, "-m", "cas_dvid.cli", "serve", store, "--port", str(p1)],
        f"http://127.0.0.1:{p1}/api/heartbeat",
    )
    ready = start(
        [sys.executable, __file__, "--serve-ready", str(p2)], f"http://127.0.0.1:{p2}/ready"
    )
    try:
        c1, c2 = (
            http.client.HTTPConnection("127.0.0.1", p1),
            http.client.HTTPConnection("127.0.0.1", p2),
        )
        root = next(iter(json.loads(fetch(c1, "/api/repos/info"))))
        cuts = offsets(reps, seed=9)
        paths = [
            f"/api/node/{root}/grayscale/raw/0_1_2/{CUT}_{CUT}_{CUT}/{x}_{y}_{z}"
            for x, y, z in cuts
        ]
        for p in paths:  # warm the server's cache: this figure is about the transport
            fetch(c1, p)
        ours_t, base_t = [], []
        for p in paths:
            t0 = time.perf_counter()
            assert len(fetch(c1, p)) == CUT**3
            ours_t.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            fetch(c2, "/ready")
            base_t.append(time.perf_counter() - t0)
        mb = CUT**3 / 1e6
        ok = line(
            "HTTP GET raw 256^3 (MB/s)",
            mb / statistics.median(ours_t),
            mb / statistics.median(base_t),
            "MB/s",
            0.6,
        )
        slices = []
        for z in range(10, 10 + reps * 3, 3):
            t0 = time.perf_counter()
            fetch(c1, f"/api/node/{root}/grayscale/raw/xy/512_512/0_0_{z}")
            slices.append(time.perf_counter() - t0)
        m = statistics.median(slices) * 1e3
        print(
            f"{'XY 512x512 PNG slice, median (ms)':<46} ours {m:9.1f} ms     target < 50 ms  {'OK' if m < 50 else 'MISSED'}"
        )
        return ok and m < 50
    finally:
        for p in (ours, ready):
            p.terminate()
            p.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--dir", default=None, help="where stores go (default: a temp dir under /tmp)")
    ap.add_argument("--serve-ready", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_ready:
        serve_ready_body(args.serve_ready)
        return 0
    vol = volume()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp_s:
        tmp = Path(tmp_s)
        store = str(tmp / "store")
        writes, zwrites = [], []
        for i in range(3):
            ztime = zarr_write(str(tmp / f"z{i}.zarr"), vol)
            otime = (
                ours_write(f"file://{tmp}/w{i}", vol)
                if i < 2
                else ours_write(f"file://{store}", vol)
            )
            writes.append(otime)
            zwrites.append(ztime)
        mb = vol.nbytes / 1e6
        ok = line(
            "write 512^3 (MB/s)",
            mb / statistics.median(writes),
            mb / statistics.median(zwrites),
            "MB/s",
            1.0,
        )
        ok &= bench_reads(tmp, f"file://{store}", vol, args.reps)
        ok &= bench_http(store, args.reps)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
