"""Benchmark the console's slices: 1024x1024 grayscale PNG and label slices over HTTP.

Builds a 1024 x 1024 x 64 uint8blk volume (the EM sample stack tiled) and a labelmap
of the same size (cells of 16 voxels with random ids), both in 64^3 blocks on a
memory store, serves them with the real app on a LiveServer and times the requests
the console makes: ``.../grey/raw/xy/1024_1024/0_0_z/png`` and
``.../seg/raw/xy/1024_1024/0_0_z/raw`` (uint64 bytes, coloured in the browser), plus
an xz slice of each, a new z (or y) each time: scrolling through one row of blocks,
the object cache warm. Times are end to end over loopback, so they bound the
server-side time from above. The peer, in the same run: the same box read in-process
(ImageStore / LabelStore, no HTTP) and, for grey, PNG-encoded with Pillow at the same
setting. Target: a 1024x1024 slice under 200 ms.

    .venv/bin/python tools/bench_console.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from _common import load_sample_volume  # noqa: E402

from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.backends import open_backend  # noqa: E402
from cas_dvid.datatypes.geometry import Box3, Point3  # noqa: E402
from cas_dvid.datatypes.imageblk import ImageStore  # noqa: E402
from cas_dvid.datatypes.labelmap import LabelStore  # noqa: E402
from cas_dvid.datatypes.labelmap.codec import encode_block  # noqa: E402
from cas_dvid.datatypes.streams import pack_records  # noqa: E402
from cas_dvid.objects import ObjectStore  # noqa: E402
from cas_dvid.testing.live import LiveServer  # noqa: E402
from cas_dvid.versions import VersionService  # noqa: E402

SIDE, DEPTH, B = 1024, 64, 64


def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img), mode="L").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def timed(fn: Callable[[int], object], args: list[int]) -> float:
    """Median wall time of ``fn(a)`` over ``args`` (after one warm-up on args[0])."""
    fn(args[0])
    times = []
    for a in args:
        t0 = time.perf_counter()
        fn(a)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def grey_volume() -> np.ndarray:
    sample = load_sample_volume()[:DEPTH]
    reps = -(-SIDE // sample.shape[1])
    return np.ascontiguousarray(np.tile(sample, (1, reps, reps))[:, :SIDE, :SIDE])


def label_volume(cell: int = 16) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = SIDE // cell
    ids = rng.choice(2**40, (DEPTH // cell) * n * n, replace=False).astype(np.uint64) + 1
    ids = ids.reshape(DEPTH // cell, n, n)
    return np.ascontiguousarray(ids.repeat(cell, 0).repeat(cell, 1).repeat(cell, 2))


def blocks_body(vol: np.ndarray) -> bytes:
    """The POST blocks body of the whole (one block deep) label volume."""
    items = []
    for by in range(SIDE // B):
        for bx in range(SIDE // B):
            block = np.ascontiguousarray(vol[:, by * B : (by + 1) * B, bx * B : (bx + 1) * B])
            items.append(((bx, by, 0), gzip.compress(encode_block(block), 1)))
    return b"".join(bytes(p) for p in pack_records(items))


def main() -> int:
    """Build, serve, time and print the figures."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()
    store = ObjectStore(open_backend("memory://"))
    v = VersionService(store)
    root = v.create_repo()
    grey = v.new_instance(root, "grey", "uint8blk", settings={"blocksize": "64,64,64"})
    seg = v.new_instance(root, "seg", "labelmap", settings={"blocksize": "64,64,64"})
    images, labels = ImageStore.on(v), LabelStore.on(v)
    gvol, lvol = grey_volume(), label_volume()
    images.write(v.resolve(root), grey, Point3(0, 0, 0), gvol, "bench")
    labels.writer.write_stream(v.resolve(root), seg, blocks_body(lvol), "bench")
    at = v.resolve(root)
    picks = list(range(1, 1 + args.repeat))
    ok = True
    with LiveServer(create_app(ServerConfig("memory://"), store=store)) as srv:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)

        def get(path: str) -> bytes:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, body[:200]
            return body

        cases = [
            ("grey", "xy", (SIDE, SIDE), "png"),
            ("seg", "xy", (SIDE, SIDE), "raw"),
            ("grey", "xz", (SIDE, DEPTH), "png"),
            ("seg", "xz", (SIDE, DEPTH), "raw"),
        ]
        for name, plane, size, fmt in cases:
            axes = (0, 1) if plane == "xy" else (0, 2)

            def offset(i: int, plane: str = plane) -> Point3:
                return Point3(0, 0, i) if plane == "xy" else Point3(0, i * 8, 0)

            def path(
                i: int,
                name: str = name,
                plane: str = plane,
                size: tuple[int, int] = size,
                fmt: str = fmt,
            ) -> str:
                o = offset(i)
                dims = f"{plane}/{size[0]}_{size[1]}/{o.x}_{o.y}_{o.z}"
                return f"/api/node/{root}/{name}/raw/{dims}/{fmt}"

            def box(i: int, axes: tuple[int, int] = axes, size: tuple[int, int] = size) -> Box3:
                extent = [1, 1, 1]
                extent[axes[0]], extent[axes[1]] = size
                return Box3.at(offset(i), Point3(*extent))

            def in_process(i: int, name: str = name, axes: tuple[int, int] = axes) -> None:
                if name == "grey":
                    png(images.read_slice(at, grey, axes, box(i)))
                else:
                    labels.read_box(at, seg, box(i)).tobytes()

            # the answer is the slice itself
            body = get(path(3))
            want = (gvol if name == "grey" else lvol)[3 if plane == "xy" else slice(None)]
            if plane == "xz":
                want = want[:, 24, :]
            got = (
                np.asarray(Image.open(io.BytesIO(body)))
                if fmt == "png"
                else np.frombuffer(body, "<u8").reshape(want.shape)
            )
            assert np.array_equal(got, want), f"{name} {plane} slice differs from the volume"
            ours = timed(lambda i, path=path: get(path(i)), picks)
            peer = timed(in_process, picks)
            met = size != (SIDE, SIDE) or ours < 0.200
            ok = ok and met
            mark = "" if size != (SIDE, SIDE) else f"  target < 200 ms: {'OK' if met else 'MISSED'}"
            what = "read + Pillow PNG" if fmt == "png" else "read"
            print(
                f"console slice {name:<4} {plane} {size[0]}x{size[1]} {fmt}: "
                f"HTTP {ours * 1e3:6.1f} ms, in-process {what} {peer * 1e3:6.1f} ms, "
                f"ratio {ours / peer:4.2f}x{mark}"
            )
        conn.close()
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
