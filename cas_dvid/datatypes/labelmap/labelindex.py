"""The LabelIndex protobuf and its packed block coordinate keys (labels/index.go).

A block key (uint64) packs x in bits 0-20, y in 21-41, z in 42-62; bit 63 is unused.
Each 21-bit field is sign-magnitude: bit 20 of the field is the sign, bits 0-19 the
magnitude, so a coordinate must lie in -(2**20 - 1) .. 2**20 - 1 (DVID silently drops
higher bits; here that is an error). Decoding ignores bit 63, as DVID does; a field
with the sign bit and magnitude 0 decodes to 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from google.protobuf.message import DecodeError
from numpy.typing import ArrayLike, NDArray

from cas_dvid.errors import InvalidInputError
from cas_dvid.proto.labelops_pb2 import LabelIndex, LabelIndices, MappingOps

LIMIT = (1 << 20) - 1
_SIGN = 1 << 20
_FIELD = (1 << 21) - 1


def _field(v: int) -> int:
    if not -LIMIT <= v <= LIMIT:
        raise InvalidInputError(f"block coordinate {v} is outside -{LIMIT}..{LIMIT}")
    return (_SIGN | -v) if v < 0 else v


def encode_block_index(x: int, y: int, z: int) -> int:
    """Return the uint64 LabelIndex key of block (x, y, z) (DVID's EncodeBlockIndex)."""
    return (_field(z) << 42) | (_field(y) << 21) | _field(x)


def _unfield(f: int) -> int:
    mag = f & LIMIT
    return -mag if f & _SIGN else mag


def decode_block_index(key: int) -> tuple[int, int, int]:
    """Return (x, y, z) of a LabelIndex block key (DVID's DecodeBlockIndex)."""
    if not 0 <= key < 1 << 64:
        raise InvalidInputError(f"block index must be a uint64; got {key}")
    return _unfield(key & _FIELD), _unfield((key >> 21) & _FIELD), _unfield((key >> 42) & _FIELD)


def encode_block_indices(coords: ArrayLike) -> NDArray[np.uint64]:
    """Vectorised :func:`encode_block_index` of an (n, 3) x, y, z integer array."""
    arr = np.asarray(coords, dtype=np.int64).reshape(-1, 3)
    if arr.size and int(np.abs(arr).max()) > LIMIT:
        raise InvalidInputError(f"block coordinates must lie in -{LIMIT}..{LIMIT}")
    fields = np.where(arr < 0, _SIGN | -arr, arr).astype(np.uint64)
    return (fields[:, 2] << np.uint64(42)) | (fields[:, 1] << np.uint64(21)) | fields[:, 0]


def decode_block_indices(keys: ArrayLike) -> NDArray[np.int64]:
    """Vectorised :func:`decode_block_index`: (n, 3) int64 x, y, z."""
    k = np.asarray(keys, dtype=np.uint64).reshape(-1)
    out = np.empty((len(k), 3), np.int64)
    for axis, shift in enumerate((0, 21, 42)):
        f = (k >> np.uint64(shift)) & np.uint64(_FIELD)
        mag = (f & np.uint64(LIMIT)).astype(np.int64)
        out[:, axis] = np.where((f & np.uint64(_SIGN)) != 0, -mag, mag)
    return out


def make_label_index(
    label: int,
    blocks: Mapping[tuple[int, int, int], Mapping[int, int]],
    *,
    last_mutid: int = 0,
    last_mod_time: str = "",
    last_mod_user: str = "",
    last_mod_app: str = "",
) -> LabelIndex:
    """Build a LabelIndex: per block (x, y, z), supervoxel -> voxel count (0 counts dropped)."""
    idx = LabelIndex(
        label=label,
        last_mutid=last_mutid,
        last_mod_time=last_mod_time,
        last_mod_user=last_mod_user,
        last_mod_app=last_mod_app,
    )
    for (x, y, z), counts in blocks.items():
        kept = {int(sv): int(n) for sv, n in counts.items() if n}
        if kept:
            idx.blocks[encode_block_index(x, y, z)].counts.update(kept)
    return idx


def _parse(message: LabelIndex | LabelIndices | MappingOps, data: bytes, what: str) -> None:
    try:
        message.ParseFromString(data)
    except DecodeError as e:
        raise InvalidInputError(
            f"could not parse {what} protobuf ({len(data)} bytes): {e}"
        ) from None


def parse_label_index(data: bytes) -> LabelIndex:
    """Parse a LabelIndex from its protobuf bytes (POST index body)."""
    idx = LabelIndex()
    _parse(idx, data, "LabelIndex")
    return idx


def parse_mapping_ops(data: bytes) -> MappingOps:
    """Parse a MappingOps from its protobuf bytes (POST mappings body)."""
    ops = MappingOps()
    _parse(ops, data, "MappingOps")
    return ops


def parse_label_indices(data: bytes) -> LabelIndices:
    """Parse a LabelIndices from its protobuf bytes (POST indices body)."""
    idx = LabelIndices()
    _parse(idx, data, "LabelIndices")
    return idx


def index_blocks(idx: LabelIndex) -> dict[tuple[int, int, int], dict[int, int]]:
    """Return LabelIndex.blocks as (x, y, z) -> {supervoxel: count}."""
    return {decode_block_index(k): dict(v.counts) for k, v in idx.blocks.items()}
