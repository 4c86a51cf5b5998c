"""Version DAG operations as the DAG grows, and UUID prefix resolution as repos multiply.

Prints the cost of a commit + newversion pair at 10, 100, 1,000 and 10,000 versions
(medians of interleaved samples, ratio to the cost at 10; target <= 1.5x), and of
resolving a 6-character UUID prefix with 1, 100 and 1,000 repos in the store.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

SIZES = (10, 100, 1000, 10000)


def service(path: Path) -> VersionService:
    backend, _ = init_store(f"file://{path}")
    return VersionService(ObjectStore(backend))


def grow(vs: VersionService, uuid: str, n: int) -> str:
    """Add ``n`` commit + newversion pairs after ``uuid``; return the open leaf."""
    for _ in range(n):
        vs.commit(uuid)
        uuid = vs.new_child(uuid)
    return uuid


def dag(work: Path, sizes: tuple[int, ...], samples: int) -> None:
    """One repo per size in one store; pairs timed round-robin, so drift hits all alike."""
    vs = service(work / "dag")
    leaves = {}
    for n in sizes:
        root = vs.create_repo(f"dag{n}")
        vs.new_instance(root, "kv", "keyvalue")
        leaves[n] = grow(vs, root, n)
    times: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(samples):
        for n in sizes:
            t0 = time.perf_counter()
            vs.commit(leaves[n])
            leaves[n] = vs.new_child(leaves[n])
            times[n].append((time.perf_counter() - t0) * 1000)
    base = statistics.median(times[sizes[0]])
    print(f"{'versions':>10} {'commit+newversion':>18} {'ratio to ' + str(sizes[0]):>12}")
    for n in sizes:
        ms = statistics.median(times[n])
        ok = "OK" if ms / base <= 1.5 else "MISSED"
        print(f"{n:>10} {ms:>15.2f} ms {ms / base:>11.2f}x  target <= 1.5x  {ok}")
    at = vs.resolve(leaves[sizes[-1]])
    t0 = time.perf_counter()
    count = len(at.repo.all_nodes())
    print(f"repo info (whole DAG) of {count} versions: {(time.perf_counter() - t0) * 1000:.0f} ms")


def prefixes(work: Path, counts: tuple[int, ...], samples: int) -> None:
    vs = service(work / "repos")
    roots: list[str] = []
    base = None
    print(f"{'repos':>10} {'resolve 6-char prefix':>22} {'ratio to 1':>11}")
    for n in counts:
        while len(roots) < n:
            roots.append(vs.create_repo())
        fresh = VersionService(vs.store)  # no in-process UUID cache: each read is a lookup
        spec = roots[0][:6]
        times = []
        for _ in range(samples):
            t0 = time.perf_counter()
            fresh.resolve(spec)
            times.append((time.perf_counter() - t0) * 1000)
            fresh = VersionService(vs.store)
        ms = statistics.median(times)
        base = base or ms
        print(f"{n:>10} {ms:>19.2f} ms {ms / base:>10.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--max", type=int, default=SIZES[-1], help="largest DAG (default 10000)")
    p.add_argument("--samples", type=int, default=31)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-dag-", dir="/dev/shm"))
    try:
        dag(work, tuple(n for n in SIZES if n <= args.max), args.samples)
        prefixes(work, (1, 100, 1000), args.samples)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
