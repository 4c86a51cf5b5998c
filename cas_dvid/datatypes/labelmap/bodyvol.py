"""Sparse volumes of bodies: sparsevol (rles, srles, blocks), sparsevol-size, the coarse ones.

The blocks come from the body's own index entries (one key range), so a sparse
volume reads that body's index and blocks and nothing else (DVID's
constrainLabelIndex, labelidx.go):

- at ``scale=N`` block coordinates are shifted right by N and merged; blocks the
  lower resolution does not hold are skipped (DVID: "body can exist but have no
  data if scale is too low-res");
- bounds screen blocks by the voxel bounds divided by the block size (sparsevol.py),
  then, with ``exact`` (the default), clip the runs; a body with no block left is a
  404;
- ``compression`` (lz4 with no size prefix, gzip) applies to ``rles`` only, as in
  DVID; ``srles`` and ``blocks`` ignore it.

Each stored Block is tested on its label table, not per voxel: the table is replaced
by 1 for the body's supervoxels and 0 for the rest, then decoded, so the run and mask
kernels see a 0/1 volume.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lz4.block
import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap.bodyentries import Body, body_keys_between, parse_index_keys
from cas_dvid.datatypes.labelmap.codec import BlockParts, decode_block
from cas_dvid.datatypes.labelmap.layout import LabelLayout, layout_of
from cas_dvid.datatypes.labelmap.rle import encode_rles, encode_srles
from cas_dvid.datatypes.labelmap.sparsevol import (
    Bounds,
    LabelBlock,
    block_voxel_extent,
    encode_binary_blocks,
    encode_sparsevol_coarse,
    encode_sparsevols_coarse_entry,
    fit_blocks,
    scale_blocks,
)
from cas_dvid.datatypes.partial import OutsideRegionError, partial_region
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.versions import At, Instance

if TYPE_CHECKING:
    from cas_dvid.datatypes.labelmap.bodies import BodyIndex

FORMATS = ("rles", "srles", "blocks")
COMPRESSIONS = ("", "lz4", "gzip")
CHUNK_BLOCKS = 32
"""Blocks fetched and decoded per batch: enough to keep the pool busy, few MB of voxels."""
_ONE = np.array([1], np.uint64)


@dataclass(frozen=True, slots=True)
class SparseQuery:
    """The options of GET sparsevol (DVID's query string, parsed)."""

    format: str = "rles"
    bounds: Bounds = Bounds()
    exact: bool = True
    scale: int = 0
    compression: str = ""
    supervoxels: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidInputError(
                f"unknown sparsevol format {self.format!r}: use rles, srles or blocks"
            )
        if self.compression not in COMPRESSIONS:
            raise InvalidInputError(f"unknown compression type {self.compression!r}")
        if not 0 <= self.scale < 32:
            raise InvalidInputError(f"bad scale specified: {self.scale} is not 0 to 31")


@dataclass(frozen=True, slots=True)
class SparseVol:
    """A sparse volume ready to send: ``chunks`` yields the body; nothing is read before."""

    chunks: Iterator[bytes]


class BodyVolumes:
    """Sparse volumes of bodies, for a BodyIndex."""

    def __init__(self, index: BodyIndex) -> None:
        self.index = index
        self.labels = index.labels

    # -- which blocks -----------------------------------------------------------------

    def _blocks(self, lay: LabelLayout, body: Body, q: SparseQuery) -> NDArray[np.int64]:
        """Blocks at the query's scale within its bounds, in (z, y, x) order."""
        coords = scale_blocks(body.coords, q.scale)
        if q.bounds.is_set():
            coords = fit_blocks(coords, q.bounds.divide(lay.block_shape))
        return coords

    def _check_region(self, at: At, inst: Instance, lay: LabelLayout, body: Body) -> None:
        """Refuse a body reaching outside what a partial (box-pulled) version holds."""
        uuid = at.uuid if inst.versioned else at.repo.root
        region = partial_region(at.repo, uuid, inst, lay.spatial)
        if region is None:
            return
        for x, y, z in body.coords.tolist():
            if not region.has_block(x, y, z):
                raise OutsideRegionError(
                    f"data {inst.name!r} at version {at.uuid} was pulled partially (region "
                    f"{region.text()}); body {body.label} reaches block {x}_{y}_{z} outside it"
                )

    def exists(self, at: At, inst: Instance, label: int, q: SparseQuery) -> bool:
        """HEAD sparsevol: whether the label has blocks within the bounds (block-aligned)."""
        lay = layout_of(inst)
        root = self.labels.root(at, inst)
        body = self.index.resolve(root, inst, label, q.supervoxels)
        return body is not None and len(self._blocks(lay, body, q)) > 0

    # -- sparsevol ----------------------------------------------------------------------

    def sparsevol(self, at: At, inst: Instance, label: int, q: SparseQuery) -> SparseVol | None:
        """GET sparsevol/{label}: the encoded volume; None (a 404) when nothing is in bounds."""
        lay = layout_of(inst)
        root = self.labels.root(at, inst)
        body = self.index.resolve(root, inst, label, q.supervoxels)
        if body is None:
            return None
        coords = self._blocks(lay, body, q)
        if not len(coords):
            return None
        self._check_region(at, inst, lay, body)
        members = body.supervoxels()
        blocks = self._stream(root, lay, coords, q.scale, members)
        bounds = q.bounds if q.exact and q.bounds.is_set() else None
        if q.format == "srles":
            return SparseVol(encode_srles(blocks, _ONE, bounds))
        if q.format == "blocks":
            return SparseVol(encode_binary_blocks(blocks, label, _ONE))
        data = encode_rles(blocks, _ONE, bounds)
        return SparseVol(iter([compress(data, q.compression)]))

    def _stream(
        self,
        root: ObjectId,
        lay: LabelLayout,
        coords: NDArray[np.int64],
        scale: int,
        members: NDArray[np.uint64],
    ) -> Iterator[LabelBlock]:
        """Yield (coord, 0/1 volume) of the stored blocks among ``coords``, in order."""
        wanted = [(int(c[0]), int(c[1]), int(c[2])) for c in coords]
        for i in range(0, len(wanted), CHUNK_BLOCKS):
            chunk = wanted[i : i + CHUNK_BLOCKS]
            stored = self.labels.block_values(root, chunk, scale)
            present = [c for c in chunk if c in stored]
            blobs = self.labels.blobs([stored[c] for c in present])
            vols = self.labels.store.map(
                lambda blob: member_volume(self.labels.parts_of(lay, blob), members), blobs
            )
            yield from zip(present, vols, strict=True)

    # -- sizes and coarse volumes -------------------------------------------------------

    def sparsevol_size(
        self, at: At, inst: Instance, label: int, supervoxels: bool
    ) -> dict[str, object] | None:
        """GET sparsevol-size/{label}: voxels, blocks and block-granular voxel bounds."""
        lay = layout_of(inst)
        body = self.index.resolve(self.labels.root(at, inst), inst, label, supervoxels)
        if body is None:
            return None
        lo, hi = block_voxel_extent(body.coords, lay.block_shape)
        return {
            "voxels": body.voxels,
            "numblocks": len(body.coords),
            "minvoxel": list(lo),
            "maxvoxel": list(hi),
        }

    def coarse(
        self, at: At, inst: Instance, label: int, bounds: Bounds, supervoxels: bool
    ) -> bytes | None:
        """GET sparsevol-coarse/{label}: block spans; None (a 404) when the label has no index.

        As DVID, a label whose blocks all fall outside the bounds gives the 12-byte
        header with no span, not a 404.
        """
        lay = layout_of(inst)
        body = self.index.resolve(self.labels.root(at, inst), inst, label, supervoxels)
        if body is None:
            return None
        return encode_sparsevol_coarse(self._fit(lay, body.coords, bounds))

    def coarse_many(
        self, at: At, inst: Instance, first: int, last: int, bounds: Bounds
    ) -> Iterator[bytes]:
        """GET sparsevols-coarse/{a}/{b}: one record per indexed body from a to b inclusive.

        One range scan over the index keys of those bodies; no value is decoded.
        """
        lay = layout_of(inst)
        root = self.labels.root(at, inst)
        for body, keys in body_keys_between(self.labels.tree, root, first, last):
            _, coords = parse_index_keys(keys)
            yield encode_sparsevols_coarse_entry(body, self._fit(lay, coords, bounds))

    def _fit(
        self, lay: LabelLayout, coords: NDArray[np.int64], bounds: Bounds
    ) -> NDArray[np.int64]:
        if not bounds.is_set():
            return coords
        return fit_blocks(coords, bounds.divide(lay.block_shape))


def member_volume(parts: BlockParts, members: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Decode a Block as 1 where its label is in ``members`` (sorted), 0 elsewhere.

    Returns a read-only shared array when every label of the Block is a member.
    """
    at = np.searchsorted(members, parts.labels)
    flags = members[np.minimum(at, len(members) - 1)] == parts.labels
    if flags.all():
        return _ones(parts.shape)
    return decode_block(dataclasses.replace(parts, labels=flags.astype(np.uint64)))


@functools.cache
def _ones(shape: tuple[int, int, int]) -> NDArray[np.uint64]:
    # PERF: interior blocks of a big body need no decoding; the kernels only read this.
    ones = np.ones(shape, np.uint64)
    ones.flags.writeable = False
    return ones


def compress(data: bytes, compression: str) -> bytes:
    """Return a legacy RLE body as DVID sends it: as is, LZ4 (no size prefix) or gzip."""
    if not data or compression == "":
        return data
    if compression == "lz4":
        return bytes(lz4.block.compress(data, store_size=False))
    return gzip.compress(data, compresslevel=6)
