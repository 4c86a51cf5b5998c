"""Pinned root ids: the node encoding and chunking must never change what a root id is.

Stored trees stay readable and comparable only if the same entries keep
giving the same root id across releases; these ids were recorded before any
optimisation of build/apply and must never be updated to make a change pass.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np

from cas_dvid.objects.ids import to_hex
from cas_dvid.trees import MemoryNodeStore, Tree
from cas_dvid.trees.keys import block_keys

BUILT = "987acffbd3cc9c77d9a5491dfad651ce8c8897ffcf292aa20ef2ab17e03fda8b"
APPLIED = "2b7a5ef6cd5e43554dacaa2e3e4056e111d742e73d14994e37b4799c83a2454b"
MIXED = "3dd518a4f4ce81ac5427b3c266b7a05c6883c28c6f1ff2d6ceaeeda2eee819f6"
VARIABLE = "e5541fbd8c7da790943b55cc8d911714729968885c5e8d8547fa4e14cb9071d9"


def val(i: int, n: int = 32) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "big")).digest()[:n]


def test_root_ids_are_pinned() -> None:
    g = np.arange(30) - 15
    zyx = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    keys = block_keys(0, zyx)
    tree = Tree(MemoryNodeStore())
    r1 = tree.build([(k, val(i)) for i, k in enumerate(keys)])
    assert (to_hex(r1), tree.height(r1)) == (BUILT, 3)

    rnd = random.Random(5)
    upd = {k: val(10**6 + i) for i, k in enumerate(rnd.sample(keys, 300))}
    far = [
        (rnd.randrange(-20, 20), rnd.randrange(-20, 20), 20 + rnd.randrange(50)) for _ in range(300)
    ]
    ins = {k: val(2 * 10**6 + i) for i, k in enumerate(block_keys(0, far))}
    dels = [k for k in rnd.sample(keys, 200) if k not in upd]
    r2 = tree.apply(r1, {**upd, **ins}, dels)
    assert to_hex(r2) == APPLIED
    # One short value turns its leaf from the FIXED to the VARIABLE layout.
    r3 = tree.apply(r2, {keys[5]: b"short"})
    assert to_hex(r3) == MIXED
    assert to_hex(tree.apply(r3, {keys[5]: val(10**6 - 1)})) != MIXED

    entries = {f"key/{i * 7919 % 100003}".encode(): val(i, i % 40) for i in range(5000)}
    r4 = tree.build(sorted(entries.items()))
    assert (to_hex(r4), tree.height(r4)) == (VARIABLE, 3)
    # The same entries reached by applies, in shuffled batches, give the same root.
    items = list(entries.items())
    rnd.shuffle(items)
    root = tree.build(sorted(items[:1000]))
    for i in range(1000, 5000, 700):
        root = tree.apply(root, dict(items[i : i + 700]))
    assert to_hex(root) == VARIABLE
