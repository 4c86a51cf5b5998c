"""A body's label index as read from the tree: its blocks and their supervoxel counts.

A body's index is one key range (keys.index_range), so reading it costs the body's
own entries and never the rest of the volume.  ``Body`` holds the entries flat, one
row per (block, supervoxel), which is what every answer (sizes, supervoxel lists,
sparse volumes, LabelIndex protobufs) is computed from with numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.base import decode_values
from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.trees import Tree
from cas_dvid.trees.keys import BLOCK_KEY_SIZE

_INDEX_KEY = K.INDEX_KEY_DTYPE
_BIAS = np.int64(1 << 31)
assert _INDEX_KEY.itemsize == 9 + BLOCK_KEY_SIZE


@dataclass(frozen=True, slots=True)
class Body:
    """The index entries of one body.

    Attributes:
        label: the body.
        coords: (n, 3) int64 block x, y, z, in key order (z, y, x).
        keys: the n index keys, in the same order.
        block: (m,) int64 row of ``coords`` each (supervoxel, count) pair belongs to.
        svs: (m,) uint64 supervoxels.
        counts: (m,) int64 voxels of that supervoxel in that block (never 0).

    """

    label: int
    coords: NDArray[np.int64]
    keys: list[bytes]
    block: NDArray[np.int64]
    svs: NDArray[np.uint64]
    counts: NDArray[np.int64]

    @property
    def voxels(self) -> int:
        """Voxels of the body."""
        return int(self.counts.sum())

    def supervoxels(self) -> NDArray[np.uint64]:
        """Distinct supervoxels, ascending."""
        return np.unique(self.svs)

    def sv_counts(self) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
        """(supervoxels ascending, voxels of each)."""
        uniq, inverse = np.unique(self.svs, return_inverse=True)
        sums = np.zeros(len(uniq), np.int64)
        np.add.at(sums, inverse.reshape(-1), self.counts)
        return uniq, sums

    def count_of(self, sv: int) -> int:
        """Voxels of supervoxel ``sv`` in this body (0 if it has none)."""
        return int(self.counts[self.svs == np.uint64(sv)].sum())

    def only(self, sv: int) -> Body | None:
        """Return supervoxel ``sv``'s entries alone (DVID's LimitToSupervoxel); None if absent."""
        pick = self.svs == np.uint64(sv)
        if not pick.any():
            return None
        rows = np.unique(self.block[pick])
        renumber = np.full(len(self.coords), -1, np.int64)
        renumber[rows] = np.arange(len(rows))
        return Body(
            self.label,
            self.coords[rows],
            [self.keys[i] for i in rows],
            renumber[self.block[pick]],
            self.svs[pick],
            self.counts[pick],
        )

    def per_block(self) -> Iterator[tuple[tuple[int, int, int], dict[int, int]]]:
        """((x, y, z), {supervoxel: voxels}) of each block."""
        bounds = np.searchsorted(self.block, np.arange(len(self.coords) + 1))
        for i, c in enumerate(self.coords):
            a, b = bounds[i], bounds[i + 1]
            counts = dict(zip(self.svs[a:b].tolist(), self.counts[a:b].tolist(), strict=True))
            yield (int(c[0]), int(c[1]), int(c[2])), counts


def parse_index_keys(keys: Sequence[bytes]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """(bodies, (n, 3) block x, y, z) of label index keys, in one numpy pass."""
    if not keys:
        return np.zeros(0, np.uint64), np.zeros((0, 3), np.int64)
    raw = b"".join(keys)
    if len(raw) != len(keys) * _INDEX_KEY.itemsize:
        raise CorruptObjectError("a label index key has the wrong length")
    rec = np.frombuffer(raw, _INDEX_KEY)
    coords = np.column_stack([rec[a].astype(np.int64) - _BIAS for a in ("x", "y", "z")])
    return rec["body"].astype(np.uint64), coords


def make_body(store: ObjectStore, label: int, items: Sequence[tuple[bytes, bytes]]) -> Body:
    """Build a Body from its (index key, tree value) items, fetching blob values in one batch."""
    keys = [k for k, _ in items]
    _, coords = parse_index_keys(keys)
    payloads = decode_values(store, [v for _, v in items])
    lengths = []
    for p in payloads:
        if len(p) % K.PAIR.itemsize:
            raise CorruptObjectError(f"label index entry of {len(p)} bytes is not whole pairs")
        lengths.append(len(p) // K.PAIR.itemsize)
    pairs = np.frombuffer(b"".join(payloads), K.PAIR)
    block = np.repeat(np.arange(len(keys), dtype=np.int64), lengths)
    keep = pairs["n"] != 0
    return Body(
        label,
        coords,
        keys,
        block[keep],
        pairs["sv"][keep].astype(np.uint64),
        pairs["n"][keep].astype(np.int64),
    )


def read_body(tree: Tree, store: ObjectStore, root: ObjectId, label: int) -> Body | None:
    """Return the index entries of body ``label`` at ``root``; None when it has none."""
    lo, hi = K.index_range(label)
    items = list(tree.range(root, lo, hi))
    return make_body(store, label, items) if items else None


def read_body_keys(tree: Tree, root: ObjectId, label: int) -> list[bytes]:
    """Return the index keys of body ``label`` at ``root`` (values are not decoded)."""
    lo, hi = K.index_range(label)
    return [k for k, _ in tree.range(root, lo, hi)]


def body_keys_between(
    tree: Tree, root: ObjectId, first: int, last: int
) -> Iterator[tuple[int, list[bytes]]]:
    """(body, its index keys) for every indexed body from ``first`` to ``last`` inclusive."""
    if first > last:
        return
    lo = K.index_range(first)[0]
    hi = K.index_range(last)[1]
    current: int | None = None
    keys: list[bytes] = []
    for key, _ in tree.range(root, lo, hi):
        body = int.from_bytes(key[1:9], "big")
        if body != current:
            if current is not None:
                yield current, keys
            current, keys = body, []
        keys.append(key)
    if current is not None:
        yield current, keys
