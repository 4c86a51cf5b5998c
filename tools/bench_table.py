"""Issue 15's table in one run: cas_dvid against its peers, side by side, interleaved.

Starts its own ``cas-dvid serve`` on a temp store, then for each row times cas_dvid and
its peer alternately (the side that goes first rotates run by run and, inside a run,
request by request, so drift hits both alike) for ``--runs`` timed runs after
``--warmup`` untimed ones.  A run's ratio is cas_dvid speed / peer speed (peer time /
cas_dvid time) unless the row says otherwise; the table gives the median ratio over
the runs, their min-max, the goal and whether the median meets it.

Rows (512^3 EM-like uint8, 64^3 blocks, lz4; tensorstore zarr3 with blosc-lz4 64^3
chunks on a copy in the same folder, default context: no chunk cache):
  1 HTTP GET raw/0_1_2 of random unaligned 256^3 boxes vs a falcon + waitress app (same
    waitress settings, cas_dvid.api.serve) returning a ready body of the same size;
  2 the same boxes read in-process with the library (ImageStore.read, decoded-object
    cache off, as tensorstore's is) vs tensorstore reading its copy;
  3 GET specificblocks, 32 random blocks a request, uncompressed, vs tensorstore reading
    the same chunks concurrently;
  4 ingest: POST raw/0_1_2 block-aligned 64-deep slabs (16 MiB each) of new content each
    run vs tensorstore writing the same array into a new folder;
  5, 6 keyvalue POST then GET of 4 KiB values, one kept-alive client, vs
    tools/bench_keyvalue.py's falcon endpoint keeping values in a dict;
  7 GET raw/xy 512x512 PNG at random z vs tensorstore read + Pillow PNG encode;
  8 commit + newversion on a 10,000-version DAG vs on a 10-version DAG, and resolving a
    6-character UUID prefix with 1,000 repos vs with 1 (library, a fresh VersionService
    each time); these ratios are times, big / small, and the goal is "flat within 1.5x".
Every server and tensorstore read is compared byte for byte with the source (untimed);
a mismatch or HTTP error marks the run INVALID (exit 2).  A missed goal exits 1.

The table goes to stdout and to --out (docs/bench.md by default) with the date,
machine and command.  The harness (HTTP reader, peers, checks) is tools/_compare.py,
copied from ../shared/bench/compare_server.py.

    python tools/bench_table.py                # the full table (a few minutes)
    python tools/bench_table.py --quick --out /tmp/bench.md   # small sizes, 2 runs
    python tools/bench_table.py --only 1,2,3 --runs 7         # some rows (volume loaded untimed)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))
sys.path.insert(0, str(ROOT))

import _compare as h  # noqa: E402
from _compare import C, GiB, MiB, log, rotate  # noqa: E402

from cas_dvid.testing.process import ServerProcess  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """What one invocation measures; FULL for the table, QUICK for the test."""

    n: int = 512  # volume edge
    box: int = 256  # read box edge
    boxes: int = 20
    slices: int = 20
    block_reqs: int = 8
    blocks_per_req: int = 32
    kv_requests: int = 1000
    dag_small: int = 10
    dag_large: int = 10_000
    repos_large: int = 1000
    samples: int = 15  # DAG pairs / prefix lookups per side per run


FULL = Sizes()
QUICK = Sizes(128, 96, 4, 4, 2, 8, 100, 10, 300, 50, 7)


@dataclass
class Row:
    """One line of the table: per-run figures of both sides and the run's ratio."""

    label: str
    unit: str  # of the two sides' figures
    goal: float
    cost: bool = False  # the ratio is a time ratio (lower is better), goal an upper bound
    ours: list[float] = field(default_factory=list)
    peer: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)  # row 3: a ready body's rate, per run

    def add(self, ours: float, peer: float, ratio: float) -> None:
        self.ours.append(ours)
        self.peer.append(peer)
        self.ratios.append(ratio)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios) if self.ratios else float("nan")

    @property
    def ok(self) -> bool:
        r = self.ratio
        return bool(self.ratios) and (r <= self.goal if self.cost else r >= self.goal)


def rate(nbytes: float, seconds: float) -> float:
    return nbytes / seconds / 1e6


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """Seconds ``fn(*args)`` took, and what it returned."""
    t0 = time.perf_counter()
    r = fn(*args)
    return time.perf_counter() - t0, r


