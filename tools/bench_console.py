"""Benchmark the console's slice: a 1024x1024 grayscale PNG slice over HTTP.

Builds a 1024 x 1024 x 64 uint8blk volume (64^3 blocks, lz4; the EM sample stack
tiled) on a memory store, serves it with the real app on a LiveServer and times
``GET .../raw/xy/1024_1024/0_0_z/png`` and ``.../raw/xz/1024_64/0_y_0/png`` as the
console asks for them (a new z or y each time: scrolling through one row of blocks,
the object cache warm), end to end over loopback, so the figure bounds the
server-side time from above. The peer, in the same run: the same box read in-process
through ImageStore (no HTTP) and PNG-encoded with Pillow at the same setting. Target:
the xy slice under 200 ms.

    .venv/bin/python tools/bench_console.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import http.client
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _common import load_sample_volume  # noqa: E402

from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.backends import open_backend  # noqa: E402
from cas_dvid.datatypes.geometry import Box3, Point3  # noqa: E402
from cas_dvid.datatypes.imageblk import ImageStore  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.testing.live import LiveServer  # noqa: E402
from cas_dvid.versions import VersionService  # noqa: E402

SIDE, DEPTH = 1024, 64


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img), mode="L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def timed(fn: object, args: list[int]) -> float:
    """Median wall time of ``fn(a)`` over ``args`` (after one warm-up on args[0])."""
    fn(args[0])  # type: ignore[operator]
    times = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    """Build, serve, time and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    store = ObjectStore(open_backend("memory://"))
    v = VersionService(store)
    root = v.create_repo()
    inst = v.new_instance(root, "grey", "uint8blk", settings={"blocksize": "64,64,64"})
    images = ImageStore.on(v)
    sample = load_sample_volume()[:DEPTH]
    reps = -(-SIDE // sample.shape[1])
    vol = np.ascontiguousarray(np.tile(sample, (1, reps, reps))[:, :SIDE, :SIDE])
    images.write(v.resolve(root), inst, Point3(0, 0, 0), vol, "bench")
    at = v.resolve(root)
    app = create_app(ServerConfig("memory://"), store=store)
    picks = list(range(1, 1 + args.repeat))
    ok = True
    with LiveServer(app) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        for plane, size in (("xy", (SIDE, SIDE)), ("xz", (SIDE, DEPTH))):
            axes = (0, 1) if plane == "xy" else (0, 2)

            def offset(i: int, plane: str = plane) -> Point3:
                return Point3(0, 0, i) if plane == "xy" else Point3(0, i * 8, 0)

            def over_http(i: int, plane: str = plane, size: tuple[int, int] = size) -> None:
                o = offset(i)
                conn.request(
                    "GET",
                    f"/api/node/{root}/grey/raw/{plane}/{size[0]}_{size[1]}/{o.x}_{o.y}_{o.z}/png",
                )
                resp = conn.getresponse()
                body = resp.read()
                assert resp.status == 200, body[:200]

            def in_process(
                i: int, axes: tuple[int, int] = axes, size: tuple[int, int] = size
            ) -> None:
                extent = [1, 1, 1]
                extent[axes[0]], extent[axes[1]] = size
                box = Box3.at(offset(i), Point3(*extent))
                png(images.read_slice(at, inst, axes, box))

            # the answer is the slice itself
            o = offset(3)
            conn.request(
                "GET",
                f"/api/node/{root}/grey/raw/{plane}/{size[0]}_{size[1]}/{o.x}_{o.y}_{o.z}/png",
            )
            got = np.asarray(Image.open(io.BytesIO(conn.getresponse().read())))
            want = vol[3] if plane == "xy" else vol[:, 24, :]
            assert np.array_equal(got, want), f"{plane} slice differs from the volume"
            ours = timed(over_http, picks)
            peer = timed(in_process, picks)
            target = 0.200 if plane == "xy" else None
            met = target is None or ours < target
            ok = ok and met
            mark = "" if target is None else f"  target < 200 ms: {'OK' if met else 'MISSED'}"
            print(
                f"console slice {plane} {size[0]}x{size[1]} png: HTTP {ours * 1e3:7.1f} ms, "
                f"in-process read + Pillow PNG {peer * 1e3:7.1f} ms, "
                f"ratio {ours / peer:4.2f}x{mark}"
            )
        conn.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
