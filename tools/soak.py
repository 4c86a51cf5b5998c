"""Soak: mixed reads and writes from client threads against two server processes on one store.

Starts two ``cas-dvid serve`` processes on one file store, makes a repo with a uint8blk
(32^3 blocks), a labelmap and a keyvalue, then runs --threads client threads for
--seconds.  Each thread owns its own keys and its own z-slab of the volumes, so it
knows what every read must return: it writes (keyvalue values, 64^3 grayscale and
label blocks), reads back what it wrote last from either server (keyvalue GET, raw
3-D boxes, XY PNG slices, label at a point), and counts every non-2xx answer and
every wrong byte as an error.  Each server's RSS is sampled every second.

Prints per-operation counts and p50/p99 latency, the error count, and each server's
RSS over time (start, quartile medians, peak); with --report FILE writes the same
text there.  Exits 1 on any error, or when a server's RSS in the last quarter of the
run exceeds its second-quarter median by more than --rss-growth (default 25%) plus
32 MiB: memory must stay flat.  The servers get a small object cache (--cache-mb 64)
so that it is full within the first quarter and later growth would be a leak.

    .venv/bin/python tools/soak.py --seconds 600 --report docs/soak-report.txt
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cas_dvid.testing.process import ServerProcess  # noqa: E402
from cas_dvid.versions.stores import init_store  # noqa: E402

EDGE = 64  # what a client writes and reads at a time
SIDE = 256  # each thread's slab is SIDE x SIDE x EDGE voxels


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    """One soak thread: its own keys and z-slab, what it wrote last, and its timings."""

    def __init__(self, n: int, ports: list[int], uuid: str, seed: int) -> None:
        self.n = n
        self.uuid = uuid
        self.rng = random.Random(seed)
        self.conns = [http.client.HTTPConnection("127.0.0.1", p, timeout=120) for p in ports]
        self.kv: dict[str, bytes] = {}
        self.grey = np.zeros((EDGE, SIDE, SIDE), np.uint8)
        self.seg = np.zeros((EDGE, SIDE, SIDE), np.uint64)
        self.z0 = n * EDGE
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []

    def call(self, op: str, method: str, path: str, body: bytes | None = None) -> bytes | None:
        conn = self.rng.choice(self.conns)
        t0 = time.perf_counter()
        try:
            conn.request(method, f"/api/node/{self.uuid}/{path}", body=body)
            r = conn.getresponse()
            data = r.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self.errors.append(f"{op}: {exc!r}")
            return None
        self.times[op].append(time.perf_counter() - t0)
        if r.status != 200:
            self.errors.append(f"{op}: {r.status} {data[:200]!r}")
            return None
        return data

    def check(self, op: str, ok: bool) -> None:
        if not ok:
            self.errors.append(f"{op}: wrong bytes")

    def step(self) -> None:
        r = self.rng.random()
        bx, by = self.rng.randrange(SIDE // EDGE) * EDGE, self.rng.randrange(SIDE // EDGE) * EDGE
        where = f"{bx}_{by}_{self.z0}"
        if r < 0.15:
            key = f"t{self.n}-{self.rng.randrange(50)}"
            value = self.rng.randbytes(self.rng.choice((100, 4096, 65536)))
            if self.call("kv POST", "POST", f"kv/key/{key}", value) is not None:
                self.kv[key] = value
        elif r < 0.35 and self.kv:
            key = self.rng.choice(sorted(self.kv))
            got = self.call("kv GET", "GET", f"kv/key/{key}")
            if got is not None:
                self.check("kv GET", got == self.kv[key])
        elif r < 0.45:
            block = np.random.default_rng(self.rng.randrange(1 << 30)).integers(
                0, 256, (EDGE,) * 3, dtype=np.uint8
            )
            size = f"{EDGE}_{EDGE}_{EDGE}"
            path = f"grey/raw/0_1_2/{size}/{where}"
            if self.call("grey POST", "POST", path, block.tobytes()) is not None:
                self.grey[:, by : by + EDGE, bx : bx + EDGE] = block
        elif r < 0.65:
            x, y = self.rng.randrange(SIDE - EDGE), self.rng.randrange(SIDE - EDGE)
            d = self.rng.randrange(EDGE // 2)
            size = f"{EDGE}_{EDGE}_{EDGE // 2}"
            got = self.call("grey GET", "GET", f"grey/raw/0_1_2/{size}/{x}_{y}_{self.z0 + d}")
            if got is not None:
                want = self.grey[d : d + EDGE // 2, y : y + EDGE, x : x + EDGE]
                self.check("grey GET", got == want.tobytes())
        elif r < 0.75:
            d = self.rng.randrange(EDGE)
            got = self.call("xy PNG", "GET", f"grey/raw/xy/{SIDE}_{SIDE}/0_0_{self.z0 + d}/png")
            if got is not None:
                img = np.asarray(Image.open(io.BytesIO(got)))
                self.check("xy PNG", np.array_equal(img, self.grey[d]))
        elif r < 0.85:
            labels = np.full((EDGE,) * 3, self.rng.randrange(1, 1 << 40), np.uint64)
            labels[: EDGE // 2] += 1
            size = f"{EDGE}_{EDGE}_{EDGE}"
            path = f"seg/raw/0_1_2/{size}/{where}"
            if self.call("seg POST", "POST", path, labels.tobytes()) is not None:
                self.seg[:, by : by + EDGE, bx : bx + EDGE] = labels
        else:
            x, y, d = self.rng.randrange(SIDE), self.rng.randrange(SIDE), self.rng.randrange(EDGE)
            got = self.call("seg label", "GET", f"seg/label/{x}_{y}_{self.z0 + d}")
            if got is not None:
                self.check("seg label", json.loads(got)["Label"] == int(self.seg[d, y, x]))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    """Run the soak and print its report."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--servers", type=int, default=2)
    p.add_argument("--rss-growth", type=float, default=0.25)
    p.add_argument(
        "--cache-mb", type=int, default=64, help="each server's object cache (small: fills early)"
    )
    p.add_argument("--report", type=Path, help="also write the report to this file")
    p.add_argument("--dir", type=Path, help="where the store goes (default: a temp dir)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = Path(tmp) / "store"
        init_store(str(store))
        cache = ("--cache-mb", str(args.cache_mb))
        servers = [ServerProcess(store, None, *cache).start() for _ in range(args.servers)]
        try:
            return run(args, servers)
        finally:
            for srv in servers:
                srv.stop()


def run(args: argparse.Namespace, servers: list[ServerProcess]) -> int:
    conn = servers[0].connection()
    conn.request("POST", "/api/repos", body=b"{}")
    uuid = json.loads(conn.getresponse().read())["root"]
    for inst in (
        {"typename": "uint8blk", "dataname": "grey", "BlockSize": "32,32,32"},
        {"typename": "labelmap", "dataname": "seg", "BlockSize": "32,32,32"},
        {"typename": "keyvalue", "dataname": "kv"},
    ):
        conn.request("POST", f"/api/repo/{uuid}/instance", body=json.dumps(inst).encode())
        r = conn.getresponse()
        assert r.status == 200, r.read()
        r.read()
    conn.close()
    ports = [s.port for s in servers]
    clients = [Client(i, ports, uuid, seed=i) for i in range(args.threads)]
    stop = time.monotonic() + args.seconds
    rss: dict[int, list[tuple[float, float]]] = {s.pid: [] for s in servers}
    t_start = time.monotonic()

    def loop(c: Client) -> None:
        while time.monotonic() < stop:
            c.step()

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for pid in rss:
            rss[pid].append((time.monotonic() - t_start, rss_mib(pid)))
        time.sleep(1.0)
    for t in threads:
        t.join()
    return report(args, clients, rss, time.monotonic() - t_start)


def report(
    args: argparse.Namespace,
    clients: list[Client],
    rss: dict[int, list[tuple[float, float]]],
    elapsed: float,
) -> int:
    times: dict[str, list[float]] = defaultdict(list)
    for c in clients:
        for op, ts in c.times.items():
            times[op] += ts
    errors = [e for c in clients for e in c.errors]
    total = sum(len(ts) for ts in times.values())
    lines = [
        f"soak: {elapsed:.0f} s, {args.threads} client threads, {len(rss)} server processes "
        f"on one file store; {total} requests ({total / elapsed:.0f}/s), {len(errors)} errors",
        f"{'operation':<12}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}",
    ]
    for op in sorted(times):
        ts = times[op]
        lines.append(
            f"{op:<12}{len(ts):>8}{percentile(ts, 0.5) * 1e3:>10.1f}"
            f"{percentile(ts, 0.99) * 1e3:>10.1f}"
        )
    flat = True
    for n, (pid, samples) in enumerate(rss.items()):
        mib = [m for _, m in samples]
        quarters = [mib[i * len(mib) // 4 : (i + 1) * len(mib) // 4] or mib for i in range(4)]
        meds = [statistics.median(q) for q in quarters]
        limit = meds[1] * (1 + args.rss_growth) + 32
        ok = max(quarters[3]) <= limit
        flat &= ok
        lines.append(
            f"server {n} RSS MiB: start {mib[0]:.0f}, quartile medians "
            + " / ".join(f"{m:.0f}" for m in meds)
            + f", peak {max(mib):.0f}; last quarter within {limit:.0f}: {'ok' if ok else 'GREW'}"
        )
        lines.append(
            "  over time (s: MiB): "
            + ", ".join(f"{t:.0f}: {m:.0f}" for t, m in samples[:: max(1, len(samples) // 12)])
        )
    for e in errors[:20]:
        lines.append(f"error: {e}")
    text = "\n".join(lines)
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(text + "\n")
    return 0 if not errors and flat else 1


if __name__ == "__main__":
    raise SystemExit(main())
