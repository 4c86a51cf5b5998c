"""The tree of a labelmap instance: its key classes and value encodings, in one place.

Everything of one instance at one version lives in its one tree, so a write swaps
blocks, label index, mapping and counters together and a diff splits by class:

==========  ===========================================  ==================================
class       key after the class byte                     value
==========  ===========================================  ==================================
``0xBA``    ``block_key(scale, z, y, x)``                blob: DVID's label Block (svs)
``0xBB``    body u64 BE, ``block_key(0, z, y, x)``       (sv u64, voxels u32) pairs, by sv
``0xBC``    supervoxel u64 BE                            body u64 LE (0: retired); only
                                                         supervoxels not mapped to themselves
``0xBD``    body u64 BE                                  summary: voxels, blocks, last mutation
``0xB9``    ``block_key(scale, z, y, x)``                (empty) a lower-res block to redo
``0xBF``    mutation id u64 BE                           JSON record of a mutation
``0xBE``    (none)                                       last mutation id at this version
``0xED``    (none)                                       max label at this version, u64 LE
``0x18``    (none)                                       extents JSON, as imageblk's
==========  ===========================================  ==================================

The label index keys (``0xBB``) sort by body, then block, so a body's index is one
key range; the class numbers follow DVID's (186 blocks, 187 index, 237 max label).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.base import inline_payload, inline_value
from cas_dvid.errors import CorruptObjectError
from cas_dvid.trees.keys import BLOCK_KEY_SIZE, block_key, parse_block_key, prefix_range

LABEL_BLOCK_CLASS = b"\xba"
LABEL_INDEX_CLASS = b"\xbb"
MAPPING_CLASS = b"\xbc"
BODY_CLASS = b"\xbd"
DIRTY_CLASS = b"\xb9"
MUTATION_CLASS = b"\xbf"
MAXLABEL_KEY = b"\xed"
LAST_MUTID_KEY = b"\xbe"
LABEL_EXTENTS_KEY = b"\x18"

_U64 = struct.Struct(">Q")
_SUMMARY = struct.Struct("<QIQ")
PAIR = np.dtype([("sv", "<u8"), ("n", "<u4")])

BlockXYZ = tuple[int, int, int]


def label_bytes(label: int) -> bytes:
    """Return a label as the 8 big-endian bytes keys use (so keys sort by label)."""
    return _U64.pack(label)


def index_key(body: int, x: int, y: int, z: int) -> bytes:
    """Label index key of ``body`` in block (x, y, z)."""
    return LABEL_INDEX_CLASS + _U64.pack(body) + block_key(0, z, y, x)


def index_range(body: int) -> tuple[bytes, bytes | None]:
    """(start, end exclusive) of every index key of ``body``."""
    return prefix_range(LABEL_INDEX_CLASS + _U64.pack(body))


def parse_index_key(key: bytes) -> tuple[int, BlockXYZ]:
    """(body, block x y z) of a label index key."""
    if len(key) != 9 + BLOCK_KEY_SIZE or key[:1] != LABEL_INDEX_CLASS:
        raise CorruptObjectError(f"not a label index key: {key.hex()}")
    _, z, y, x = parse_block_key(key[9:])
    return _U64.unpack_from(key, 1)[0], (x, y, z)


INDEX_KEY_DTYPE = np.dtype(
    [("c", "u1"), ("body", ">u8"), ("s", "u1"), ("z", ">u4"), ("y", ">u4"), ("x", ">u4")]
)
"""``index_key``'s layout as a numpy record (block coordinates biased by 2**31)."""


def index_keys(bodies: NDArray[np.uint64], xyz: NDArray[np.int64]) -> list[bytes]:
    """Label index keys of many (body, block x y z) at once (as ``index_key`` each)."""
    rows = np.empty(len(bodies), INDEX_KEY_DTYPE)
    rows["c"], rows["body"], rows["s"] = LABEL_INDEX_CLASS[0], bodies, 0
    for i, axis in enumerate("xyz"):
        rows[axis] = (np.asarray(xyz[:, i], np.int64) + (1 << 31)).astype(np.uint32)
    buf, n = rows.tobytes(), INDEX_KEY_DTYPE.itemsize
    return [buf[i : i + n] for i in range(0, len(buf), n)]


def mapping_key(sv: int) -> bytes:
    """Return the mapping key of supervoxel ``sv``."""
    return MAPPING_CLASS + _U64.pack(sv)


_MAPPING_KEY = np.dtype([("c", "u1"), ("sv", ">u8")])


def mapping_keys(svs: NDArray[np.uint64]) -> list[bytes]:
    """Return the mapping keys of many supervoxels at once (as ``mapping_key`` each)."""
    rows = np.empty(len(svs), _MAPPING_KEY)
    rows["c"], rows["sv"] = MAPPING_CLASS[0], svs
    buf = rows.tobytes()
    return [buf[i : i + 9] for i in range(0, len(buf), 9)]


