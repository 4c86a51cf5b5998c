"""One Tree shared by request threads: a small cache thrashed by 8 threads, every answer right."""

from __future__ import annotations

import random
import sys
import threading

from cas_dvid.trees import MemoryNodeStore, Tree


def test_eight_threads_reading_and_writing_one_tree() -> None:
    tree = Tree(MemoryNodeStore(), cache_nodes=32)  # far fewer than the nodes: constant eviction
    model = {f"k{i:06d}".encode(): f"v{i}".encode() * 5 for i in range(20_000)}
    root = tree.build(sorted(model.items()))
    errors: list[str] = []

    def reader(seed: int) -> None:
        try:
            read(seed)
        except Exception as exc:  # noqa: BLE001 - a race shows as any exception
            errors.append(f"reader {seed}: {exc!r}")

    def read(seed: int) -> None:
        rng = random.Random(seed)
        keys = list(model)
        for _ in range(400):
            k = rng.choice(keys)
            if tree.get(root, k) != model[k]:
                errors.append(f"get {k!r}")
            a = rng.randrange(len(keys) - 50)
            got = list(tree.range(root, keys[a], keys[a + 50]))
            if got != [(x, model[x]) for x in keys[a : a + 50]]:
                errors.append(f"range at {a}")

    def writer(seed: int) -> None:
        try:
            write(seed)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"writer {seed}: {exc!r}")

    def write(seed: int) -> None:
        rng = random.Random(seed)
        mine = dict(model)
        r = root
        for i in range(60):
            k = f"k{rng.randrange(20_000):06d}".encode()
            v = f"w{seed}-{i}".encode()
            r = tree.apply(r, [(k, v)])
            mine[k] = v
        for k in rng.sample(list(mine), 300):
            if tree.get(r, k) != mine[k]:
                errors.append(f"writer {seed} lost {k!r}")

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads between almost every bytecode: races show
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(6)]
    threads += [threading.Thread(target=writer, args=(100 + i,)) for i in range(2)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
