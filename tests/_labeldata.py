"""Label blocks for the label kernel tests: DVID's fixtures and generated volumes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

FIXTURES = Path(__file__).parent / "fixtures" / "labels"
MAX_U64 = np.uint64(2**64 - 1)


def fixture_array(name: str) -> NDArray[np.uint64]:
    raw = gzip.decompress((FIXTURES / name).read_bytes())
    return np.frombuffer(raw, "<u8").reshape(64, 64, 64).astype(np.uint64)


def fixture_block(name: str = "fib19-64x64x64-sample1-block.dat.gz") -> bytes:
    return gzip.decompress((FIXTURES / name).read_bytes())


def stream_block() -> bytes:
    """The gzip(Block) payload of stream_1block.dat's one record."""
    data = (FIXTURES / "stream_1block.dat").read_bytes()
    n = int.from_bytes(data[12:16], "little")
    return gzip.decompress(data[16 : 16 + n])


def voronoi(shape: tuple[int, int, int], nseeds: int, seed: int) -> NDArray[np.uint64]:
    """Each voxel takes the label of its nearest seed: segmentation-like blocks.

    One jittered seed per cell of a coarse grid (about ``nseeds`` cells), so the
    nearest seed is among the 27 neighbouring cells.
    """
    rng = np.random.default_rng(seed)
    side = max(1.0, nseeds ** (1 / 3))
    cells = np.array([max(1, round(side * n / max(shape))) for n in shape])
    size = np.array(shape) / cells
    grid = np.indices(tuple(int(c) for c in cells)).transpose(1, 2, 3, 0)
    seeds = (grid + rng.uniform(0, 1, (*cells, 3))) * size
    labels = (rng.choice(2**40, int(cells.prod()), replace=False) + 1).astype(np.uint64)
    labels = labels.reshape(tuple(cells))
    p = np.indices(shape).transpose(1, 2, 3, 0).reshape(-1, 3) + 0.5
    home = np.minimum((p // size).astype(np.int64), cells - 1)
    best = np.zeros(len(p), np.uint64)
    dist = np.full(len(p), np.inf)
    for d in np.indices((3, 3, 3)).reshape(3, -1).T - 1:
        c = home + d
        ok = ((c >= 0) & (c < cells)).all(axis=1)
        c = np.clip(c, 0, cells - 1)
        q = seeds[c[:, 0], c[:, 1], c[:, 2]]
        dd = np.where(ok, ((p - q) ** 2).sum(axis=1), np.inf)
        closer = dd < dist
        best[closer] = labels[c[closer, 0], c[closer, 1], c[closer, 2]]
        dist[closer] = dd[closer]
    return best.reshape(shape)


def random_labels(
    shape: tuple[int, int, int], pool: NDArray[np.uint64], seed: int
) -> NDArray[np.uint64]:
    rng = np.random.default_rng(seed)
    return pool[rng.integers(0, len(pool), shape)]


def distinct_labels(n: int, seed: int, extremes: bool = False) -> NDArray[np.uint64]:
    rng = np.random.default_rng(seed)
    pool = np.unique(rng.integers(1, 2**63, n + 16, dtype=np.uint64) * np.uint64(2))[:n]
    if extremes and n >= 2:
        pool[0], pool[-1] = 0, MAX_U64
    return pool.astype(np.uint64)