def body_key(body: int) -> bytes:
    """Summary key of ``body``."""
    return BODY_CLASS + _U64.pack(body)


def label_of(key: bytes) -> int:
    """Return the label in a mapping, summary or mutation key."""
    return int(_U64.unpack_from(key, 1)[0])


def mutation_key(mutid: int) -> bytes:
    """Key of the mutation record with id ``mutid``."""
    return MUTATION_CLASS + _U64.pack(mutid)


def encode_pairs(svs: NDArray[np.uint64], counts: NDArray[np.int64]) -> bytes:
    """Return an index entry: (supervoxel, voxel count) pairs, sorted by supervoxel."""
    order = np.argsort(svs, kind="stable")
    pairs = np.empty(len(svs), PAIR)
    pairs["sv"] = svs[order]
    pairs["n"] = counts[order]
    return pairs.tobytes()


def decode_pairs(payload: bytes) -> NDArray[np.void]:
    """Return the (sv, n) pairs of an index entry's payload."""
    if len(payload) % PAIR.itemsize:
        raise CorruptObjectError(f"label index entry of {len(payload)} bytes is not whole pairs")
    return np.frombuffer(payload, PAIR)


@dataclass(frozen=True, slots=True)
class Summary:
    """What a body's summary holds: its size, and its last change (DVID's lastmod)."""

    voxels: int
    blocks: int
    mutid: int = 0
    time: str = ""
    user: str = ""
    app: str = ""


_MAX_TEXT = 256


def moved_summary(old: bytes | None, dvox: int, dblk: int) -> bytes | None:
    """Return the summary value ``old`` (None: a new body) with its size moved by the deltas.

    Counts never go below zero; a body left with no voxels has no summary (None).
    The mutation and text fields are kept as they are.
    """
    if old is None:
        return encode_summary(Summary(dvox, max(0, dblk))) if dvox > 0 else None
    raw = inline_payload(old)
    v, b, mutid = _SUMMARY.unpack_from(raw)
    voxels, blocks = max(0, v + dvox), max(0, b + dblk)
    return (
        inline_value(_SUMMARY.pack(voxels, blocks, mutid) + raw[_SUMMARY.size :])
        if voxels
        else None
    )


def encode_summary(s: Summary) -> bytes:
    """Return a summary value: u64 voxels, u32 blocks, u64 mutation id, then the text."""
    text = "\0".join(t[:_MAX_TEXT] for t in (s.time, s.user, s.app)).encode()
    return inline_value(_SUMMARY.pack(s.voxels, s.blocks, s.mutid) + text)


def decode_summary(value: bytes) -> Summary:
    """Return the summary of a summary value."""
    raw = inline_payload(value)
    voxels, blocks, mutid = _SUMMARY.unpack_from(raw)
    parts = raw[_SUMMARY.size :].decode("utf-8", "replace").split("\0")
    time, user, app = (parts + ["", "", ""])[:3]
    return Summary(int(voxels), int(blocks), int(mutid), time, user, app)


def encode_label_value(label: int) -> bytes:
    """Return an inline u64 (mapping targets, the max label)."""
    return inline_value(struct.pack("<Q", label))


def decode_label_value(value: bytes) -> int:
    """Return the u64 of an inline label value."""
    return int(struct.unpack("<Q", inline_payload(value))[0])


def block_keys_of(coords: Iterable[BlockXYZ], scale: int = 0) -> list[bytes]:
    """Block keys of block coordinates at ``scale``."""
    return [LABEL_BLOCK_CLASS + block_key(scale, z, y, x) for x, y, z in coords]


def show_key(key: bytes) -> str:
    """Return a labelmap tree key as people read it (diffs and merge conflicts)."""
    cls, rest = key[:1], key[1:]
    if cls in (LABEL_BLOCK_CLASS, DIRTY_CLASS) and len(rest) == BLOCK_KEY_SIZE:
        scale, z, y, x = parse_block_key(rest)
        word = "block" if cls == LABEL_BLOCK_CLASS else "stale block"
        return f"{word} {x}_{y}_{z}" + (f"@{scale}" if scale else "")
    if cls == LABEL_INDEX_CLASS and len(rest) == 8 + BLOCK_KEY_SIZE:
        body, (x, y, z) = parse_index_key(key)
        return f"index {body} block {x}_{y}_{z}"
    names = {MAPPING_CLASS: "mapping", BODY_CLASS: "body", MUTATION_CLASS: "mutation"}
    if cls in names and len(rest) == 8:
        return f"{names[cls]} {label_of(key)}"
    names = {
        MAXLABEL_KEY: "maxlabel",
        LABEL_EXTENTS_KEY: "extents",
        LAST_MUTID_KEY: "last mutation",
    }
    return names.get(key, key.hex())
