"""Proofreading speed: merge and cleave of big bodies, long edit sessions, version opens.

A cube-supervoxel label volume (default 256^3 in 16^3 blocks, ~10k supervoxels) on
a file store.  Two bodies of ~1000 blocks each are made by merging their
supervoxels; then, timed (medians of repeats):

- merge of the two bodies, cleave of 100 supervoxels off the result, each next to
  the peer in the same run: reading both bodies' label index (the least any
  merge must do), so the ratio is the edit's overhead over its reads;
- 1000 sequential merges of small bodies: median of the last 100 / first 100
  (flat history = 1.0);
- opening the version (resolve + instance root + GET mutations of one record)
  before and after those 1000 edits (independent of history = 1.0).

Targets (issue 9): merge and cleave under 50 ms, both ratios near 1.  The issue's
512^3: ``--edge 512 --block 32 --cube 24`` (~10k supervoxels, bodies of ~1000 blocks).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cas_dvid.backends import open_backend
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

WHO = ModInfo(user="bench")


def cube_volume(edge: int, cube: int) -> np.ndarray:
    """Return supervoxels as cubes of ``cube`` voxels, with shuffled ids."""
    n = -(-edge // cube)
    ids = np.random.default_rng(0).permutation(n**3).astype(np.uint64) + 1
    grid = ids.reshape(n, n, n)
    vol = grid.repeat(cube, 0).repeat(cube, 1).repeat(cube, 2)
    return np.ascontiguousarray(vol[:edge, :edge, :edge])


def ms(f: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--edge", type=int, default=256)
    p.add_argument("--cube", type=int, default=12)
    p.add_argument("--session", type=int, default=1000)
    p.add_argument("--block", type=int, default=16, help="block edge (default 16)")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mut-"))
    url = f"file://{tmp}"
    init_store(url)
    versions = VersionService(ObjectStore(open_backend(url)))
    labels = LabelStore.on(versions)
    uuid = versions.create_repo()
    versions.new_instance(
        uuid, "seg", "labelmap", settings={"blocksize": ",".join([str(args.block)] * 3)}
    )
    at = versions.resolve(uuid)
    inst = at.instance("seg")
    e = args.edge
    vol = cube_volume(e, args.cube)
    t = time.perf_counter()
    labels.writer.write_raw(
        at, inst, Box3.at(Point3(0, 0, 0), Point3(e, e, e)), vol.tobytes(), "", "load"
    )
    print(f"ingest {e}^3, {len(np.unique(vol))} supervoxels: {time.perf_counter() - t:.1f} s")
    quarter = e // 4
    a_svs = sorted(set(np.unique(vol[:quarter]).tolist()))
    b_svs = sorted(set(np.unique(vol[quarter : 2 * quarter]).tolist()) - set(a_svs))
    a, b = a_svs[0], b_svs[0]
    labels.mutations.merge(at, inst, a, a_svs[1:], WHO)
    labels.mutations.merge(at, inst, b, b_svs[1:], WHO)
    root = labels.root(at, inst)
    blocks = [len(labels.index.body(root, x).coords) for x in (a, b)]  # type: ignore[union-attr]
    print(
        f"bodies of {blocks[0]} and {blocks[1]} blocks, {len(a_svs)} and {len(b_svs)} supervoxels"
    )

    def read_two() -> None:
        r = labels.root(at, inst)
        labels.index.body(r, a)
        labels.index.body(r, b)

    def merge_then_cleave() -> tuple[float, float]:
        t0 = time.perf_counter()
        labels.mutations.merge(at, inst, a, [b], WHO)
        t1 = time.perf_counter()
        new, _ = labels.mutations.cleave(at, inst, a, b_svs, WHO)  # undo: b's svs leave
        t2 = time.perf_counter()
        labels.mutations.renumber(at, inst, b, new, WHO)
        return (t1 - t0) * 1e3, (t2 - t1) * 1e3

    peer = ms(read_two)
    runs = [merge_then_cleave() for _ in range(5)]
    merge_ms = statistics.median(r[0] for r in runs)
    cleave_all_ms = statistics.median(r[1] for r in runs)
    labels.mutations.merge(at, inst, a, [b], WHO)

    def cleave100() -> float:
        t0 = time.perf_counter()
        new, _ = labels.mutations.cleave(at, inst, a, b_svs[:100], WHO)
        dt = (time.perf_counter() - t0) * 1e3
        labels.mutations.merge(at, inst, a, [new], WHO)
        return dt

    cleave_ms = statistics.median(cleave100() for _ in range(5))
    print(f"read both bodies' index (peer)      {peer:8.1f} ms")
    print(
        f"merge of the two bodies             {merge_ms:8.1f} ms  ratio {merge_ms / peer:.2f}x peer"
    )
    print(
        f"cleave of 100 supervoxels           {cleave_ms:8.1f} ms  ratio {cleave_ms / peer:.2f}x peer"
    )
    print(f"cleave of {len(b_svs)} supervoxels (undo)   {cleave_all_ms:8.1f} ms")

    def open_version() -> None:
        v = versions.resolve(uuid)
        labels.root(v, v.instance("seg"))
        labels.log.since(v, v.instance("seg"), 2**63)

    before = ms(open_version, 20)
    rest = sorted(set(np.unique(vol[2 * quarter :]).tolist()) - set(a_svs) - set(b_svs))
    pairs = list(zip(rest[0::2], rest[1::2], strict=False))[: args.session]
    # The ingest left every node of the tree in the node cache (8192 nodes); a session
    # of edits on random bodies reads cold nodes once its own new nodes have pushed
    # those out (~1100 merges here).  Start the session cold so first and last 100 are
    # measured alike: what grows is then only what grows with history.
    labels.tree.clear_cache()
    times = []
    for i, (x, y) in enumerate(pairs):
        t0 = time.perf_counter()
        labels.mutations.merge(at, inst, x, [y], WHO)
        times.append(time.perf_counter() - t0)
        if i % 100 == 0:
            print(f"\rsession {i}/{len(pairs)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    first = statistics.median(times[:100]) * 1e3
    last = statistics.median(times[-100:]) * 1e3
    after = ms(open_version, 20)
    print(
        f"{len(pairs)} sequential merges: first 100 median {first:.1f} ms, last 100 {last:.1f} ms"
        f"  ratio {last / first:.2f}x"
    )
    print(
        f"open version before {before:.2f} ms, after {len(pairs)} edits {after:.2f} ms"
        f"  ratio {after / before:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
