"""Content-defined node boundaries: which keys end a node, at which tree level.

A key's boundary hash is ``fmix32(crc32(key))``: crc32 is fast in C (~80 ns a
key) but linear, so structured keys (block coordinates counting up) give it a
visibly non-random top; murmur3's 32-bit finalizer spreads every input bit
over the top bits, which is what the threshold test reads. Python's ``hash()``
is salted per process and must never be used here.

A key ends a node at level ``L`` when its hash is below ``2**32 >> (6*(L+1))``:
the thresholds nest, so a key that ends a level-``L+1`` node also ends one at
every level below, and each level's nodes hold 64 entries on average
(geometric sizes). From level 5 on the threshold is 0: that level never splits,
which bounds the height and guarantees that building up always stops.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

FANOUT_BITS = 6
"""log2 of the mean number of entries per node (64)."""

_MASK = 0xFFFFFFFF
MAX_SPLIT_LEVEL = 32 // FANOUT_BITS  # 5: levels at or above never split
THRESHOLDS: tuple[int, ...] = tuple(
    (1 << 32) >> (FANOUT_BITS * (level + 1)) for level in range(MAX_SPLIT_LEVEL)
)
"""``THRESHOLDS[L]``: a key whose hash is below it ends a level-``L`` node."""


def key_hash(key: bytes) -> int:
    """Return the boundary hash of one key (the same in every process and machine)."""
    h = zlib.crc32(key)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


def key_hashes(keys: Sequence[bytes]) -> npt.NDArray[np.uint32]:
    """Vectorised ``key_hash`` over many keys; equal to it element by element."""
    h = np.fromiter(map(zlib.crc32, keys), dtype=np.uint32, count=len(keys))
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


_SMALL = 24  # PERF: below this many keys a Python loop beats numpy (~15 us a call).


def key_hash_list(keys: Sequence[bytes]) -> list[int]:
    """``key_hash`` of each key, as a list, by whichever way is faster for this many keys."""
    if len(keys) < _SMALL:
        return [key_hash(k) for k in keys]
    hashes: list[int] = key_hashes(keys).tolist()
    return hashes


def threshold(level: int) -> int:
    """Hash threshold of ``level`` (0 from ``MAX_SPLIT_LEVEL`` on: no boundaries)."""
    return THRESHOLDS[level] if level < MAX_SPLIT_LEVEL else 0


def is_boundary(key: bytes, level: int) -> bool:
    """Tell whether ``key`` ends its node at ``level`` (the level's last node may end without)."""
    return key_hash(key) < threshold(level)


def chunk_ends(hashes: npt.NDArray[np.uint32], level: int) -> list[int]:
    """Exclusive end offsets of the nodes that split a level whose keys have ``hashes``.

    The last node always ends at ``len(hashes)``, boundary or not.
    """
    n = len(hashes)
    ends = (np.flatnonzero(hashes < threshold(level)) + 1).tolist()
    if not ends or ends[-1] != n:
        ends.append(n)
    return ends
