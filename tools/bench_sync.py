"""Benchmark sync: clone, incremental and no-op push, verify; each against a baseline of the same run.

Repo: a 512^3 uint8 volume in 64^3 blocks (512 blocks of 256 KiB cut from the real EM
sample, incompressible for lz4) and a keyvalue instance of 10,000 keys.

    .venv/bin/python tools/bench_sync.py [--dir /dev/shm] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import blake3

sys.path.insert(0, str(Path(__file__).parent))
from _common import em_blocks, report  # noqa: E402

from cas_dvid.api import ServerConfig, create_app  # noqa: E402
from cas_dvid.objects import Kind, ObjectId, ObjectStore  # noqa: E402
from cas_dvid.versions.stores import init_store  # noqa: E402
from cas_dvid.sync import HttpPeer, Options, StorePeer, transfer_version  # noqa: E402
from cas_dvid.testing import sample  # noqa: E402
from cas_dvid.sync.clone import clone  # noqa: E402
from cas_dvid.sync.gc import collect  # noqa: E402
from cas_dvid.sync.verify import verify_version  # noqa: E402
from cas_dvid.testing.live import LiveServer  # noqa: E402
from cas_dvid.versions import VersionService  # noqa: E402

EDGE = 64
GRID = (8, 8, 8)


def open_store(path: Path) -> ObjectStore:
    return ObjectStore(init_store(f"file://{path}")[0], cache_bytes=64 << 20)


def files(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]


def read_and_hash(paths: list[str], threads: int) -> None:
    def one(p: str) -> bytes:
        with open(p, "rb", buffering=0) as f:
            return blake3.blake3(f.readall()).digest()

    if threads == 1:
        for p in paths:
            one(p)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, paths))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=args.dir))
    try:
        run(work, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, repeat: int) -> None:
    print(f"work dir {work}; repo: 512^3 uint8 in 64^3 blocks + 10,000 keyvalue keys")
    src_path = work / "src"
    vs = VersionService(open_store(src_path))
    t0 = time.perf_counter()
    blocks = em_blocks(512, EDGE)
    s = sample.build(
        vs, grid=GRID, edge=EDGE, kv_keys=10_000, kv_value=64, blocks=lambda n, e: blocks
    )
    print(f"built in {time.perf_counter() - t0:.1f} s")
    obj_files = files(src_path / "objects")
    total = sum(os.path.getsize(p) for p in obj_files)
    print(f"{len(obj_files)} objects, {total / 2**20:.1f} MiB stored")

    # -- full clone file -> file vs shutil.copytree of the object files ------------------
    # NOTE: rounds alternate baseline and ours and delete their copies at once: tmpfs pages
    # freshly handed out are slow on these VMs (PERF-NOTES), so a pile of copies skews the
    # later runs.
    copies, clones = [], []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        shutil.copytree(src_path / "objects", work / "copy")
        copies.append(time.perf_counter() - t0)
        shutil.rmtree(work / "copy")
        dst = open_store(work / "clone")
        t0 = time.perf_counter()
        clone(StorePeer(vs.store), StorePeer(dst), Options())
        clones.append(time.perf_counter() - t0)
        dst.close()
        shutil.rmtree(work / "clone")
    base, ours = statistics.median(copies[1:]), statistics.median(clones[1:])
    report(
        "full clone file->file (MB/s)", total / ours / 1e6, total / base / 1e6, "MB/s", target=0.5
    )

    # -- verify vs reading and BLAKE3-hashing the same files (rounds alternate) ----------
    peer = StorePeer(vs.store)
    one, four, ours_v = [], [], []
    for _ in range(repeat + 1):
        for out, fn in (
            (one, lambda: read_and_hash(obj_files, 1)),
            (four, lambda: read_and_hash(obj_files, 4)),
            (ours_v, lambda: verify_version(peer, s.root)),
        ):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    base1, base4, vt = (statistics.median(x[1:]) for x in (one, four, ours_v))
    report(
        "verify (MB/s) vs read+blake3, one thread",
        total / vt / 1e6,
        total / base1 / 1e6,
        "MB/s",
        target=0.7,
    )
    report("verify (MB/s) vs read+blake3, 4 threads", total / vt / 1e6, total / base4 / 1e6, "MB/s")

    # -- incremental push after a 1 % change, to a server over HTTP ---------------------
    remote_path = work / "remote"
    open_store(remote_path).close()
    with LiveServer(create_app(ServerConfig(f"file://{remote_path}"))) as srv:
        remote = HttpPeer(srv.url)
        t0 = time.perf_counter()
        first = transfer_version(StorePeer(vs.store), remote, s.root)
        dt = time.perf_counter() - t0
        print(f"first push over HTTP: {first.summary()}  ({first.bytes / dt / 1e6:.0f} MB/s)")
        changed = list(s.blocks)[:: len(s.blocks) // 5][:5]  # 5 of 512 blocks, ~1 %
        child, new_ids = sample.change(vs, s.root, changed, edge=EDGE)
        at_p, at_c = vs.resolve(s.root), vs.resolve(child)
        grey = vs.instance(at_c, "grey")
        nodes = set(vs.tree.iter_node_ids(vs.root_at(at_c, grey))) - set(
            vs.tree.iter_node_ids(vs.root_at(at_p, grey))
        )
        commit = ObjectId(bytes.fromhex(at_c.node.commit or ""))
        need = sum(len(vs.store.get_stored(i)) for i in [*new_ids.values(), *nodes])
        wire0 = remote.stats.wire_bytes_sent
        second = transfer_version(StorePeer(vs.store), remote, child)
        wire = remote.stats.wire_bytes_sent - wire0
        print(f"incremental push: {second.summary()}")
        print(
            f"  changed blocks + new tree nodes: {need} bytes stored ({len(new_ids)} blocks, {len(nodes)} nodes);"
            f" commit {len(vs.store.get_stored(commit))} bytes; sent on the wire {wire} bytes in"
            f" {second.requests} requests"
        )
        ok = wire <= 1.1 * need
        print(
            f"{'incremental push within 1.1x of the change':<48} {wire / need:>12.3f} x        target <= 1.10x  "
            f"{'OK' if ok else 'MISSED'}"
        )

        req0, have0 = remote.stats.requests, remote.stats.have_requests
        t0 = time.perf_counter()
        noop = transfer_version(StorePeer(vs.store), remote, child)
        dt = time.perf_counter() - t0
        reqs, haves = remote.stats.requests - req0, remote.stats.have_requests - have0
        print(
            f"{'no-op push: round trips (have-checks)':<48} {reqs:>12d} ({haves})  in {dt * 1000:.1f} ms"
            f"  target 1  {'OK' if reqs == 1 and noop.objects == 0 else 'MISSED'}"
        )

    # -- gc: a full mark, then an incremental run after one more version --------------
    full = collect(vs.store, grace=0)
    more, _ = sample.change(vs, child, list(s.blocks)[7:12], edge=EDGE, seed=123)
    vs.store.put(Kind.BLOB, b"an aborted upload" * 1000)
    inc = collect(vs.store, grace=0, slack=0)
    print(f"gc full:        {full.summary()}")
    print(f"gc incremental: {inc.summary()}")


if __name__ == "__main__":
    main()
