"""DVID's compressed label Block (labels/compressed.go): encode, decode, inspect.

Serialized form, little-endian throughout::

    u32 gx, gy, gz        sub-blocks per axis (a sub-block is 8x8x8 voxels)
    u32 N                 labels in the block table (>= 1)
    N x u64               the label table
    --- only when N > 1 ---
    gx*gy*gz x u16        Ns[i], labels in sub-block i (0 means all label 0)
    sum(Ns) x u32         per sub-block, its Ns[i] indices into the label table
    per sub-block         512 values of b = ceil(log2(Ns[i])) bits (none when Ns <= 1),
                          MSB first; 512*b bits is whole bytes, so no padding

Sub-blocks and the voxels inside one are both in z, y, x order (x fastest); voxel
value v of sub-block i has label ``table[indices[o_i + v]]``.

Label order: DVID's encoder builds the table by ranging over Go maps, so the order
of labels that first appear in the same sub-block is random and DVID's bytes for one
array vary from run to run. :func:`encode_block` uses the order of first appearance
(sub-blocks in order, voxels in order within each), which is one of the outputs DVID
itself can produce (and the one in DVID's fib19 test Block), so equal arrays always
give equal bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap import _codec_kernels as k
from cas_dvid.errors import InvalidInputError

SUBBLOCK = 8
MAX_SUBBLOCKS_PER_AXIS = 128  # DVID's MaxBlockSize 1024 voxels / 8
DEFAULT_SHAPE = (64, 64, 64)
_BITS = np.array([0 if n < 2 else (n - 1).bit_length() for n in range(513)], np.int64)

Shape3 = tuple[int, int, int]  # (z, y, x) voxels
# collections.abc.Buffer is 3.12+; these are the buffers callers hand us.
Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class BlockParts:
    """A parsed Block whose sizes and table indices have been checked.

    The arrays are views of the caller's buffer where alignment allows (otherwise
    small copies); ``values`` is never copied. Voxel values are checked only when
    decoded or counted.
    """

    shape: Shape3
    labels: NDArray[np.uint64]
    ns: NDArray[np.uint16]
    indices: NDArray[np.uint32]
    values: NDArray[np.uint8]
    nbytes: int

    @property
    def solid(self) -> bool:
        """True for a one-label Block (24 bytes, no sub-block data)."""
        return len(self.labels) == 1


def _check_shape(shape: tuple[int, ...], what: str) -> Shape3:
    if len(shape) != 3 or not all(
        n % SUBBLOCK == 0 and 0 < n <= SUBBLOCK * MAX_SUBBLOCKS_PER_AXIS for n in shape
    ):
        raise InvalidInputError(
            f"{what} must be 3-d with each side a multiple of 8 from 8 to 1024 voxels; "
            f"got shape {tuple(shape)}"
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def _xyz(shape: Shape3) -> str:
    return f"{shape[2]}x{shape[1]}x{shape[0]}"


def _section(buf: memoryview, offset: int, count: int, dtype: str) -> NDArray[np.generic]:
    arr: NDArray[np.generic] = np.frombuffer(buf, dtype=dtype, count=count, offset=offset)
    if not arr.flags.aligned or not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def parse_block(data: Buffer, shape: Shape3 | None = None) -> BlockParts:
    """Parse and size-check a serialized Block; never copies the voxel values.

    Args:
        data: the Block bytes. Bytes past the end of the Block are ignored, as DVID
            ignores them.
        shape: if given, the (z, y, x) voxel shape the Block must have.

    Raises:
        InvalidInputError: truncated data, a zero or oversized sub-block grid, N = 0,
            a sub-block with over 512 labels, an index beyond the label table, or a
            shape other than ``shape``.

    """
    buf = memoryview(data).cast("B")
    if len(buf) < 24:
        raise InvalidInputError(f"label Block needs at least 24 bytes; got {len(buf)}")
    gx, gy, gz, n = (int(v) for v in np.frombuffer(buf, "<u4", 4))
    if not all(0 < g <= MAX_SUBBLOCKS_PER_AXIS for g in (gx, gy, gz)):
        raise InvalidInputError(
            f"label Block needs 1 to {MAX_SUBBLOCKS_PER_AXIS} sub-blocks per axis; "
            f"got {gx}x{gy}x{gz}"
        )
    got = (gz * SUBBLOCK, gy * SUBBLOCK, gx * SUBBLOCK)
    if shape is not None and got != tuple(shape):
        raise InvalidInputError(f"label Block is {_xyz(got)} voxels; expected {_xyz(shape)}")
    if n == 0:
        raise InvalidInputError("label Block has 0 labels; at least 1 is required")
    nsb = gx * gy * gz
    need = 16 + 8 * n + (2 * nsb if n > 1 else 0)
    if len(buf) < need:
        raise InvalidInputError(
            f"label Block truncated: {n} labels and {nsb} sub-blocks need at least "
            f"{need} bytes; got {len(buf)}"
        )
    labels = _section(buf, 16, n, "<u8")
    empty = np.empty(0, np.uint8)
    if n == 1:
        no16, no32 = np.empty(0, np.uint16), np.empty(0, np.uint32)
        return BlockParts(got, labels, no16, no32, empty, 24)  # type: ignore[arg-type]
    return _parse_subblocks(buf, got, labels, nsb, need)  # type: ignore[arg-type]


def _parse_subblocks(
    buf: memoryview, shape: Shape3, labels: NDArray[np.uint64], nsb: int, pos: int
) -> BlockParts:
    ns: NDArray[np.uint16] = _section(buf, pos - 2 * nsb, nsb, "<u2")  # type: ignore[assignment]
    if int(ns.max()) > 512:
        bad = int(np.argmax(ns > 512))
        raise InvalidInputError(
            f"label Block sub-block {bad} claims {int(ns[bad])} labels; at most 512 fit"
        )
    nidx = int(ns.sum(dtype=np.int64))
    nvalues = 64 * int(_BITS[ns].sum())
    need = pos + 4 * nidx + nvalues
    if len(buf) < need:
        raise InvalidInputError(
            f"label Block truncated: its sub-blocks need {need} bytes; got {len(buf)}"
        )
    indices = _section(buf, pos, nidx, "<u4")
    if nidx and int(indices.max()) >= len(labels):
        raise InvalidInputError(
            f"label Block index {int(indices.max())} is beyond its {len(labels)}-label table"
        )
    values = np.frombuffer(buf, np.uint8, nvalues, pos + 4 * nidx)
    return BlockParts(shape, labels, ns, indices, values, need)  # type: ignore[arg-type]


def decode_block(data: Buffer | BlockParts, shape: Shape3 | None = None) -> NDArray[np.uint64]:
    """Decode a serialized Block to its (z, y, x) uint64 array (a new array).

    Raises:
        InvalidInputError: as :func:`parse_block`, or a voxel value beyond its
            sub-block's label list.

    """
    parts = data if isinstance(data, BlockParts) else parse_block(data, shape)
    if shape is not None and parts.shape != tuple(shape):
        raise InvalidInputError(
            f"label Block is {_xyz(parts.shape)} voxels; expected {_xyz(shape)}"
        )
    if parts.solid:
        return np.full(parts.shape, parts.labels[0], dtype=np.uint64)
    out = np.empty(parts.shape[0] * parts.shape[1] * parts.shape[2], np.uint64)
    bad = k.decode_into(out, *parts.shape, parts.labels, parts.ns, parts.indices, parts.values)
    if bad >= 0:
        raise InvalidInputError(
            f"label Block sub-block {bad} has a voxel value beyond its "
            f"{int(parts.ns[bad])}-label list"
        )
    return out.reshape(parts.shape)


def check_volume(vol: NDArray[np.generic]) -> tuple[NDArray[np.uint64], Shape3]:
    """Check a label volume a Block can hold; return (flat C-order view or copy, shape).

    Raises:
        InvalidInputError: not a uint64 array, or sides not multiples of 8 up to 1024.

    """
    if not isinstance(vol, np.ndarray) or vol.dtype.kind != "u" or vol.dtype.itemsize != 8:
        got = vol.dtype if isinstance(vol, np.ndarray) else type(vol).__name__
        raise InvalidInputError(f"label volume must be a uint64 numpy array; got {got}")
    shape = _check_shape(vol.shape, "label volume")
    flat = np.ascontiguousarray(vol, dtype=np.uint64).reshape(-1)
    return flat, shape


def _header(shape: Shape3, n: int) -> bytes:
    return np.array([shape[2] >> 3, shape[1] >> 3, shape[0] >> 3, n], "<u4").tobytes()


def solid_block(label: int, shape: Shape3 = DEFAULT_SHAPE) -> bytes:
    """Return the 24-byte Block of ``shape`` (z, y, x) voxels all equal to ``label``."""
    if not 0 <= label < 1 << 64:
        raise InvalidInputError(f"label must be a uint64; got {label}")
    shape = _check_shape(shape, "block shape")
    return _header(shape, 1) + int(label).to_bytes(8, "little")


def _encode(
    flat: NDArray[np.uint64], shape: Shape3
) -> tuple[bytes, NDArray[np.uint64], NDArray[np.int64]]:
    if k.is_solid(flat):
        label = flat[:1].copy()
        return solid_block(int(label[0]), shape), label, np.array([flat.size], np.int64)
    local, local_counts, ns, vidx, total = k.subblock_tables(flat, *shape)
    labels, indices = k.block_table(local, total)
    values = k.pack_values(ns, vidx)
    counts = np.zeros(len(labels), np.int64)
    np.add.at(counts, indices, local_counts[:total])
    data = b"".join(
        (
            _header(shape, len(labels)),
            labels.astype("<u8", copy=False).tobytes(),
            ns.astype("<u2", copy=False).tobytes(),
            indices.astype("<u4", copy=False).tobytes(),
            values.tobytes(),
        )
    )
    return data, labels, counts


def encode_block(vol: NDArray[np.uint64]) -> bytes:
    """Serialize a (z, y, x) uint64 array (sides multiples of 8, <= 1024) as a Block.

    Deterministic: labels are tabled in order of first appearance (module docstring).
    A one-label array gives the 24-byte solid Block.
    """
    flat, shape = check_volume(vol)
    return _encode(flat, shape)[0]


def encode_block_with_counts(
    vol: NDArray[np.uint64],
) -> tuple[bytes, NDArray[np.uint64], NDArray[np.int64]]:
    """:func:`encode_block` plus (labels, voxel counts) from the same pass.

    The labels are the Block's table order (first appearance), label 0 included when
    present; DVID's label index leaves label 0 out.
    """
    flat, shape = check_volume(vol)
    return _encode(flat, shape)


def canonical_with_counts(
    data: Buffer, shape: Shape3
) -> tuple[bytes, NDArray[np.uint64], NDArray[np.int64]] | None:
    """``encode_block_with_counts`` of the Block's voxels if ``data`` is already that Block.

    A client that encodes as cas_dvid does (labels tabled in order of first appearance)
    sends canonical Blocks; checking that walks the packed values once and spares the
    decode and the re-encode.  Returns None when the bytes differ from what
    ``encode_block`` would write (then decode and encode them); raises as
    :func:`parse_block` for a malformed Block.
    """
    parts = parse_block(data, shape)
    raw = bytes(memoryview(data).cast("B")[: parts.nbytes])
    if parts.solid:
        return raw, parts.labels.copy(), np.array([shape[0] * shape[1] * shape[2]], np.int64)
    if len(np.unique(parts.labels)) != len(parts.labels):
        return None
    if not k.is_canonical(len(parts.labels), parts.ns, parts.indices, parts.values):
        return None
    counts, _, _ = k.encoded_counts(parts.ns, parts.indices, len(parts.labels), parts.values)
    return raw, parts.labels.copy(), counts


def solid_label(data: Buffer | BlockParts) -> int | None:
    """Return the label of a solid (one-label) Block, or None for any other Block.

    Cheap: reads the header and size-checks the tables, decodes no voxel.
    """
    parts = data if isinstance(data, BlockParts) else parse_block(data)
    return int(parts.labels[0]) if parts.solid else None


def block_labels(data: Buffer | BlockParts) -> NDArray[np.uint64]:
    """Return the sorted distinct labels of a Block, from its tables alone (no voxel decoding).

    These are the table entries some sub-block refers to, plus 0 when a sub-block has
    Ns = 0. For Blocks written by DVID's encoder or :func:`encode_block` that is
    exactly the set of voxel labels; a hand-made Block could list an index no voxel
    uses.
    """
    parts = data if isinstance(data, BlockParts) else parse_block(data)
    if parts.solid:
        return parts.labels.copy()
    used = parts.labels[np.unique(parts.indices)]
    if (parts.ns == 0).any():
        used = np.append(used, np.uint64(0))
    return np.unique(used)
