"""Neuroglancer compressed_segmentation for GET raw ``compression=google|googlegzip``.

What DVID returns (labelmap/compression.go compressGoogle): the whole requested
subvolume, whose sides must be multiples of 8, as one single-channel
compressed_segmentation stream with 8x8x8 blocks and uint64 labels::

    u32 1                         channel 0's data starts 1 word (4 bytes) in
    per 8x8x8 block, z, y, x order (x fastest), 2 x u32:
        table offset (24 bits) | encoded bits << 24, values offset
                                  both in u32 words from the start of channel data
    then per block its packed values (0, 1, 2, 4, 8 or 16 bits, LSB first in each
    u32 word, voxels x fastest) and its table of u64 labels

``googlegzip`` is the same bytes gzipped, sent with ``Content-encoding: gzip``.

The bytes here come from the ``compressed-segmentation`` package (the neuroglancer
encoder), not from DVID's own loop: the layout is the same, but the package sorts
each block's table and shares equal tables between blocks, where DVID lists labels in
order of appearance and repeats tables. Both decode to the same labels in any
neuroglancer-compatible reader.
"""

from __future__ import annotations

import compressed_segmentation as cseg
import numpy as np
from numpy.typing import NDArray

from cas_dvid.errors import InvalidInputError


def encode_google(vol: NDArray[np.uint64]) -> bytes:
    """Encode a (z, y, x) uint64 volume (sides multiples of 8) as compressed_segmentation.

    Raises:
        InvalidInputError: not a 3-d uint64 array, or a side not a multiple of 8 (DVID:
            "volume must be a multiple of the block size").

    """
    if not isinstance(vol, np.ndarray) or vol.dtype.kind != "u" or vol.dtype.itemsize != 8:
        got = vol.dtype if isinstance(vol, np.ndarray) else type(vol).__name__
        raise InvalidInputError(f"google compression needs a uint64 volume; got {got}")
    if vol.ndim != 3 or any(n % 8 or n == 0 for n in vol.shape):
        raise InvalidInputError(
            f"volume must be a multiple of the block size (8 voxels per side); "
            f"got {vol.shape[::-1]} (x, y, z)"
        )
    # The package indexes arrays as [x, y, z]; our C-order [z, y, x] transposed is that
    # array in Fortran order, without a copy.
    xyz = np.ascontiguousarray(vol, dtype=np.uint64).T
    return bytes(cseg.compress(xyz, block_size=(8, 8, 8), order="F"))


def decode_google(data: bytes, shape: tuple[int, int, int]) -> NDArray[np.uint64]:
    """Decode :func:`encode_google` bytes to the (z, y, x) volume of ``shape`` (tests, tools)."""
    xyz = cseg.decompress(data, shape[::-1], np.uint64, block_size=(8, 8, 8), order="F")
    return np.ascontiguousarray(np.asarray(xyz).T)
