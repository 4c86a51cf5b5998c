"""Label blocks as DVID streams them: GET blocks and specificblocks, every ``compression``.

Payloads per ``compression`` (labelmap/read.go):

- ``blocks``: gzip of DVID's label Block serialization.  With no mapping to apply
  (``supervoxels=true``, or labelarray/labelblk) the stored Block goes out as it is;
  otherwise the Block's label table is mapped to bodies (the voxel data is untouched).
- ``lz4``: LZ4 block of the block's uint64 array, no size prefix (``/blocks``' default).
- ``gzip``: gzip of that array.  ``uncompressed``: the array.

Missing blocks are left out, as DVID does.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import lz4.block
import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.geometry import Box3
from cas_dvid.datatypes.labelmap.codec import BlockParts, decode_block
from cas_dvid.datatypes.labelmap.layout import LabelLayout, layout_of
from cas_dvid.datatypes.partial import require_blocks, require_covered
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import At, Instance

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.store import LabelStore

Coord = tuple[int, int, int]
Record = tuple[Coord, bytes]
BLOCKS_DEFAULT = "lz4"
SPECIFIC_DEFAULT = "blocks"
MODES = ("blocks", "lz4", "gzip", "uncompressed")


def gzip_bytes(data: bytes | memoryview) -> bytes:
    """Return a gzip member of ``data`` at level 1 (what clients gunzip; speed over size)."""
    c = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def with_labels(stored: bytes | memoryview, parts: BlockParts) -> bytes:
    """Return the stored Block with its label table replaced by ``parts.labels`` (same length)."""
    raw = bytes(stored)
    n = len(parts.labels)
    table = np.ascontiguousarray(parts.labels, dtype="<u8").tobytes()
    return raw[:16] + table + raw[16 + 8 * n :]


class BlockStreams:
    """The block streams of one LabelStore."""

    def __init__(self, labels: LabelStore) -> None:
        self.labels = labels

    def records_in_box(
        self, at: At, inst: Instance, box: Box3, mode: str, *, scale: int, supervoxels: bool
    ) -> list[Record]:
        """GET blocks/{size}/{offset}: the stored blocks of a block-aligned box."""
        lay = layout_of(inst)
        self.labels.check_scale(lay, scale)
        if not box.aligned(lay.block):
            raise InvalidInputError(
                "cannot use labels via 'blocks' endpoint in non-block aligned geometry "
                f"{box.text()}"
            )
        self.labels.check_voxel_bytes(box.voxels * 8)
        if scale == 0:
            require_covered(at, inst, lay.spatial, box)
        first, last = box.blocks(lay.block)
        root = self.labels.root(at, inst)
        stored = self.labels.block_values_in(root, lay, first, last, scale)
        return self._payloads(at, inst, lay, stored, mode, supervoxels)

    def records_of(
        self,
        at: At,
        inst: Instance,
        coords: Sequence[Coord],
        mode: str,
        *,
        scale: int,
        supervoxels: bool,
    ) -> list[Record]:
        """GET specificblocks: the stored blocks among ``coords``."""
        lay = layout_of(inst)
        self.labels.check_scale(lay, scale)
        self.labels.check_voxel_bytes(len(coords) * lay.block_voxels * 8)
        if scale == 0:
            require_blocks(at, inst, lay.spatial, coords)
        root = self.labels.root(at, inst)
        stored = self.labels.block_values(root, list(dict.fromkeys(coords)), scale)
        return self._payloads(at, inst, lay, stored, mode, supervoxels)

    def _payloads(
        self,
        at: At,
        inst: Instance,
        lay: LabelLayout,
        stored: dict[Coord, bytes],
        mode: str,
        supervoxels: bool,
    ) -> list[Record]:
        mode = mode.lower()
        if mode not in MODES:
            raise InvalidInputError(
                f"unknown compression {mode!r}: use blocks, lz4, gzip or uncompressed"
            )
        coords = list(stored)
        blobs = self.labels.blobs([stored[c] for c in coords])
        passthrough = supervoxels or not lay.mapped
        if mode == "blocks" and passthrough:
            return list(zip(coords, self.labels.store.map(gzip_bytes, blobs), strict=True))
        parts = [self.labels.parts_of(lay, b) for b in blobs]
        root = self.labels.root(at, inst)
        parts = self.labels.mapped_parts(root, lay, parts, supervoxels)
        if mode == "blocks":
            pairs = list(zip(blobs, parts, strict=True))
            return list(
                zip(
                    coords,
                    self.labels.store.map(lambda bp: gzip_bytes(with_labels(*bp)), pairs),
                    strict=True,
                )
            )
        encode = _array_encoder(mode)
        return list(
            zip(
                coords, self.labels.store.map(lambda p: encode(decode_block(p)), parts), strict=True
            )
        )


def _array_encoder(mode: str) -> Callable[[NDArray[np.uint64]], bytes]:
    def encode(arr: NDArray[np.uint64]) -> bytes:
        raw = np.ascontiguousarray(arr, dtype="<u8").tobytes()
        if mode == "lz4":
            return bytes(lz4.block.compress(raw, store_size=False))
        if mode == "gzip":
            return gzip_bytes(raw)
        return raw

    return encode
