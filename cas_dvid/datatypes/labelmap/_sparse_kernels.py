"""numba kernels behind rle.py and sparsevol.py; callers validate every input first."""

from __future__ import annotations

import numpy as np

from cas_dvid.datatypes.labelmap._jit import jit


@jit
def member_mask(flat: np.ndarray, members: np.ndarray) -> np.ndarray:
    """uint8 mask of the voxels whose label is in ``members`` (sorted, distinct).

    Labels come in long runs, so the last answer is cached before a binary search.
    """
    out = np.empty(flat.shape[0], np.uint8)
    if members.shape[0] == 0:
        out[:] = 0
        return out
    last = flat[0]
    last_in = np.uint8(0)
    i = np.searchsorted(members, last)
    if i < members.shape[0] and members[i] == last:
        last_in = np.uint8(1)
    for p in range(flat.shape[0]):
        v = flat[p]
        if v != last:
            last = v
            i = np.searchsorted(members, v)
            last_in = np.uint8(1) if i < members.shape[0] and members[i] == v else np.uint8(0)
        out[p] = last_in
    return out


@jit
def block_runs(
    mask: np.ndarray,
    dims: np.ndarray,
    origin: np.ndarray,
    clip: np.ndarray,
    buf_start: np.ndarray,
    buf_len: np.ndarray,
    out: np.ndarray,
) -> int:
    """Append to ``out`` the X runs of one block that end inside it; returns how many.

    Args:
        mask: flat uint8 foreground mask, (z, y, x) order.
        dims: (dz, dy, dx) of the block.
        origin: the block's first voxel (x, y, z).
        clip: local inclusive (x0, x1, y0, y1, z0, z1) to scan.
        buf_start: per row ``z*dy + y``, the start x of a run that reached the
            previous block's last X. Runs continue from it; runs reaching this
            block's last X are left there for the next block.
        buf_len: that run's length so far (0 = none).
        out: (rows, 4) int32 x, y, z, length; room for every run of the block.

    """
    dy, dx = dims[1], dims[2]
    x0, x1, y0, y1, z0, z1 = clip[0], clip[1], clip[2], clip[3], clip[4], clip[5]
    n = 0
    for z in range(z0, z1 + 1):
        for y in range(y0, y1 + 1):
            r = z * dy + y
            length = buf_len[r]
            start = buf_start[r]
            row = r * dx
            for x in range(x0, x1 + 1):
                if mask[row + x]:
                    if length == 0:
                        start = origin[0] + x
                    length += 1
                elif length > 0:
                    out[n, 0] = start
                    out[n, 1] = origin[1] + y
                    out[n, 2] = origin[2] + z
                    out[n, 3] = length
                    n += 1
                    length = 0
            if length > 0 and x1 == dx - 1:
                buf_start[r] = start
                buf_len[r] = length
            else:
                if length > 0:
                    out[n, 0] = start
                    out[n, 1] = origin[1] + y
                    out[n, 2] = origin[2] + z
                    out[n, 3] = length
                    n += 1
                buf_len[r] = 0
    return n
