"""Peak server RSS of one big raw GET, streamed (z-slabs) vs one whole body, in one run.

Loads a uint8blk (and, with ``--labels``, a labelmap) volume into a file store, then
for each mode starts a fresh ``cas-dvid serve`` subprocess, warms it with a small read,
takes its RSS as idle, resets the high-water mark (``/proc/PID/clear_refs``), GETs the
whole volume through ``raw/0_1_2`` and reads ``VmHWM``. Prints (peak - idle) / response
size for each mode and the streamed/whole ratio.

    python tools/bench_rss.py [--mib 512] [--labels] [--cache-mb 64]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MiB = 1 << 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class Server:
    """``cas-dvid serve`` in a subprocess."""

    def __init__(self, store: str, *flags: str) -> None:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "cas_dvid.cli", "serve", store, "--port", str(self.port)]
        self.proc = subprocess.Popen([*cmd, *flags], stdout=subprocess.DEVNULL)
        for _ in range(200):
            try:
                self.request("GET", "/api/heartbeat")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request(method, path, body=body)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def get_len(self, path: str) -> int:
        """GET ``path`` reading the body in 1 MiB pieces (a client that does not keep it)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            assert resp.status == 200, resp.read()[:300]
            n = 0
            while chunk := resp.read(MiB):
                n += len(chunk)
            return n
        finally:
            conn.close()

    def post(self, path: str, body: bytes) -> object:
        status, out = self.request("POST", path, body)
        if status != 200:
            raise RuntimeError(f"POST {path}: {status} {out[:300]!r}")
        return json.loads(out) if out.strip() else {}

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def load(store: str, typename: str, shape: tuple[int, int, int]) -> str:
    """Create a repo with one ``typename`` instance filled with ``shape`` (ZYX) voxels."""
    srv = Server(store)
    try:
        root = srv.post("/api/repos", b"{}")["root"]  # type: ignore[index]
        doc = {"typename": typename, "dataname": "v", "BlockSize": "64,64,64"}
        srv.post(f"/api/repo/{root}/instance", json.dumps(doc).encode())
        z, y, x = shape
        rng = np.random.default_rng(3)
        dtype = np.uint8 if typename == "uint8blk" else np.uint64
        for z0 in range(0, z, 64):
            slab = rng.integers(0, 250 if dtype == np.uint8 else 1000, (64, y, x), dtype=dtype)
            srv.post(f"/api/node/{root}/v/raw/0_1_2/{x}_{y}_64/0_0_{z0}", slab.tobytes())
        return f"/api/node/{root}/v/raw/0_1_2/{x}_{y}_{z}/0_0_0"
    finally:
        srv.close()


def measure(store: str, path: str, stream_mb: int, cache_mb: int) -> tuple[float, int]:
    """Return ((peak - idle) / response bytes, response bytes) for one fresh server."""
    srv = Server(store, "--stream-mb", str(stream_mb), "--cache-mb", str(cache_mb))
    try:
        small = path.rsplit("/", 2)[0] + "/64_64_64/0_0_0"
        srv.get_len(small)
        time.sleep(0.5)
        idle = _status_kib(srv.proc.pid, "VmRSS")
        Path(f"/proc/{srv.proc.pid}/clear_refs").write_text("5")
        n = srv.get_len(path)
        peak = _status_kib(srv.proc.pid, "VmHWM")
        return (peak - idle) * 1024 / n, n
    finally:
        srv.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=512, help="response size (default 512 MiB)")
    ap.add_argument("--labels", action="store_true", help="also a labelmap volume")
    ap.add_argument("--cache-mb", type=int, default=64, help="server cache (default 64 MiB)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        subprocess.run([sys.executable, "-m", "cas_dvid.cli", "init", tmp], check=True)
        kinds = [("uint8blk", 1)] + ([("labelmap", 8)] if args.labels else [])
        for typename, itemsize in kinds:
            voxels = args.mib * MiB // itemsize
            xy = 512 if itemsize == 1 else 256
            shape = (voxels // (xy * xy), xy, xy)
            path = load(tmp, typename, shape)
            whole, n = measure(tmp, path, 1 << 20, args.cache_mb)
            streamed, _ = measure(tmp, path, 64, args.cache_mb)
            print(
                f"{typename} raw GET of {n / MiB:.0f} MiB, cache {args.cache_mb} MiB: "
                f"peak RSS above idle / response = streamed {streamed:.2f}x, "
                f"whole body {whole:.2f}x; streamed/whole = {streamed / whole:.2f}"
            )


if __name__ == "__main__":
    main()
