"""Benchmark cas_dvid.trees against a plain dict doing the same work in the same run.

Prints each figure, its target, and the ratio tree time / dict time (so runs on
different machines compare). Exits 0; a missed target is reported, not fatal.

    .venv/bin/python tools/bench_trees.py [--n 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from cas_dvid.trees import MemoryNodeStore, Tree
from cas_dvid.trees.keys import block_keys


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls (after one warm-up call), and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def make_items(n: int, seed: int) -> list[tuple[bytes, bytes]]:
    """n sorted block keys of a cube around the origin (negatives included), 32-byte values."""
    side = round(n ** (1 / 3))
    g = np.arange(side) - side // 2
    zyx = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)[:n]
    keys = block_keys(0, zyx)
    raw = np.random.default_rng(seed).bytes(32 * len(keys))
    return [(k, raw[32 * i : 32 * i + 32]) for i, k in enumerate(keys)]


def report(name: str, tree_s: float, dict_s: float, figure: str, target: str, ok: bool) -> None:
    ratio = tree_s / dict_s if dict_s else float("inf")
    mark = "ok" if ok else "MISSED"
    print(
        f"{name:<34} {figure:>22}   tree {tree_s * 1e3:9.2f} ms   dict {dict_s * 1e3:8.2f} ms"
        f"   tree/dict {ratio:8.2f}   target {target} [{mark}]"
    )


def bench(n: int, repeat: int, seed: int) -> None:
    rnd = random.Random(seed)
    items = make_items(n, seed)
    n = len(items)
    print(f"{n:,} block keys (13 B) -> 32 B values; medians of {repeat} runs\n")

    t_build, (store, root) = timed(lambda: _build(items), max(1, repeat // 2))
    d_build, model = timed(lambda: dict(items), repeat)
    rate = n / t_build
    report(
        "build, one sorted batch",
        t_build,
        d_build,
        f"{rate:,.0f} entries/s",
        ">= 200,000/s",
        rate >= 200_000,
    )

    tree = Tree(store)
    present = [k for k, _ in items]
    side = round(n ** (1 / 3))
    half = side // 2
    new_keys = block_keys(
        0,
        [
            (rnd.randrange(-half, half), rnd.randrange(-half, half), half + rnd.randrange(1000))
            for _ in range(500)
        ],
    )
    puts = {k: rnd.randbytes(32) for k in rnd.sample(present, 500) + new_keys}

    def apply_cold() -> Any:
        tree.clear_cache()
        return tree.apply(root, puts)

    t_apply, root2 = timed(apply_cold, repeat)
    t_apply_warm, _ = timed(lambda: tree.apply(root, puts), repeat)
    d_apply, _ = timed(lambda: model.update(puts), repeat)
    report(
        "apply 1,000 puts (cold cache)",
        t_apply,
        d_apply,
        f"{t_apply * 1e3:.1f} ms",
        "< 50 ms",
        t_apply < 0.05,
    )
    report(
        "apply 1,000 puts (warm cache)",
        t_apply_warm,
        d_apply,
        f"{t_apply_warm * 1e3:.1f} ms",
        "< 50 ms",
        t_apply_warm < 0.05,
    )

    model2 = dict(model)
    model = dict(items)
    t_diff, changes = timed(lambda: list(tree.diff(root, root2)), repeat)
    d_diff, dchanges = timed(lambda: _dict_diff(model, model2), repeat)
    assert len(changes) == len(dchanges) == len(puts), (len(changes), len(dchanges))
    report(
        "diff after the apply", t_diff, d_diff, f"{t_diff * 1e3:.1f} ms", "< 20 ms", t_diff < 0.02
    )

    lookups = rnd.sample(present, 1000)
    t_get, found = timed(lambda: tree.get_many(root, lookups), repeat)
    d_get, _ = timed(lambda: [model.get(k) for k in lookups], repeat)
    assert len(found) == 1000
    rate = 1000 / t_get
    report(
        "get_many 1,000 random (cached)",
        t_get,
        d_get,
        f"{rate:,.0f} lookups/s",
        ">= 100,000/s",
        rate >= 100_000,
    )
    print(f"\ntree height {tree.height(root)}, {len(store.nodes):,} nodes in the store")


def _build(items: list[tuple[bytes, bytes]]) -> tuple[MemoryNodeStore, Any]:
    store = MemoryNodeStore()
    return store, Tree(store).build(items)


def _dict_diff(a: dict[bytes, bytes], b: dict[bytes, bytes]) -> list[tuple[bytes, Any, Any]]:
    out: list[tuple[bytes, Any, Any]] = [(k, a.get(k), v) for k, v in b.items() if a.get(k) != v]
    out += [(k, v, None) for k, v in a.items() if k not in b]
    out.sort()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    bench(args.n, args.repeat, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
