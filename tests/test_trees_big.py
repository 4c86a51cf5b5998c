"""One million entries: round trip, and a diff whose node loads follow the change, not the size."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cas_dvid.trees import MemoryNodeStore, Tree
from cas_dvid.trees.keys import block_key, block_keys, box_ranges, parse_block_key

N_SIDE = 100  # 100^3 = 1,000,000 blocks, coordinates -50..49

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big() -> tuple[MemoryNodeStore, Tree, bytes, list[tuple[bytes, bytes]]]:
    g = np.arange(N_SIDE) - N_SIDE // 2
    zyx = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    keys = block_keys(0, zyx)
    raw = np.random.default_rng(7).bytes(32 * len(keys))
    items = [(k, raw[32 * i : 32 * i + 32]) for i, k in enumerate(keys)]
    store = MemoryNodeStore()
    tree = Tree(store)
    return store, tree, tree.build(items), items


def test_million_keys_round_trip(big: tuple[MemoryNodeStore, Tree, bytes, list]) -> None:  # type: ignore[type-arg]
    _, tree, root, items = big
    assert tree.count(root) == len(items) == 1_000_000
    assert tree.height(root) == 4
    assert list(tree.range(root)) == items
    rnd = random.Random(1)
    sample = rnd.sample(items, 2000)
    assert all(tree.get(root, k) == v for k, v in sample[:200])
    absent = [block_key(0, 0, 0, 50 + i) for i in range(100)]
    assert tree.get_many(root, [k for k, _ in sample] + absent) == dict(sample)
    ranges = box_ranges(0, (-3, 10, -50), (2, 12, -40))
    got = [
        parse_block_key(k) for a, b in ranges for k, _ in tree.range(root, a, b, end_inclusive=True)
    ]
    assert len(got) == 6 * 3 * 11
    assert got == sorted(got)


def test_diff_loads_follow_the_change(big: tuple[MemoryNodeStore, Tree, bytes, list]) -> None:  # type: ignore[type-arg]
    store, tree, root, items = big
    rnd = random.Random(2)
    picked = rnd.sample(items, 70)
    updates = {k: bytes(32) for k, _ in picked[:40]}
    deletes = [k for k, _ in picked[40:]]
    inserts = {
        block_key(0, rnd.randrange(-50, 50), rnd.randrange(-50, 50), 60 + i): b"new"
        for i in range(30)
    }
    root2 = tree.apply(root, {**updates, **inserts}, deletes)

    model = dict(items)
    before = dict(model)
    model.update(updates)
    model.update(inserts)
    for k in deletes:
        del model[k]
    want = sorted((k, before.get(k), model.get(k)) for k in [*updates, *inserts, *deletes])
    assert len(want) == 100

    cold = Tree(store)  # nothing cached: every node the diff reads is a counted load
    store.loads = 0
    assert list(cold.diff(root, root2)) == want
    loads = store.loads
    height = tree.height(root)
    # Each change can cost one node per level on each side; equal subtrees cost nothing.
    print(f"diff of 100 changes in 1M entries loaded {loads} nodes (height {height})")
    assert loads <= 100 * height * 2, loads
    cold.clear_cache()
    store.loads = 0
    assert list(cold.diff(root2, root)) == [(k, new, old) for k, old, new in want]
    assert store.loads == loads
    # History independence at scale: a fresh build of the final entries is the same root.
    assert Tree(MemoryNodeStore()).build(sorted(model.items())) == root2
