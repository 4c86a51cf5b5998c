"""numba kernels behind codec.py and counts.py; callers validate every input first.

Arrays come in flat (C order, x fastest) with their (Z, Y, X) dims, so the kernels
index one contiguous buffer. Sub-blocks are 8x8x8 and visited in z, y, x order.
"""

from __future__ import annotations

import numpy as np

from cas_dvid.datatypes.labelmap._jit import find_or_insert, jit, slot, table_shape

_LOCAL_SHIFT = np.uint64(64 - 10)  # 1024 slots: at most half full with 512 labels


@jit
def bits_for(n: int) -> int:
    """Return the bits per voxel index for a sub-block of ``n`` labels (DVID's bitsFor)."""
    if n < 2:
        return 0
    b = 0
    m = n - 1
    while m > 0:
        b += 1
        m >>= 1
    return b


@jit
def is_solid(flat: np.ndarray) -> bool:
    """Tell whether every voxel equals the first; stops at the first difference."""
    first = flat[0]
    for i in range(flat.shape[0]):
        if flat[i] != first:
            return False
    return True


@jit
def subblock_tables(
    flat: np.ndarray, dz: int, dy: int, dx: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Table each sub-block's labels in order of first appearance, and index each voxel.

    Returns (local_labels, local_counts, ns, vidx, total): sub-block ``i``'s labels are
    ``local_labels[o_i : o_i + ns[i]]`` with ``o_i = sum(ns[:i])``; ``vidx[512*i + v]``
    is voxel ``v``'s (z, y, x order) index into them; ``total = sum(ns)``.
    """
    gz, gy, gx = dz >> 3, dy >> 3, dx >> 3
    nsb = gz * gy * gx
    local_labels = np.empty(nsb * 512, np.uint64)
    local_counts = np.zeros(nsb * 512, np.int64)
    ns = np.empty(nsb, np.uint16)
    vidx = np.empty(nsb * 512, np.uint16)
    keys = np.empty(1024, np.uint64)
    vals = np.empty(1024, np.int32)
    stamp = np.zeros(1024, np.int32)  # slot s is occupied in sub-block g when stamp[s] == g
    total = 0
    sb = 0
    plane = dy * dx
    for sz in range(gz):
        for sy in range(gy):
            for sx in range(gx):
                gen = sb + 1
                n = 0
                last = flat[sz * 8 * plane + sy * 8 * dx + sx * 8]
                last_idx = -1
                k = sb * 512
                for z in range(8):
                    for y in range(8):
                        row = (sz * 8 + z) * plane + (sy * 8 + y) * dx + sx * 8
                        for x in range(8):
                            v = flat[row + x]
                            if v != last or last_idx < 0:
                                s = slot(v, _LOCAL_SHIFT)
                                while stamp[s] == gen and keys[s] != v:
                                    s = (s + 1) & 1023
                                if stamp[s] == gen:
                                    last_idx = vals[s]
                                else:
                                    stamp[s] = gen
                                    keys[s] = v
                                    vals[s] = n
                                    local_labels[total + n] = v
                                    last_idx = n
                                    n += 1
                                last = v
                            vidx[k] = last_idx
                            local_counts[total + last_idx] += 1
                            k += 1
                ns[sb] = n
                total += n
                sb += 1
    return local_labels, local_counts, ns, vidx, total


@jit
def block_table(local_labels: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Build the block label table (first appearance) and each local label's index in it."""
    cap, shift = table_shape(total)
    keys = np.empty(cap, np.uint64)
    vals = np.empty(cap, np.uint32)
    used = np.zeros(cap, np.bool_)
    labels = np.empty(total, np.uint64)
    indices = np.empty(total, np.uint32)
    n = 0
    for i in range(total):
        v = local_labels[i]
        g = find_or_insert(keys, vals, used, shift, v, n)
        if g == n:
            labels[n] = v
            n += 1
        indices[i] = g
    return labels[:n], indices


@jit
def pack_values(ns: np.ndarray, vidx: np.ndarray) -> np.ndarray:
    """Pack each sub-block's voxel indices, ``bits_for(ns[i])`` bits each, MSB first.

    512 voxels times b bits is always whole bytes, so no padding ever appears.
    """
    nbytes = 0
    for i in range(ns.shape[0]):
        nbytes += 64 * bits_for(int(ns[i]))
    out = np.empty(nbytes, np.uint8)
    p = 0
    for i in range(ns.shape[0]):
        b = bits_for(int(ns[i]))
        if b == 0:
            continue
        acc = 0
        nacc = 0
        base = i * 512
        for v in range(512):
            acc = (acc << b) | int(vidx[base + v])
            nacc += b
            while nacc >= 8:
                nacc -= 8
                out[p] = (acc >> nacc) & 0xFF
                p += 1
            acc &= (1 << nacc) - 1
    return out


@jit
def unpack_subblock(values: np.ndarray, start: int, b: int, out: np.ndarray) -> None:
    """Unpack one sub-block's 512 values of ``b`` bits (MSB first) from byte ``start``.

    PERF: decode_into and encoded_counts keep this loop fused into theirs; going
    through this helper measured ~30% slower decodes (bench_labelcodec).
    """
    mask = (1 << b) - 1
    acc = 0
    nacc = 0
    p = start
    for i in range(512):
        while nacc < b:
            acc = (acc << 8) | int(values[p])
            p += 1
            nacc += 8
        nacc -= b
        out[i] = (acc >> nacc) & mask
        acc &= (1 << nacc) - 1


@jit
def decode_into(
    out: np.ndarray,
    dz: int,
    dy: int,
    dx: int,
    labels: np.ndarray,
    ns: np.ndarray,
    indices: np.ndarray,
    values: np.ndarray,
) -> int:
    """Fill ``out`` (flat) from a Block's parts.

    Returns -1, or the first sub-block with a value beyond its label list (the caller
    has checked all sizes and indices).
    """
    gz, gy, gx = dz >> 3, dy >> 3, dx >> 3
    plane = dy * dx
    local = np.empty(512, np.uint64)
    ipos = 0
    vpos = 0
    sb = 0
    for sz in range(gz):
        for sy in range(gy):
            for sx in range(gx):
                n = int(ns[sb])
                corner = sz * 8 * plane + sy * 8 * dx + sx * 8
                if n <= 1:
                    fill = labels[indices[ipos]] if n == 1 else np.uint64(0)
                    for z in range(8):
                        for y in range(8):
                            row = corner + z * plane + y * dx
                            for x in range(8):
                                out[row + x] = fill
                else:
                    for i in range(n):
                        local[i] = labels[indices[ipos + i]]
                    b = bits_for(n)
                    mask = (1 << b) - 1
                    acc = 0
                    nacc = 0
                    p = vpos
                    for z in range(8):
                        for y in range(8):
                            row = corner + z * plane + y * dx
                            for x in range(8):
                                while nacc < b:
                                    acc = (acc << 8) | int(values[p])
                                    p += 1
                                    nacc += 8
                                nacc -= b
                                v = (acc >> nacc) & mask
                                acc &= (1 << nacc) - 1
                                if v >= n:
                                    return sb
                                out[row + x] = local[v]
                    vpos += 64 * b
                ipos += n
                sb += 1
    return -1


@jit
def encoded_counts(
    ns: np.ndarray, indices: np.ndarray, nlabels: int, values: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Count voxels per label-table entry, straight from a Block's packed values.

    Returns (counts per table index, voxels of Ns=0 sub-blocks (label 0), bad sub-block
    or -1), as decode_into would see them, without materialising a uint64 voxel.
    """
    counts = np.zeros(nlabels, np.int64)
    local = np.zeros(512, np.int64)
    zeros = 0
    ipos = 0
    vpos = 0
    for sb in range(ns.shape[0]):
        n = int(ns[sb])
        if n == 0:
            zeros += 512
        elif n == 1:
            counts[indices[ipos]] += 512
        else:
            b = bits_for(n)
            mask = (1 << b) - 1
            local[:n] = 0
            acc = 0
            nacc = 0
            p = vpos
            for _ in range(512):
                while nacc < b:
                    acc = (acc << 8) | int(values[p])
                    p += 1
                    nacc += 8
                nacc -= b
                v = (acc >> nacc) & mask
                acc &= (1 << nacc) - 1
                if v >= n:
                    return counts, zeros, sb
                local[v] += 1
            for i in range(n):
                counts[indices[ipos + i]] += local[i]
            vpos += 64 * b
        ipos += n
    return counts, zeros, -1


@jit
def is_canonical(nlabels: int, ns: np.ndarray, indices: np.ndarray, values: np.ndarray) -> bool:
    """Tell whether a Block's sub-block parts are laid out as the encoder lays them out.

    That is (``subblock_tables`` and ``block_table``): every sub-block has labels (no
    Ns = 0), its voxel values first appear as 0, 1, 2, ... and it lists each table
    entry once; the table entries first appear in ``indices`` in table order and are
    all used.

    The caller checks that the table's labels are distinct and the Block not solid.
    """
    seen = np.zeros(nlabels, np.int32)  # entry g listed in sub-block sb when seen[g] == sb + 1
    used = np.zeros(512, np.int32)
    vals = np.empty(512, np.int64)
    nxt_entry = 0
    ipos = 0
    vpos = 0
    for sb in range(ns.shape[0]):
        n = int(ns[sb])
        if n == 0:
            return False
        gen = sb + 1
        for i in range(n):
            g = int(indices[ipos + i])
            if seen[g] == gen:
                return False  # one entry twice in a sub-block
            if seen[g] == 0:
                if g != nxt_entry:
                    return False  # table not in order of first appearance
                nxt_entry += 1
            seen[g] = gen
        if n > 1:
            b = bits_for(n)
            unpack_subblock(values, vpos, b, vals)
            nxt = 0
            for v in vals:
                if v >= n:
                    return False
                if used[v] != gen:
                    if v != nxt:
                        return False  # local labels not in order of first appearance
                    used[v] = gen
                    nxt += 1
            if nxt != n:
                return False  # a listed label no voxel uses
            vpos += 64 * b
        ipos += n
    return nxt_entry == nlabels
