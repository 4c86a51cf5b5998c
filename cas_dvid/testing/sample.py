"""Sample repos for sync tests and benchmarks: a uint8 volume's blocks and a keyvalue instance.

Blocks are written as the uint8blk datatype keys and stores them (a BLOB of raw voxels
per block), straight through the version service, so a repo of any size is built
without the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cas_dvid.datatypes import keyvalue
from cas_dvid.datatypes.base import blob_value, inline_value
from cas_dvid.datatypes.geometry import Point3
from cas_dvid.datatypes.imageblk import BLOCK_CLASS
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.objects import Kind, ObjectId
from cas_dvid.versions import VersionService


@dataclass(frozen=True, slots=True)
class Sample:
    """A sample repo: its root version and the block keys and ids it holds."""

    root: str
    grey: str
    kv: str
    blocks: dict[bytes, ObjectId]


def em_like(n: int, edge: int, seed: int = 0) -> list[bytes]:
    """``n`` distinct uint8 blocks of edge^3 voxels, noisy like EM (incompressible for lz4)."""
    rng = np.random.default_rng(seed)
    return [rng.normal(130, 30, edge**3).clip(0, 255).astype(np.uint8).tobytes() for _ in range(n)]


def tree_key(x: int, y: int, z: int) -> bytes:
    """Return the uint8blk tree key of block (x, y, z)."""
    return Spatial(BLOCK_CLASS, Point3(1, 1, 1)).key(x, y, z)


def build(
    vs: VersionService,
    *,
    grid: tuple[int, int, int] = (4, 4, 4),
    edge: int = 32,
    kv_keys: int = 100,
    kv_value: int = 100,
    seed: int = 0,
    blocks: Callable[[int, int], Sequence[bytes]] | None = None,
    alias: str = "sample",
    commit: bool = True,
) -> Sample:
    """Build a committed repo: ``grey`` (uint8blk, ``grid`` blocks of ``edge``^3) and ``kv``."""
    root = vs.create_repo(alias, "a sample volume")
    grey = vs.new_instance(
        root, "grey", "uint8blk", settings={"blocksize": f"{edge},{edge},{edge}"}
    )
    kv = vs.new_instance(root, "kv", "keyvalue")
    nx, ny, nz = grid
    n = nx * ny * nz
    data = blocks(n, edge) if blocks is not None else em_like(n, edge, seed)
    ids = vs.store.put_many([(Kind.BLOB, d) for d in data])
    keys = [tree_key(x, y, z) for z in range(nz) for y in range(ny) for x in range(nx)]
    at = vs.resolve(root)
    vs.write(at, grey, {k: blob_value(i) for k, i in zip(keys, ids, strict=True)})
    rng = np.random.default_rng(seed + 1)
    values = {
        keyvalue.tree_key(f"key{i:06d}"): inline_value(rng.bytes(kv_value)) for i in range(kv_keys)
    }
    if values:
        vs.write(at, kv, values)
    if commit:
        vs.commit(root, "sample")
    return Sample(root, grey.data_uuid, kv.data_uuid, dict(zip(keys, ids, strict=True)))


def change(
    vs: VersionService,
    parent: str,
    keys: Sequence[bytes],
    *,
    edge: int,
    seed: int = 99,
    commit: bool = True,
) -> tuple[str, dict[bytes, ObjectId]]:
    """Make a child of ``parent`` with the blocks at ``keys`` rewritten (new content); committed."""
    child = vs.new_child(parent)
    at = vs.resolve(child)
    grey = vs.instance(at, "grey")
    data = em_like(len(keys), edge, seed)
    ids = vs.store.put_many([(Kind.BLOB, d) for d in data])
    vs.write(at, grey, {k: blob_value(i) for k, i in zip(keys, ids, strict=True)})
    if commit:
        vs.commit(child, "changed blocks")
    return child, dict(zip(keys, ids, strict=True))


def label_blocks_body(vol: np.ndarray, edge: int = 64, z0: int = 0, level: int = 1) -> bytes:
    """Return the POST blocks body of a uint64 ZYX volume of whole ``edge``^3 blocks.

    Records of gzip(DVID label Block), as clients send them; ``z0`` is the volume's
    first voxel in Z (block-aligned); ``level`` is gzip's.
    """
    import gzip

    from cas_dvid.datatypes.labelmap.codec import encode_block
    from cas_dvid.datatypes.streams import pack_records

    items = []
    nz, ny, nx = (s // edge for s in vol.shape)
    for bz in range(nz):
        for by in range(ny):
            for bx in range(nx):
                cube = vol[bz * edge : (bz + 1) * edge, by * edge : (by + 1) * edge]
                cube = np.ascontiguousarray(cube[:, :, bx * edge : (bx + 1) * edge])
                coord = (bx, by, z0 // edge + bz)
                items.append((coord, gzip.compress(encode_block(cube), level)))
    return b"".join(bytes(p) for p in pack_records(items))
