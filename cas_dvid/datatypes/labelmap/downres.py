"""Label downsampling by 2 as DVID does it (labels/compressed.go downresArray, Downres).

The rule, for the user docs:

    Each voxel at scale s+1 covers a 2x2x2 cell of eight voxels at scale s. Its label
    is the non-zero label that occurs most often among those eight. Label 0
    (background) never votes: it wins only when all eight voxels are 0, so a single
    labelled voxel beats seven background ones. When two or more non-zero labels tie
    for the most votes (4-4, 3-3, 2-2-2, 2-2-1-1-..., or eight distinct labels), the
    numerically smallest of them wins. The result does not depend on the order in
    which DVID visits the voxels.

A scale s+1 block is made from the eight scale-s blocks it covers (its octants,
numbered ``4*z + 2*y + x`` by their offset within the pair), each downsampled into
its eighth of the block. :func:`downres_octants` mirrors DVID's ``Block.Downres``:
octants not given keep the existing lower-resolution content, and a block whose
given octants are all one-label with the same label becomes that one label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cas_dvid.datatypes.labelmap._jit import jit
from cas_dvid.errors import InvalidInputError

Octants = Sequence[NDArray[np.uint64] | None]


@jit
def _downres_kernel(flat: np.ndarray, dz: int, dy: int, dx: int, out: np.ndarray) -> None:
    cell = np.empty(8, np.uint64)
    plane = dy * dx
    lo = 0
    for z in range(0, dz, 2):
        for y in range(0, dy, 2):
            for x in range(0, dx, 2):
                base = z * plane + y * dx + x
                cell[0] = flat[base]
                cell[1] = flat[base + 1]
                cell[2] = flat[base + dx]
                cell[3] = flat[base + dx + 1]
                cell[4] = flat[base + plane]
                cell[5] = flat[base + plane + 1]
                cell[6] = flat[base + plane + dx]
                cell[7] = flat[base + plane + dx + 1]
                out[lo] = _vote(cell)
                lo += 1


@jit
def _vote(cell: np.ndarray) -> np.uint64:
    first = cell[0]
    same = True
    for i in range(1, 8):
        if cell[i] != first:
            same = False
            break
    if same:
        return first  # type: ignore[no-any-return]
    winner = np.uint64(0)
    best = 0
    for i in range(8):
        v = cell[i]
        if v == 0:
            continue
        seen = False
        for j in range(i):
            if cell[j] == v:
                seen = True
                break
        if seen:
            continue
        votes = 1
        for j in range(i + 1, 8):
            if cell[j] == v:
                votes += 1
        if votes > best or (votes == best and v < winner):
            winner = v
            best = votes
    return winner


def _check(vol: NDArray[np.generic], what: str) -> NDArray[np.uint64]:
    if not isinstance(vol, np.ndarray) or vol.dtype.kind != "u" or vol.dtype.itemsize != 8:
        got = vol.dtype if isinstance(vol, np.ndarray) else type(vol).__name__
        raise InvalidInputError(f"{what} must be a uint64 numpy array; got {got}")
    if vol.ndim != 3 or any(n % 2 or n == 0 for n in vol.shape):
        raise InvalidInputError(f"{what} must be 3-d with even sides; got shape {vol.shape}")
    return np.ascontiguousarray(vol, dtype=np.uint64)


def downres_labels(vol: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Downsample a (z, y, x) uint64 array by 2 on each axis (module docstring's rule).

    Returns a new array of half the shape.
    """
    arr = _check(vol, "label volume")
    dz, dy, dx = arr.shape
    out = np.empty(dz * dy * dx // 8, np.uint64)
    _downres_kernel(arr.reshape(-1), dz, dy, dx, out)
    return out.reshape(dz // 2, dy // 2, dx // 2)


def _solid(vol: NDArray[np.uint64]) -> int | None:
    flat = vol.reshape(-1)
    first = flat[0]
    return int(first) if bool((flat == first).all()) else None


def _common_solid(octants: Octants) -> int | None:
    """DVID's setBlank: the label when every octant is one-label (absent = label 0)."""
    label: int | None = None
    for oct in octants:
        lbl = 0 if oct is None else _solid(oct)
        if lbl is None or (label is not None and lbl != label):
            return None
        label = lbl
    return label


def downres_octants(
    octants: Octants, prior: NDArray[np.uint64] | None, shape: tuple[int, int, int]
) -> NDArray[np.uint64]:
    """Build the scale s+1 block of ``shape`` (z, y, x) from up to eight scale-s blocks.

    Args:
        octants: eight entries, index ``4*oz + 2*oy + ox``; each a ``shape`` array or
            None where that hi-res block did not change.
        prior: the existing scale s+1 block (None if absent: all 0). Only read when some
            octant is None.
        shape: the block shape.

    As DVID: if every octant is uniform with one common label, None counting as label
    0, the result is uniform with that label (even where ``prior`` had other labels);
    otherwise present octants are downsampled into their eighth and absent octants keep
    ``prior``'s voxels.

    """
    if len(octants) != 8:
        raise InvalidInputError(f"expected 8 octants; got {len(octants)}")
    checked = [None if o is None else _check(o, f"octant {i}") for i, o in enumerate(octants)]
    for i, o in enumerate(checked):
        if o is not None and o.shape != tuple(shape):
            raise InvalidInputError(f"octant {i} has shape {o.shape}; expected {tuple(shape)}")
    label = _common_solid(checked)
    if label is not None:
        return np.full(shape, label, np.uint64)
    if prior is not None and any(o is None for o in checked):
        out = _check(prior, "prior block").copy()
        if out.shape != tuple(shape):
            raise InvalidInputError(f"prior block has shape {out.shape}; expected {shape}")
    else:
        out = np.zeros(shape, np.uint64)
    hz, hy, hx = shape[0] // 2, shape[1] // 2, shape[2] // 2
    for i, o in enumerate(checked):
        if o is not None:
            oz, oy, ox = i >> 2, (i >> 1) & 1, i & 1
            out[oz * hz : (oz + 1) * hz, oy * hy : (oy + 1) * hy, ox * hx : (ox + 1) * hx] = (
                downres_labels(o)
            )
    return out
