"""Voxels per label in one block, for the label index (DVID's Block.CalcNumLabels)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap import _codec_kernels as k
from cas_dvid.datatypes.labelmap.codec import BlockParts, Buffer, check_volume, parse_block
from cas_dvid.errors import InvalidInputError

Counts = tuple[NDArray[np.uint64], NDArray[np.int64]]


def _sorted(labels: NDArray[np.uint64], counts: NDArray[np.int64]) -> Counts:
    order = np.argsort(labels, kind="stable")
    return labels[order], counts[order]


def label_counts(vol: NDArray[np.uint64]) -> Counts:
    """Count voxels per label of a (z, y, x) uint64 block array: (labels ascending, counts).

    Label 0 is counted like any other; DVID's label index leaves it out, so drop it
    there. Sides must be multiples of 8 (the sub-block walk the encoder uses).
    """
    flat, shape = check_volume(vol)
    if k.is_solid(flat):
        return flat[:1].copy(), np.array([flat.size], np.int64)
    local, local_counts, _, _, total = k.subblock_tables(flat, *shape)
    labels, indices = k.block_table(local, total)
    counts = np.zeros(len(labels), np.int64)
    np.add.at(counts, indices, local_counts[:total])
    return _sorted(labels, counts)


def block_label_counts(data: Buffer | BlockParts) -> Counts:
    """Count voxels per label of a serialized Block, read from its packed values.

    No uint64 voxel is materialised: one-label sub-blocks count 512 at once, others
    are tallied from their b-bit values. Duplicate table entries (DVID leaves them
    after merges) are summed; entries no voxel uses are dropped.

    Raises:
        InvalidInputError: as codec.parse_block, or a value beyond its sub-block list.

    """
    parts = data if isinstance(data, BlockParts) else parse_block(data)
    nvox = parts.shape[0] * parts.shape[1] * parts.shape[2]
    if parts.solid:
        return parts.labels.copy(), np.array([nvox], np.int64)
    per_entry, zeros, bad = k.encoded_counts(
        parts.ns, parts.indices, len(parts.labels), parts.values
    )
    if bad >= 0:
        raise InvalidInputError(
            f"label Block sub-block {bad} has a voxel value beyond its "
            f"{int(parts.ns[bad])}-label list"
        )
    labels = np.append(parts.labels, np.uint64(0))
    per_entry = np.append(per_entry, np.int64(zeros))
    uniq, inverse = np.unique(labels, return_inverse=True)
    counts = np.zeros(len(uniq), np.int64)
    np.add.at(counts, inverse, per_entry)
    keep = counts > 0
    return uniq[keep], counts[keep]
