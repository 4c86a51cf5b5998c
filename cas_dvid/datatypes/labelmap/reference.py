"""Plain, slow twins of the label kernels, written to be read; tests compare the fast ones.

Each follows DVID's Go code line by line where that is clearest (``encodeBlock``,
``MakeLabelVolume``, ``downresArray``, ``compressGoogle``) or a brute-force definition
where the Go code is an optimisation (runs, binary blocks).
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # only types: the twins stay independent of the code they check
    from cas_dvid.datatypes.labelmap.sparsevol import Bounds, LabelBlock


def _bits_for(n: int) -> int:
    return 0 if n < 2 else (n - 1).bit_length()


def _subblocks(shape: tuple[int, ...]) -> Iterable[tuple[int, int, int]]:
    for sz in range(shape[0] // 8):
        for sy in range(shape[1] // 8):
            for sx in range(shape[2] // 8):
                yield sz, sy, sx


def _voxels(vol: NDArray[np.uint64], sz: int, sy: int, sx: int) -> list[int]:
    sub = vol[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8]
    return [int(v) for v in sub.reshape(-1)]


def encode_block(vol: NDArray[np.uint64]) -> bytes:
    """DVID's encodeBlock, with dicts (insertion-ordered) where Go has random-order maps."""
    sub_tables: list[dict[int, int]] = []
    values = bytearray()
    for sz, sy, sx in _subblocks(vol.shape):
        voxels = _voxels(vol, sz, sy, sx)
        table: dict[int, int] = {}
        for label in voxels:
            table.setdefault(label, len(table))
        sub_tables.append(table)
        bits = _bits_for(len(table))
        if bits:
            stream = "".join(format(table[label], f"0{bits}b") for label in voxels)
            values += int(stream, 2).to_bytes(len(stream) // 8, "big")
    labels: dict[int, int] = {}
    for table in sub_tables:
        for label in table:
            labels.setdefault(label, len(labels))
    gz, gy, gx = (n // 8 for n in vol.shape)
    out = struct.pack("<4I", gx, gy, gz, len(labels))
    out += b"".join(struct.pack("<Q", label) for label in labels)
    if len(labels) == 1:
        return out
    out += b"".join(struct.pack("<H", len(t)) for t in sub_tables)
    out += b"".join(struct.pack("<I", labels[label]) for t in sub_tables for label in t)
    return out + bytes(values)


def decode_block(data: bytes) -> NDArray[np.uint64]:
    """DVID's MakeLabelVolume: read the tables, then each sub-block's packed values."""
    gx, gy, gz, n = struct.unpack_from("<4I", data)
    shape = (gz * 8, gy * 8, gx * 8)
    labels = struct.unpack_from(f"<{n}Q", data, 16)
    if n == 1:
        return np.full(shape, labels[0], np.uint64)
    nsb = gx * gy * gz
    pos = 16 + 8 * n
    ns = struct.unpack_from(f"<{nsb}H", data, pos)
    pos += 2 * nsb
    indices = struct.unpack_from(f"<{sum(ns)}I", data, pos)
    bitpos = 8 * (pos + 4 * sum(ns))
    out = np.zeros(shape, np.uint64)
    ipos = 0
    for i, (sz, sy, sx) in enumerate(_subblocks(shape)):
        sub_labels = [labels[indices[ipos + j]] for j in range(ns[i])]
        ipos += ns[i]
        bits = _bits_for(ns[i])
        flat = []
        for _ in range(512):
            if ns[i] == 0:
                flat.append(0)
            elif bits == 0:
                flat.append(sub_labels[0])
            else:
                v = 0
                for _b in range(bits):
                    v = (v << 1) | ((data[bitpos >> 3] >> (7 - (bitpos & 7))) & 1)
                    bitpos += 1
                flat.append(sub_labels[v])
        out[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8] = np.array(
            flat, np.uint64
        ).reshape(8, 8, 8)
    return out


def label_counts(vol: NDArray[np.uint64]) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """Labels ascending and their voxel counts, by numpy.unique."""
    labels, counts = np.unique(vol, return_counts=True)
    return labels.astype(np.uint64), counts.astype(np.int64)


def downres_labels(vol: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """DVID's downresArray: per 2x2x2 cell, non-zero votes, most votes, ties to smallest."""
    dz, dy, dx = vol.shape
    out = np.zeros((dz // 2, dy // 2, dx // 2), np.uint64)
    for z in range(0, dz, 2):
        for y in range(0, dy, 2):
            for x in range(0, dx, 2):
                votes = Counter(int(v) for v in vol[z : z + 2, y : y + 2, x : x + 2].reshape(-1))
                votes.pop(0, None)
                winner, best = 0, 0
                for label, n in votes.items():
                    if best < n or (best == n and label < winner):
                        winner, best = label, n
                out[z // 2, y // 2, x // 2] = winner
    return out


def downres_octants(
    octants: Sequence[NDArray[np.uint64] | None],
    prior: NDArray[np.uint64] | None,
    shape: tuple[int, int, int],
) -> NDArray[np.uint64]:
    """DVID's Block.Downres: setBlank, else DownresSlow over the given octants."""
    solid = set()
    for o in octants:
        solid |= {0} if o is None else ({int(o.flat[0])} if (o == o.flat[0]).all() else {-1})
    if len(solid) == 1 and -1 not in solid:
        return np.full(shape, solid.pop(), np.uint64)
    filled = all(o is not None for o in octants)
    out = np.zeros(shape, np.uint64) if filled or prior is None else prior.copy()
    hz, hy, hx = (n // 2 for n in shape)
    for i, o in enumerate(octants):
        if o is not None:
            oz, oy, ox = i // 4, (i // 2) % 2, i % 2
            out[oz * hz : oz * hz + hz, oy * hy : oy * hy + hy, ox * hx : ox * hx + hx] = (
                downres_labels(o)
            )
    return out


def _in(bounds: Bounds | None, x: int, y: int, z: int) -> bool:
    if bounds is None:
        return True
    lo, hi = bounds.clip((x, y, z), (x, y, z))
    return lo == hi == (x, y, z)


def sparsevol_runs(
    blocks: Iterable[LabelBlock], supervoxels: Iterable[int], bounds: Bounds | None = None
) -> NDArray[np.int32]:
    """All maximal X runs of the body's voxels (within bounds), sorted by z, y, x."""
    members = {int(s) for s in supervoxels}
    rows: dict[tuple[int, int], set[int]] = {}
    for (bx, by, bz), vol in blocks:
        dz, dy, dx = vol.shape
        for z, y, x in zip(*np.nonzero(np.isin(vol, list(members))), strict=True):
            gx, gy, gz = bx * dx + int(x), by * dy + int(y), bz * dz + int(z)
            if _in(bounds, gx, gy, gz):
                rows.setdefault((gz, gy), set()).add(gx)
    runs = []
    for (z, y), xs in sorted(rows.items()):
        ordered = sorted(xs)
        start = prev = ordered[0]
        for x in [*ordered[1:], None]:
            if x is not None and x == prev + 1:
                prev = x
                continue
            runs.append((start, y, z, prev - start + 1))
            if x is not None:
                start = prev = x
    return np.array(runs, np.int32).reshape(-1, 4)


def binary_blocks(blocks: Iterable[LabelBlock], label: int, supervoxels: Iterable[int]) -> bytes:
    """GET sparsevol format=blocks, voxel by voxel."""
    members = list({int(s) for s in supervoxels})
    out = bytearray()
    for (bx, by, bz), vol in blocks:
        mask = np.isin(vol, members)
        if not mask.any():
            continue
        dz, dy, dx = vol.shape
        if not out:
            out += struct.pack("<3IQ", dx // 8, dy // 8, dz // 8, label)
        out += struct.pack("<3i", bx * dx, by * dy, bz * dz)
        if mask.all():
            out.append(1)
            continue
        out.append(2)
        for sz, sy, sx in _subblocks(vol.shape):
            bits = mask[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8].reshape(-1)
            if not bits.any() or bits.all():
                out.append(1 if bits.all() else 0)
                continue
            out.append(2)
            packed = bytearray(64)
            for i, b in enumerate(bits):
                if b:
                    packed[i // 8] |= 1 << (i % 8)
            out += packed
    return bytes(out)


def encode_google(vol: NDArray[np.uint64]) -> bytes:
    """DVID's compressGoogle: order-of-appearance tables, one per 8x8x8 block."""
    gz, gy, gx = (n // 8 for n in vol.shape)
    out = bytearray(4 + 8 * gx * gy * gz)
    out[0] = 1
    for h, (bz, by, bx) in enumerate(_subblocks(vol.shape)):
        voxels = _voxels(vol, bz, by, bx)
        table: dict[int, int] = {}
        for v in voxels:
            table.setdefault(v, len(table))
        bits = math.ceil(math.log2(len(table))) if len(table) > 1 else 0
        bits = bits if bits <= 2 else 4 if bits <= 4 else 8 if bits <= 8 else 16
        values_at = len(out) // 4
        word = 0
        packed = bytearray()
        for i, v in enumerate(voxels):  # 32 // bits values per LE word, low bits first
            word |= table[v] << ((i * bits) % 32)
            if bits and ((i + 1) * bits) % 32 == 0:
                packed += struct.pack("<I", word)
                word = 0
        out += packed
        table_at = len(out) // 4
        out += b"".join(struct.pack("<Q", v) for v in table)
        struct.pack_into("<II", out, 4 + 8 * h, (table_at - 1) | (bits << 24), values_at - 1)
    return bytes(out)
