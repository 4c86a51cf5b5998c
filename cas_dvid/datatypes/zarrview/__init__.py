"""Zarr v3 views of uint8blk and labelmap instances at one version.

Read-only over HTTP; in-process (``store.CasZarrStore``) a uint8blk at an unlocked
version can also be written, chunk by chunk.

Axis order: DVID addresses voxels as (x, y, z) with x fastest in memory, so a
volume is the C-order numpy array ``[z][y][x]``; the zarr array is that array,
``shape = (Z, Y, X)``, chunk key ``c/{bz}/{by}/{bx}`` for DVID block
``(bx, by, bz)``. The array's origin is voxel (0, 0, 0) and its shape runs to the
instance's MaxPoint (negative coordinates are not exposed). Chunks are the
stored blocks at that version, found by tree lookups: a block never written is
absent, which zarr reads as the fill value 0. Codec chain: ``bytes``
(little-endian) only, which zarr-python, tensorstore and neuroglancer all decode.

A labelmap with MaxDownresLevel N > 0 is an OME-Zarr multiscale group with arrays
``s0`` .. ``sN`` (scale s is 2^s coarser); other instances are one array.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from cas_dvid.datatypes import DataServices
from cas_dvid.datatypes.base import value_ref
from cas_dvid.datatypes.geometry import Point3, block_box
from cas_dvid.datatypes.imageblk.layout import layout_of as image_layout
from cas_dvid.datatypes.imageblk.store import ImageStore
from cas_dvid.datatypes.labelmap.layout import layout_of as label_layout
from cas_dvid.datatypes.labelmap.store import LabelStore
from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.versions import At, Instance, VersionService

COMMIT_HEX = 64


@dataclass(frozen=True, slots=True)
class Version:
    """A resolved version and, when it was named by its commit id, that id."""

    at: At
    commit: str | None


@dataclass(frozen=True, slots=True)
class Chunk:
    """A stored chunk: its ETag (an object id) and how to make its bytes."""

    etag: str
    value: bytes
    scale: int
    coord: tuple[int, int, int]  # DVID block (x, y, z)


class ZarrVolumes:
    """Zarr metadata and chunks of volume instances, by version."""

    def __init__(self, versions: VersionService, data: DataServices) -> None:
        """Serve instances of ``versions`` through the datatype services ``data``."""
        self.versions = versions
        self.data = data
        # NOTE: a commit id names one locked node forever: remember where it is.
        self._commits: dict[str, tuple[str, str]] = {}

    # -- versions ------------------------------------------------------------------

    def resolve(self, spec: str) -> Version:
        """Resolve a UUID spec (prefix, ``uuid:branch``) or a full 64-hex commit id."""
        if len(spec) == COMMIT_HEX and all(c in "0123456789abcdef" for c in spec):
            known = self._commits.get(spec)
            if known is not None:
                return Version(At(self.versions.load_repo(known[0]), known[1]), spec)
            for repo in self.versions.repos().values():
                for uuid, node in repo.all_nodes().items():
                    if node.commit == spec:
                        self._commits[spec] = (repo.root, uuid)
                        return Version(At(repo, uuid), spec)
            raise NotFoundError(f"no version has commit id {spec}")
        return Version(self.versions.resolve(spec), None)

    # -- metadata ------------------------------------------------------------------

    def kind(self, inst: Instance) -> str:
        """``image`` or ``labels``; anything else is refused."""
        if inst.typename == "uint8blk":
            return "image"
        if inst.typename == "labelmap":
            return "labels"
        raise InvalidInputError(
            f"zarr view serves uint8blk and labelmap instances, not {inst.typename!r}"
        )

    def levels(self, inst: Instance) -> int:
        """Return the number of scales the view shows (1 for an image)."""
        return label_layout(inst).max_downres + 1 if self.kind(inst) == "labels" else 1

    def extents(self, at: At, inst: Instance) -> list[int]:
        """DVID MaxPoint + 1 (x, y, z), or zeros when nothing was written."""
        got = self.data.for_instance(inst).info(at, inst).get("Extents")
        if not got:
            return [0, 0, 0]
        return [max(0, v + 1) for v in got["MaxPoint"]]

    def array_meta(self, at: At, inst: Instance, scale: int = 0) -> dict[str, Any]:
        """Return the ``zarr.json`` of the array at ``scale``."""
        kind = self.kind(inst)
        lay = image_layout(inst) if kind == "image" else label_layout(inst)
        b = lay.block
        f = 2**scale
        x, y, z = (-(-v // f) for v in self.extents(at, inst))
        unit = lay.units[0] if lay.units and lay.units[0] else "nanometer"
        return {
            "zarr_format": 3,
            "node_type": "array",
            "shape": [z, y, x],
            "data_type": "uint8" if kind == "image" else "uint64",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [b.z, b.y, b.x]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0,
            "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
            "dimension_names": ["z", "y", "x"],
            "attributes": {"dvid": {"instance": inst.name, "scale": scale, "unit": unit}},
        }

    def group_meta(self, at: At, inst: Instance) -> dict[str, Any]:
        """Return the OME-Zarr (0.5) multiscale group ``zarr.json`` of a pyramid."""
        lay = label_layout(inst)
        vx, vy, vz = lay.voxel_size
        datasets = [
            {
                "path": f"s{s}",
                "coordinateTransformations": [
                    {"type": "scale", "scale": [vz * 2**s, vy * 2**s, vx * 2**s]}
                ],
            }
            for s in range(self.levels(inst))
        ]
        axes = [{"name": a, "type": "space", "unit": "nanometer"} for a in "zyx"]
        ome = {"version": "0.5", "multiscales": [{"axes": axes, "datasets": datasets}]}
        return {"zarr_format": 3, "node_type": "group", "attributes": {"ome": ome}}

    def tree_root(self, at: At, inst: Instance) -> str:
        """Hex id of the instance's tree at this version (the ETag of its metadata)."""
        return self.versions.root_at(at, inst).hex()

    # -- chunks --------------------------------------------------------------------

    def locate(self, at: At, inst: Instance, scale: int, zyx: tuple[int, int, int]) -> Chunk | None:
        """Find the stored block behind chunk ``zyx`` at ``scale``, or None (one tree lookup)."""
        kind = self.kind(inst)
        if not 0 <= scale < self.levels(inst):
            raise InvalidInputError(f"scale {scale} is outside 0..{self.levels(inst) - 1}")
        coord = (zyx[2], zyx[1], zyx[0])
        if kind == "image":
            found = self._images().stored(at, inst, [coord])
        else:
            labels = self._labels()
            found = labels.block_values(labels.root(at, inst), [coord], scale)
        value = found.get(coord)
        if value is None:
            return None
        oid = value_ref(value)
        etag = oid.hex() if oid is not None else hashlib.blake2b(value, digest_size=32).hexdigest()
        if kind == "labels" and label_layout(inst).mapped:
            # NOTE: a mapped label block's bodies depend on the mapping too.
            root = self.tree_root(at, inst)
            etag = hashlib.blake2b(f"{root}{etag}".encode(), digest_size=32).hexdigest()
        return Chunk(etag, value, scale, coord)

    def chunk_bytes(self, at: At, inst: Instance, chunk: Chunk) -> bytes:
        """Return the little-endian C-order (z, y, x) bytes of a located chunk."""
        if self.kind(inst) == "image":
            images = self._images()
            arr = images.block_arrays(image_layout(inst), [chunk.value])[0]
            return np.ascontiguousarray(arr).tobytes()
        labels = self._labels()
        lay = label_layout(inst)
        box = block_box(lay.block, *chunk.coord)
        out = labels.read_box(at, inst, box, scale=chunk.scale)
        return out.astype("<u8", copy=False).tobytes()

    # -- writes (uint8blk at an unlocked version) --------------------------------------

    def check_writable(self, at: At, inst: Instance) -> None:
        """Refuse a zarr write of ``inst`` at ``at``: labelmaps, and locked versions."""
        if self.kind(inst) != "image":
            raise InvalidInputError(
                f"{inst.name!r} is a labelmap: the zarr view shows bodies, so supervoxels are "
                "written through POST raw or blocks, not through zarr"
            )
        self.versions.check_writable(at, inst, "zarr write")

    def write_chunk(self, at: At, inst: Instance, zyx: tuple[int, int, int], data: bytes) -> None:
        """Store chunk ``zyx`` (C-order z, y, x bytes of one block) as DVID block (x, y, z)."""
        self.check_writable(at, inst)
        lay = image_layout(inst)
        if len(data) != lay.block_bytes:
            raise InvalidInputError(
                f"chunk c/{zyx[0]}/{zyx[1]}/{zyx[2]} has {len(data)} bytes, a block "
                f"has {lay.block_bytes}"
            )
        block = np.frombuffer(data, dtype=lay.vtype.dtype).reshape(lay.block_shape)
        coord = (zyx[2], zyx[1], zyx[0])
        self._images().write_blocks(at, inst, {coord: block}, "zarr write")

    def delete_chunk(self, at: At, inst: Instance, zyx: tuple[int, int, int]) -> None:
        """Remove block ``zyx`` (zarr deletes a chunk it would write as all fill value)."""
        self.check_writable(at, inst)
        key = image_layout(inst).spatial.key(zyx[2], zyx[1], zyx[0])
        self.versions.write(at, inst, {key: None}, "zarr delete")

    def _images(self) -> ImageStore:
        return self.data.of(ImageStore)

    def _labels(self) -> LabelStore:
        return self.data.of(LabelStore)

    def stored_chunks(self, at: At, inst: Instance, scale: int = 0) -> list[tuple[int, int, int]]:
        """Return the (z, y, x) chunk indices of every stored block at ``scale``."""
        x, y, z = self.extents(at, inst)
        if not x or not y or not z:
            return []
        f = 2**scale
        if self.kind(inst) == "image":
            b = image_layout(inst).block
            last = Point3(*((-(-v // f) - 1) // s for v, s in zip((x, y, z), b, strict=True)))
            found = self._images().stored_in_box(at, inst, Point3(0, 0, 0), last)
        else:
            lay = label_layout(inst)
            b = lay.block
            last = Point3(*((-(-v // f) - 1) // s for v, s in zip((x, y, z), b, strict=True)))
            labels = self._labels()
            found = labels.block_values_in(labels.root(at, inst), lay, Point3(0, 0, 0), last, scale)
        return sorted((c[2], c[1], c[0]) for c in found)