class TableBench:
    """The server, the data and the rows of one invocation."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, work: Path) -> None:
        self.a, self.z, self.work = args, sizes, work
        self.checks = h.Checks()
        self.rows: dict[str, Row] = {}
        self.rng = np.random.default_rng(args.seed)
        self.store = work / "store"
        self.srv: ServerProcess | None = None
        self.ref = np.empty(0, np.uint8)
        self.ts_dir = work / "ts_ref"

    def row(self, key: str, label: str, unit: str, goal: float, cost: bool = False) -> Row:
        return self.rows.setdefault(key, Row(label, unit, goal, cost))

    @property
    def nrun(self) -> int:
        return int(self.a.warmup + self.a.runs)

    def counts(self, run: int) -> bool:
        return bool(run >= self.a.warmup)

    # -- server -------------------------------------------------------------------------------

    def start_server(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "init", str(self.store)],
            check=True,
            capture_output=True,
        )
        self.srv = ServerProcess(self.store).start()
        self.http = h.Http(self.srv.url)
        _, data = self.http.call("POST", "/api/repos", json.dumps({"alias": "bench"}).encode())
        self.uuid = json.loads(data)["root"]
        for cfg in (
            {"typename": "uint8blk", "dataname": "grayscale", "BlockSize": f"{C},{C},{C}"},
            {"typename": "keyvalue", "dataname": "kv"},
        ):
            self.http.call("POST", f"/api/repo/{self.uuid}/instance", json.dumps(cfg).encode())

    def path(self, rest: str) -> str:
        return f"/api/node/{self.uuid}/grayscale/{rest}"

    def stop(self) -> None:
        if self.srv is not None:
            self.http.close()
            self.srv.stop()

    # -- row 4: ingest (also loads the volume every later row reads) ---------------------------

    def post_volume(self, vol: np.ndarray) -> None:
        n = vol.shape[0]
        for z in range(0, n, C):
            body = memoryview(vol[z : z + C]).cast("B")
            hdr = {"Content-Type": "application/octet-stream"}
            self.http.call("POST", self.path(f"raw/0_1_2/{n}_{n}_{C}/0_0_{z}"), body, hdr)

    def ingest(self, vol: np.ndarray) -> None:
        n = vol.shape[0]
        row = self.row(
            "ingest",
            f"ingest: POST raw/0_1_2 block-aligned {n * n * C // MiB} MiB slabs (new content "
            "each run) vs tensorstore writing the same array",
            "MB/s",
            1.0,
        )
        for run in range(self.nrun):
            salt = np.frombuffer(os.urandom(8), np.uint64)[0] | np.uint64(1)
            vk = np.empty_like(vol)  # new content every run: nothing to dedup
            np.bitwise_xor(vol.view(np.uint64), salt, out=vk.view(np.uint64))
            tsd = self.work / f"ts_{run}"
            t: dict[str, float] = {}
            for side in rotate(["cas_dvid", "tensorstore"], run):
                arr = h.ts_create(tsd, vol.shape) if side == "tensorstore" else None
                h.settle(vol.nbytes * 1.5 / GiB + 0.2)
                if arr is not None:
                    t[side], _ = timed(lambda a, v: a.write(v).result(), arr, vk)
                else:
                    t[side], _ = timed(self.post_volume, vk)
            self.spot_check(vk, f"ingest run {run}")
            if self.counts(run):
                row.add(
                    rate(vol.nbytes, t["cas_dvid"]),
                    rate(vol.nbytes, t["tensorstore"]),
                    t["tensorstore"] / t["cas_dvid"],
                )
            log(
                f"ingest run {run}: "
                + ", ".join(f"{s} {rate(vol.nbytes, v):,.0f} MB/s" for s, v in t.items())
            )
            self.ts_dir, self.ref = tsd, vk  # kept to the end: ext4 creates files slowly
            # for 10-30 s after a bulk delete (../shared/bench/README.md)

    def load(self, vol: np.ndarray) -> None:
        """Load the volume untimed (``--only`` without the ingest row)."""
        self.post_volume(vol)
        self.ts_dir = self.work / "ts_ref"
        h.ts_create(self.ts_dir, vol.shape).write(vol).result()
        self.ref = vol
        self.spot_check(vol, "load")

    def wanted(self, step: str) -> bool:
        """Whether ``--only`` (row numbers or names) selects a step of the driver."""
        only = self.a.only
        if not only:
            return True
        keys = STEP_ROWS.get(step, (step,))
        return step in only or any(
            k in only or NUMBER[k] in only or NUMBER[k].rstrip("ab") in only for k in keys
        )

    def spot_check(self, vol: np.ndarray, what: str) -> None:
        s = min(96, vol.shape[0] - 2)
        z, y, x = (int(v) for v in self.rng.integers(1, vol.shape[0] - s, 3))
        buf = bytearray(s**3)
        self.http.get_into(self.path(f"raw/0_1_2/{s}_{s}_{s}/{x}_{y}_{z}"), memoryview(buf), s**3)
        got = np.frombuffer(buf, np.uint8).reshape(s, s, s)
        self.checks.equal(
            f"{what}: GET raw at {x},{y},{z}", got, vol[z : z + s, y : y + s, x : x + s]
        )

    # -- rows 1 and 2: random unaligned boxes ----------------------------------------------------

    def boxes(self) -> list[tuple[int, int, int]]:
        n, b = self.z.n, self.z.box
        out: list[tuple[int, int, int]] = []
        while len(out) < self.z.boxes:  # unaligned in every axis
            z, y, x = (int(v) for v in self.rng.integers(1, n - b, 3))
            if z % C and y % C and x % C:
                out.append((z, y, x))
        return out

    def read_http(self, boxes: list[tuple[int, int, int]]) -> None:
        b = self.z.box
        nb = b**3
        row = self.row(
            "http",
            f"HTTP GET raw/0_1_2 of a random unaligned {b}^3 box vs a falcon+waitress app "
            f"returning a ready {nb / MiB:.3g} MiB body",
            "MB/s",
            0.9,
        )
        port = h.free_port()
        ceiling = h.start_child(
            [sys.executable, __file__, "--serve-ceiling", str(port), "--ceiling-bytes", str(nb)],
            port,
        )
        peer = h.Http(f"http://127.0.0.1:{port}")
        sbuf, cbuf = bytearray(nb), bytearray(nb)
        got = np.frombuffer(sbuf, np.uint8).reshape(b, b, b)
        try:
            h.prewarm(0.5)
            for run in range(self.nrun):
                t = {"cas_dvid": 0.0, "ceiling": 0.0}
                for j, (z, y, x) in enumerate(boxes):
                    for side in rotate(list(t), run + j):
                        if side == "cas_dvid":
                            p = self.path(f"raw/0_1_2/{b}_{b}_{b}/{x}_{y}_{z}")
                            dt, _ = timed(self.http.get_into, p, memoryview(sbuf), nb)
                            sl = np.s_[z : z + b, y : y + b, x : x + b]
                            self.checks.equal(f"http run {run} box {j}", got, self.ref[sl])
                        else:
                            dt, _ = timed(peer.get_into, "/bytes", memoryview(cbuf), nb)
                        t[side] += dt
                self.add_times(row, run, t, "ceiling", nb * len(boxes))
        finally:
            peer.close()
            h.stop_child(ceiling)

    def add_times(self, row: Row, run: int, t: dict[str, float], peer: str, nbytes: int) -> None:
        """Record one run of two timed sides as rates; log it."""
        ours = t["cas_dvid"]
        if self.counts(run):
            row.add(rate(nbytes, ours), rate(nbytes, t[peer]), t[peer] / ours)
        log(
            f"{row.label[:40]}... run {run}: "
            + ", ".join(f"{s} {rate(nbytes, v):,.0f} MB/s" for s, v in t.items())
        )

    def read_library(self, boxes: list[tuple[int, int, int]]) -> None:
        from cas_dvid.backends import open_backend
        from cas_dvid.datatypes.geometry import Box3, Point3
        from cas_dvid.datatypes.imageblk import ImageStore
        from cas_dvid.objects import ObjectStore
        from cas_dvid.versions import VersionService

        b = self.z.box
        row = self.row(
            "library",
            "the same box read in-process (the library, decoded cache off) vs tensorstore "
            "zarr3 on a local copy",
            "MB/s",
            1.0,
        )
        vs = VersionService(ObjectStore(open_backend(f"file://{self.store}"), cache_bytes=0))
        at = vs.resolve(self.uuid)
        inst = vs.instance(at, "grayscale")
        images = ImageStore.on(vs)
        arr = h.ts_open(self.ts_dir)
        h.prewarm(0.5)
        for run in range(self.nrun):
            t = {"cas_dvid": 0.0, "tensorstore": 0.0}
            for j, (z, y, x) in enumerate(boxes):
                sl = np.s_[z : z + b, y : y + b, x : x + b]
                for side in rotate(list(t), run + j):
                    if side == "cas_dvid":
                        box = Box3.at(Point3(x, y, z), Point3(b, b, b))
                        dt, got = timed(images.read, at, inst, box)
                    else:
                        dt, got = timed(lambda s: arr[s].read().result(), sl)
                    self.checks.equal(f"library run {run} box {j} {side}", got, self.ref[sl])
                    del got
                    t[side] += dt
            self.add_times(row, run, t, "tensorstore", b**3 * len(boxes))

    # -- row 3: specificblocks --------------------------------------------------------------------

    def blocks(self) -> None:
        g = self.z.n // C
        k = min(self.z.blocks_per_req, g**3)
        row = self.row(
            "blocks",
            f"specificblocks, {k} random blocks a request, uncompressed, vs tensorstore "
            "reading the same chunks",
            "MB/s",
            1.0,
        )
        reqs = []
        for _ in range(self.z.block_reqs):
            idx = self.rng.choice(g**3, size=k, replace=False)
            reqs.append([(int(i % g), int(i // g % g), int(i // (g * g))) for i in idx])
        arr = h.ts_open(self.ts_dir)
        nb = k * (16 + C**3)  # the answer: a 16-byte header and the voxels per block
        port = h.free_port()
        ceiling = h.start_child(
            [sys.executable, __file__, "--serve-ceiling", str(port), "--ceiling-bytes", str(nb)],
            port,
        )
        peer = h.Http(f"http://127.0.0.1:{port}")
        cbuf = bytearray(nb)

        def chunk(bx: int, by: int, bz: int) -> Any:
            return np.s_[bz * C : (bz + 1) * C, by * C : (by + 1) * C, bx * C : (bx + 1) * C]

        try:
            h.prewarm(0.3)
            for run in range(self.nrun):
                t = {"cas_dvid": 0.0, "tensorstore": 0.0, "ceiling": 0.0}
                for j, blocks in enumerate(reqs):
                    for side in rotate(list(t), run + j):
                        if side == "cas_dvid":
                            q = ",".join(f"{bx},{by},{bz}" for bx, by, bz in blocks)
                            p = self.path(f"specificblocks?blocks={q}&compression=uncompressed")
                            dt, (_, data) = timed(self.http.call, "GET", p, None, None, (200,))
                            self.checks.block_stream(
                                f"blocks run {run} req {j}", data, blocks, self.ref
                            )
                        elif side == "ceiling":
                            dt, _ = timed(peer.get_into, "/bytes", memoryview(cbuf), nb)
                        else:

                            def read_all(blocks: list[tuple[int, int, int]] = blocks) -> list[Any]:
                                fs = [arr[chunk(*c)].read() for c in blocks]
                                return [f.result() for f in fs]

                            dt, got = timed(read_all)
                            for c, v in zip(blocks, got, strict=True):
                                self.checks.equal(
                                    f"blocks run {run} ts {c}", v, self.ref[chunk(*c)]
                                )
                        t[side] += dt
                self.add_times(row, run, t, "tensorstore", k * len(reqs) * C**3)
                if self.counts(run):  # the same bytes as the answer, as a rate of voxel bytes
                    row.ceiling.append(rate(k * len(reqs) * C**3, t["ceiling"]))
        finally:
            peer.close()
            h.stop_child(ceiling)

    # -- row 7: XY PNG --------------------------------------------------------------------------

    def xy(self) -> None:
        n = self.z.n
        row = self.row(
            "xy",
            f"XY {n}x{n} PNG vs tensorstore read + Pillow PNG encode",
            "ms/slice",
            1.0,
        )
        zs = [int(v) for v in self.rng.choice(n, size=min(self.z.slices, n), replace=False)]
        arr = h.ts_open(self.ts_dir)
        h.prewarm(0.3)
        for run in range(self.nrun):
            t = {"cas_dvid": 0.0, "tensorstore": 0.0}
            for j, z in enumerate(zs):
                for side in rotate(list(t), run + j):
                    if side == "cas_dvid":
                        p = self.path(f"raw/xy/{n}_{n}/0_0_{z}")
                        dt, (r, data) = timed(self.http.call, "GET", p, None, None, (200,))
                        if "png" not in r.getheader("Content-Type", ""):
                            self.checks.fail(f"xy z={z}: not a PNG ({r.getheader('Content-Type')})")
                        self.checks.equal(f"xy run {run} z={z}", h.png_decode(data), self.ref[z])
                    else:
                        dt, data = timed(lambda k: h.png_encode(arr[k].read().result()), z)
                        self.checks.equal(f"xy run {run} z={z} ts", h.png_decode(data), self.ref[z])
                    t[side] += dt
            if self.counts(run):
                ms = {s: v / len(zs) * 1e3 for s, v in t.items()}
                row.add(ms["cas_dvid"], ms["tensorstore"], t["tensorstore"] / t["cas_dvid"])
            log(
                f"xy run {run}: "
                + ", ".join(f"{s} {v / len(zs) * 1e3:.2f} ms" for s, v in t.items())
            )

    # -- rows 5 and 6: keyvalue -------------------------------------------------------------------

    def keyvalue(self) -> None:
        import bench_keyvalue

        assert self.srv is not None
        rows = {
            "POST": self.row(
                "kv_post", "keyvalue POST 4 KiB vs a falcon dict endpoint", "req/s", 0.6
            ),
            "GET": self.row("kv_get", "keyvalue GET 4 KiB vs the same", "req/s", 0.85),
        }
        port = h.free_port()
        base = h.start_child(
            [sys.executable, str(TOOLS / "bench_keyvalue.py"), "--serve-baseline", str(port)], port
        )
        ports = {"cas_dvid": self.srv.port, "dict": port}
        try:
            for run in range(self.nrun):
                got: dict[str, tuple[float, float]] = {}
                for side in rotate(list(ports), run):
                    got[side] = bench_keyvalue.run_client(
                        ports[side],
                        f"/api/node/{self.uuid}/kv",
                        self.z.kv_requests,
                        os.urandom(4096),
                        1,
                    )
                for i, (method, row) in enumerate(rows.items()):
                    o, d = got["cas_dvid"][i], got["dict"][i]
                    if self.counts(run):
                        row.add(o, d, o / d)
                    log(f"kv {method} run {run}: cas_dvid {o:,.0f} req/s, dict {d:,.0f} req/s")
        finally:
            h.stop_child(base)

    # -- row 8: the version DAG and UUID prefixes ----------------------------------------------

    def dag(self) -> None:
        import bench_dag

        small, large = self.z.dag_small, self.z.dag_large
        row = self.row(
            "dag",
            f"version DAG: commit+newversion at {large:,} vs {small:,} versions "
            "(time ratio, flat within 1.5x)",
            "ms/pair",
            1.5,
            cost=True,
        )
        vs = bench_dag.service(self.work / "dag")
        leaves: dict[str, str] = {}
        t0 = time.perf_counter()
        for side, n in (("small", small), ("large", large)):
            root = vs.create_repo(f"dag{n}")
            vs.new_instance(root, "kv", "keyvalue")
            leaves[side] = bench_dag.grow(vs, root, n)
        log(f"grew DAGs of {small} and {large} versions in {time.perf_counter() - t0:.1f} s")

        def pair(side: str) -> float:
            t1 = time.perf_counter()
            vs.commit(leaves[side])
            leaves[side] = vs.new_child(leaves[side])
            return (time.perf_counter() - t1) * 1e3

        self.cost_runs(row, pair, "dag")

    def prefixes(self) -> None:
        import bench_dag

        from cas_dvid.versions import VersionService

        many = self.z.repos_large
        row = self.row(
            "prefix",
            f"UUID-prefix resolve (6 characters) with {many:,} repos vs 1 repo "
            "(time ratio, flat within 1.5x)",
            "ms",
            1.5,
            cost=True,
        )
        stores, specs = {}, {}
        for side, n in (("small", 1), ("large", many)):
            vs = bench_dag.service(self.work / f"repos_{n}")
            roots = [vs.create_repo() for _ in range(n)]
            stores[side], specs[side] = vs.store, roots[len(roots) // 2][:6]

        def lookup(side: str) -> float:
            fresh = VersionService(stores[side])  # no in-process UUID cache
            t1 = time.perf_counter()
            fresh.resolve(specs[side])
            return (time.perf_counter() - t1) * 1e3

        self.cost_runs(row, lookup, "prefix")

    def cost_runs(self, row: Row, sample: Callable[[str], float], what: str) -> None:
        """Per run, ``samples`` alternating small/large samples; ratio of the medians."""
        for run in range(self.nrun):
            t: dict[str, list[float]] = {"small": [], "large": []}
            for i in range(self.z.samples):
                for side in rotate(list(t), run + i):
                    t[side].append(sample(side))
            lg, sm = statistics.median(t["large"]), statistics.median(t["small"])
            if self.counts(run):
                row.add(lg, sm, lg / sm)
            log(f"{what} run {run}: large {lg:.3f} ms, small {sm:.3f} ms")

    # -- driver -------------------------------------------------------------------------------

    def run(self) -> None:
        log(f"EM-like volume {self.z.n}^3")
        vol = h.em_volume(self.z.n)
        self.start_server()
        steps: list[tuple[str, Callable[[], None]]] = [("ingest", lambda: self.ingest(vol))]
        if not self.wanted("ingest"):
            steps = [("load", lambda: self.load(vol))]
        boxes = self.boxes()
        steps += [
            ("http", lambda: self.read_http(boxes)),
            ("library", lambda: self.read_library(boxes)),
            ("blocks", self.blocks),
            ("keyvalue", self.keyvalue),
            ("xy", self.xy),
            ("dag", self.dag),
            ("prefix", self.prefixes),
        ]
        steps = [s for s in steps if s[0] == "load" or self.wanted(s[0])]
        try:
            for name, fn in steps:
                log(f"--- {name}")
                gc.collect()
                try:
                    fn()
                except Exception as e:  # the table still comes out, this row marked missing
                    traceback.print_exc()
                    self.checks.fail(f"{name} aborted: {type(e).__name__}: {e}")
                    if name in ("ingest", "load"):
                        break
        finally:
            self.stop()


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------

ORDER = ("http", "library", "blocks", "ingest", "kv_post", "kv_get", "xy", "dag", "prefix")
NUMBER = dict(zip(ORDER, ("1", "2", "3", "4", "5", "6", "7", "8a", "8b"), strict=True))
STEP_ROWS = {"keyvalue": ("kv_post", "kv_get")}
"""The driver steps that fill rows of other names."""


def fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def table(b: TableBench) -> list[str]:
    out = [
        "| # | path | cas_dvid | peer (8a, 8b: the small size) | median ratio | min-max | goal | |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for key in ORDER:
        if b.a.only and not (b.wanted(key) or b.wanted(_step_of(key))):
            continue
        i, r = NUMBER[key], b.rows.get(key)
        if r is None or not r.ratios:
            out.append(f"| {i} | {key}: not measured (see the errors below) | | | | | | MISSED |")
            continue
        goal = f"<= {r.goal:g}x" if r.cost else f">= {r.goal:g}x"
        out.append(
            f"| {i} | {r.label} | {fmt(statistics.median(r.ours))} {r.unit} "
            f"| {fmt(statistics.median(r.peer))} {r.unit} | **{r.ratio:.2f}x** "
            f"| {min(r.ratios):.2f}-{max(r.ratios):.2f} | {goal} | {'OK' if r.ok else 'MISSED'} |"
        )
    return out


def ceiling_note(b: TableBench) -> list[str]:
    """Row 3's HTTP transport ceiling: what a ready body of the answer's size gets, same run.

    Row 3's peer reads in-process; this says how close the answer is to what any HTTP
    answer of that many bytes gets from falcon + waitress on this machine.
    """
    r = b.rows.get("blocks")
    if r is None or not r.ceiling:
        return []
    ours, ceil = statistics.median(r.ours), statistics.median(r.ceiling)
    per_run = [o / c for o, c in zip(r.ours, r.ceiling, strict=True)]
    tensorstore = statistics.median(r.peer)
    return [
        "",
        f"Row 3's HTTP transport ceiling (falcon+waitress returning a ready body of the "
        f"answer's size, interleaved in the same runs): {fmt(ceil)} MB/s; cas_dvid "
        f"({fmt(ours)} MB/s) is at **{statistics.median(per_run):.2f}x** of it "
        f"(min-max {min(per_run):.2f}-{max(per_run):.2f}), tensorstore in-process at "
        f"{tensorstore / ceil:.2f}x of it.",
    ]


def versions() -> str:
    import importlib.metadata as md

    out = [f"Python {sys.version.split()[0]}"]
    for p in ("numpy", "tensorstore", "falcon", "waitress", "pillow"):
        try:
            out.append(f"{p} {md.version(p)}")
        except md.PackageNotFoundError:
            out.append(f"{p} ?")
    return ", ".join(out)


def report(b: TableBench, command: str, wall: float, load0: tuple[float, ...]) -> str:
    m = h.machine()
    z, a = b.z, b.a
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    lines = [
        "# Benchmark table (issue 15)",
        "",
        f"- Command: `{command}` ({wall:.0f} s)",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}",
        f"- Machine: {m['nproc']} cores ({m['cpu']}), {m['mem_gib']} GiB RAM, store and peers' "
        f"copies on {h.fs_type(b.work)} ({b.work.parent}); load average {load0} at the start, "
        f"{m['loadavg']} at the end.",
        f"- Software: {versions()}",
        "",
        f"{z.n}^3 EM-like uint8 volume, 64^3 blocks, lz4 (tensorstore zarr3: blosc-lz4, 64^3 "
        f"chunks, no chunk cache); {z.boxes} boxes, {z.block_reqs} specificblocks requests, "
        f"{z.kv_requests} keyvalue requests, {z.slices} slices, {z.samples} DAG/prefix samples "
        f"per side per run. Ratio = cas_dvid speed / peer speed (rows 8a and 8b: time at the "
        f"large size / time at the small one); median and min-max of {a.runs} interleaved "
        f"runs after {a.warmup} warm-up (the side going first alternates).",
        "",
        *table(b),
        *ceiling_note(b),
        "",
        f"Correctness: {b.checks.count} reads compared byte for byte with the source; "
        + (
            "all equal."
            if not b.checks.errors
            else f"**{len(b.checks.errors)} FAILURES: RUN INVALID**"
        ),
    ]
    lines += [f"- {e}" for e in b.checks.errors[:20]]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=None, help="timed runs (default 5; 2 with --quick)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first (default 1)")
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 runs (the test)")
    ap.add_argument(
        "--out",
        help="where the table goes (default docs/bench.md; with --quick, bench-quick.md in the "
        "temp dir, so a smoke run never replaces the figures the README links)",
    )
    ap.add_argument(
        "--dir",
        help="folder for the store and the peers' copies (default: the temp dir, on disk "
        "here, where issue 15's goals were set; on tmpfs tensorstore writes faster than "
        "the HTTP transport ceiling, so the ingest goal cannot be met there)",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed for boxes, slices and blocks")
    ap.add_argument(
        "--only",
        type=lambda t: {v.strip() for v in t.split(",") if v.strip()},
        default=set(),
        help="comma-separated rows to run, by number (1, 3, 8) or name (http, library, "
        "blocks, ingest, keyvalue, xy, dag, prefix); the volume is loaded untimed when "
        "ingest is not among them",
    )
    ap.add_argument("--serve-ceiling", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-bytes", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve_ceiling:
        h.serve_ceiling(a.serve_ceiling, a.ceiling_bytes)
        return 0
    a.runs = a.runs or (2 if a.quick else 5)
    sizes = QUICK if a.quick else FULL
    # children (the server, the peers) import the same cas_dvid as this script
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    command = "python " + " ".join(
        shlex.quote(x) for x in [f"tools/{Path(__file__).name}", *sys.argv[1:]]
    )
    t0, load0 = time.perf_counter(), tuple(round(x, 2) for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-table-", dir=a.dir) as tmp:
        b = TableBench(a, sizes, Path(tmp))
        b.run()
        text = report(b, command, time.perf_counter() - t0, load0)
    print()
    print(text)
    default = (
        Path(tempfile.gettempdir()) / "bench-quick.md" if a.quick else ROOT / "docs" / "bench.md"
    )
    out = Path(a.out) if a.out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"wrote {out}")
    if b.checks.errors:
        return 2
    rows = [k for k in ORDER if not a.only or b.wanted(k) or b.wanted(_step_of(k))]
    return 0 if all(b.rows.get(k) is not None and b.rows[k].ok for k in rows) else 1


def _step_of(row: str) -> str:
    return next((s for s, ks in STEP_ROWS.items() if row in ks), row)


if __name__ == "__main__":
    sys.exit(main())
