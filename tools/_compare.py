"""Side-by-side harness for tools/bench_table.py: HTTP client, peers, data, checks.

Copied (and trimmed) from ../shared/bench/compare_server.py and common.py, the harness
issue 15's figures were first measured with, because a fresh clone has no ../shared:
the keep-alive http.client reader that reads a body straight into a buffer, the
tensorstore zarr3 peer (same 64^3 chunks, blosc-lz4, default context: no chunk
cache), the falcon + waitress transport ceiling returning a ready body, the PNG peer
(Pillow, compress_level 6 = Go image/png's default), rotate/settle, the
specificblocks stream check and the byte-for-byte checks.  Changed on the way: the
ceiling app runs under cas_dvid's own waitress settings (``cas_dvid.api.serve``),
so it differs from the server under test only in what it does per request; the
EM-like volume is made with numpy alone (no scipy) and cached under the temp dir.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np

MiB = 1 << 20
GiB = 1 << 30
C = 64  # chunk / block edge


def log(msg: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def rotate(xs: list[str], i: int) -> list[str]:
    """``xs`` started at ``i``: who goes first alternates run by run, box by box."""
    i %= len(xs)
    return xs[i:] + xs[:i]


def prewarm(gib: float) -> None:
    """Touch and free ``gib`` GiB so the kernel has recently used free pages.

    On this Firecracker VM pages free for ~2-3 s go back to the host (free page
    reporting) and the next first touch costs ~0.5 GiB/s instead of ~14 GiB/s: call
    right before a timed section that allocates a lot.
    """
    a = np.ones(int(gib * GiB), np.uint8)
    del a


def settle(gib: float) -> None:
    """Before a timed write: flush dirty pages (untimed), then prewarm."""
    os.sync()
    prewarm(gib)


# ----------------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------------


def fs_type(path: str | Path) -> str:
    """Filesystem type of the mount holding ``path`` (from /proc/mounts)."""
    real = os.path.realpath(path)
    best, typ = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                _, mnt, t, *_ = line.split()
                inside = real == mnt or real.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) > len(best):
                    best, typ = mnt, t
    except OSError:
        pass
    return typ


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM and load average."""
    info: dict[str, Any] = {"nproc": os.cpu_count(), "cpu": "?", "mem_gib": 0.0}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["mem_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info["loadavg"] = tuple(round(x, 2) for x in os.getloadavg())
    return info


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------


def _smooth(a: np.ndarray, passes: int = 2) -> np.ndarray:
    """Separable binomial [1 4 6 4 1]/16 filter, ``passes`` times per axis, edges clamped."""
    k = np.array([1, 4, 6, 4, 1], np.float32) / 16
    for ax in range(a.ndim):
        n = a.shape[ax]
        for _ in range(passes):
            p = np.pad(a, [(2, 2) if i == ax else (0, 0) for i in range(a.ndim)], mode="edge")
            out = k[0] * p[(slice(None),) * ax + (slice(0, n),)]
            for j in range(1, 5):
                out += k[j] * p[(slice(None),) * ax + (slice(j, j + n),)]
            a = out
    return a


def em_like(n: int, seed: int = 0) -> np.ndarray:
    """EM-like uint8 ``n``^3: smoothed noise (membrane/texture scale) + slow intensity
    drift + shot noise, like common.em_like; like real EM it does not shrink under lz4."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, n, n), np.uint8)
    zz = np.arange(n)[:, None, None]
    yy = np.arange(n)[None, :, None]
    xx = np.arange(n)[None, None, :]
    for z0 in range(0, n, C):
        z1 = min(n, z0 + C)
        h0, h1 = max(0, z0 - 8), min(n, z1 + 8)
        r = rng.standard_normal((h1 - h0, n, n), dtype=np.float32)
        s = _smooth(r)[z0 - h0 : z1 - h0]
        s *= 1.0 / (s.std() + 1e-6)
        low = (np.sin(zz[z0:z1] / 23.0) + np.sin(yy / 31.0) * np.cos(xx / 17.0)).astype(np.float32)
        v = 128 + 28 * s + 12 * low + 6 * rng.standard_normal(s.shape, dtype=np.float32)
        np.clip(v, 0, 255, out=v)
        out[z0:z1] = v.astype(np.uint8)
    return out


def em_volume(n: int) -> np.ndarray:
    """``em_like(n)``, generated once and kept as .npy under the temp dir (not the repo)."""
    cache = Path(tempfile.gettempdir()) / "cas_dvid-bench" / f"em_like_v1_{n}.npy"
    if cache.exists():
        return np.asarray(np.load(cache), np.uint8)
    t0 = time.perf_counter()
    vol = em_like(n)
    cache.parent.mkdir(parents=True, exist_ok=True)
    part = cache.with_suffix(f".{os.getpid()}.partial.npy")
    np.save(part, vol)
    os.replace(part, cache)
    log(f"generated EM-like {n}^3 in {time.perf_counter() - t0:.1f} s -> {cache}")
    return vol


# ----------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------


class Checks:
    """Byte-for-byte comparisons of every read with the source, and failures."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.count = 0

    def fail(self, msg: str) -> None:
        self.errors.append(msg)
        bar = "!" * 78
        print(f"\n{bar}\n!!! INVALID: {msg}\n{bar}\n", file=sys.stderr, flush=True)

    def equal(self, what: str, got: Any, expect: np.ndarray) -> bool:
        self.count += 1
        got = np.asarray(got)
        if got.shape != expect.shape or got.dtype != expect.dtype:
            self.fail(
                f"{what}: got {got.shape} {got.dtype}, expected {expect.shape} {expect.dtype}"
            )
            return False
        if not np.array_equal(got, expect):
            diff = np.argwhere(got != expect)
            first = tuple(int(v) for v in diff[0])
            self.fail(
                f"{what}: {len(diff)} of {expect.size} voxels differ, first at (z,y,x)={first}"
            )
            return False
        return True

    def block_stream(
        self, what: str, data: bytes, blocks: list[tuple[int, int, int]], ref: np.ndarray
    ) -> None:
        """Check a specificblocks answer: (x, y, z, n) int32 headers, each an uncompressed block."""
        want, seen, off, bsz = set(blocks), set(), 0, C**3
        mv = memoryview(data)
        while off < len(data):
            if off + 16 > len(data):
                self.fail(f"{what}: truncated record header at byte {off}")
                return
            bx, by, bz, n = struct.unpack_from("<iiii", data, off)
            off += 16
            if n != bsz or (bx, by, bz) not in want or (bx, by, bz) in seen:
                self.fail(f"{what}: block {bx},{by},{bz} of {n} bytes unexpected or repeated")
                return
            seen.add((bx, by, bz))
            got = np.frombuffer(mv[off : off + n], np.uint8).reshape(C, C, C)
            sl = np.s_[bz * C : (bz + 1) * C, by * C : (by + 1) * C, bx * C : (bx + 1) * C]
            self.equal(f"{what} block {bx},{by},{bz}", got, ref[sl])
            off += n
        if seen != want:
            self.fail(f"{what}: {len(want - seen)} of {len(want)} blocks missing from the stream")


# ----------------------------------------------------------------------------
# HTTP client: http.client, one keep-alive connection per target
# ----------------------------------------------------------------------------


class ServerError(Exception):
    """An HTTP answer other than the one expected."""


class Http:
    """One keep-alive connection; one silent retry when the server closed it while idle."""

    def __init__(self, url: str) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def _send(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> http.client.HTTPResponse:
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                return self.conn.getresponse()
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                http.client.CannotSendRequest,
                http.client.ResponseNotReady,
            ):
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 204),
    ) -> tuple[http.client.HTTPResponse, bytes]:
        r = self._send(method, path, body, headers)
        data = r.read()
        if r.status not in ok:
            raise ServerError(f"{method} {path} -> {r.status} {r.reason}: {data[:300]!r}")
        return r, data

    def get_into(self, path: str, mv: memoryview, expected: int) -> int:
        """GET ``path`` straight into ``mv[:expected]`` (no bytes object in between)."""
        r = self._send("GET", path)
        if r.status != 200:
            raise ServerError(f"GET {path} -> {r.status} {r.reason}: {r.read()[:300]!r}")
        n = 0
        while n < expected:
            k = r.readinto(mv[n:expected])
            if not k:
                break
            n += k
        rest = r.read()
        if n != expected or rest:
            raise ServerError(f"GET {path}: body {n + len(rest)} bytes, expected {expected}")
        return n

    def close(self) -> None:
        self.conn.close()


# ----------------------------------------------------------------------------
# transport ceiling: falcon + waitress returning a ready body, in a child process
# ----------------------------------------------------------------------------


def serve_ceiling(port: int, nbytes: int) -> None:
    """Serve GET /bytes -> ``nbytes`` ready bytes, with cas_dvid's waitress settings."""
    import falcon

    from cas_dvid.api.serve import serve

    body = np.random.default_rng(7).integers(0, 256, nbytes, dtype=np.uint8).tobytes()

    class Bytes:
        def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
            resp.content_type = "application/octet-stream"
            resp.data = body

    app = falcon.App()
    app.add_route("/bytes", Bytes())
    serve(app, port=port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_child(cmd: list[str], port: int, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Start ``cmd`` (a server on ``port``) and wait until the port accepts connections."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {p.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    p.wait()
    raise RuntimeError(f"{cmd} did not listen on {port} in {timeout:.0f} s")


def stop_child(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# ----------------------------------------------------------------------------
# in-process peers
# ----------------------------------------------------------------------------


def ts_spec(path: Path, shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """tensorstore zarr3 on a file kvstore; with ``shape``, the metadata to create it."""
    s: dict[str, Any] = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(path)}}
    if shape is not None:
        blosc = {"cname": "lz4", "clevel": 5, "shuffle": "shuffle", "typesize": 1, "blocksize": 0}
        s["metadata"] = {
            "shape": list(shape),
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [C] * 3}},
            "chunk_key_encoding": {"name": "default"},
            "data_type": "uint8",
            "fill_value": 0,
            "codecs": [
                {"name": "bytes", "configuration": {"endian": "little"}},
                {"name": "blosc", "configuration": blosc},
            ],
        }
    return s


def ts_create(path: Path, shape: tuple[int, ...]) -> Any:
    import tensorstore as ts

    return ts.open(ts_spec(path, shape), create=True, delete_existing=True).result()


def ts_open(path: Path) -> Any:
    import tensorstore as ts

    return ts.open(ts_spec(path), read=True).result()


def png_encode(a: np.ndarray) -> bytes:
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(a).save(b, format="PNG", compress_level=6)
    return b.getvalue()


def png_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    im = Image.open(io.BytesIO(data))
    im.load()
    return np.asarray(im)
