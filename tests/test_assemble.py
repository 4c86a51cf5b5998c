"""The box-assembly kernel against its numpy twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.kernels import _reference
from cas_dvid.datatypes.kernels.assemble import assemble_box

Grid = tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int], tuple[int, int]]


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    """A block shape, a box shape, where the box starts in its first block, a z range."""
    block = tuple(draw(st.integers(1, 7)) for _ in range(3))
    box = tuple(draw(st.integers(1, 15)) for _ in range(3))
    origin = tuple(draw(st.integers(0, b - 1)) for b in block)
    z0 = draw(st.integers(0, box[0]))
    z1 = draw(st.integers(z0, box[0]))
    return block, box, origin, (z0, z1)  # type: ignore[return-value]


def _grid_blocks(
    rng: np.random.Generator, grid: Grid, dtype: str, missing: float
) -> list[np.ndarray | None]:
    block, box, origin, _ = grid
    n = int(np.prod([-(-(o + s) // b) for o, s, b in zip(origin, box, block, strict=True)]))
    out: list[np.ndarray | None] = []
    for _ in range(n):
        if rng.random() < missing:
            out.append(None)
            continue
        a = rng.integers(0, 255, block).astype(dtype)
        a.flags.writeable = False  # blocks come from the store read-only
        out.append(a)
    return out


@settings(max_examples=300, deadline=None)
@given(grids(), st.sampled_from(["<u1", "<u2", "<u4", "<u8", "<f4"]), st.integers(0, 2**32))
def test_assemble_box_matches_its_numpy_twin(grid: Grid, dtype: str, seed: int) -> None:
    block, box, origin, z_range = grid
    rng = np.random.default_rng(seed)
    blocks = _grid_blocks(rng, grid, dtype, missing=0.2)
    start = rng.integers(1, 255, box).astype(dtype)  # nonzero: a zeroed region shows
    want, got = start.copy(), start.copy()
    _reference.assemble_box(want, blocks, block, origin, z_range)
    assemble_box(got, blocks, block, origin, z_range)
    np.testing.assert_array_equal(got, want)


def test_assemble_box_of_64_cubes_equals_the_volume_they_tile() -> None:
    rng = np.random.default_rng(3)
    vol = rng.integers(0, 256, (192, 192, 192), dtype=np.uint8)
    blocks: list[np.ndarray | None] = [
        vol[z : z + 64, y : y + 64, x : x + 64].copy()
        for z in range(0, 192, 64)
        for y in range(0, 192, 64)
        for x in range(0, 192, 64)
    ]
    blocks[13] = None  # the middle block is not stored: zeros
    want = vol.copy()
    want[64:128, 64:128, 64:128] = 0
    got = np.full((150, 130, 120), 7, np.uint8)
    assemble_box(got, blocks, (64, 64, 64), (5, 33, 63))
    np.testing.assert_array_equal(got, want[5:155, 33:163, 63:183])
    half = np.full_like(got, 7)
    assemble_box(half, blocks, (64, 64, 64), (5, 33, 63), (40, 90))
    np.testing.assert_array_equal(half[40:90], got[40:90])
    assert (half[:40] == 7).all()
    assert (half[90:] == 7).all()


@pytest.mark.parametrize(
    ("why", "out", "n", "shape", "origin", "z_range"),
    [
        ("too few blocks", np.zeros((4, 4, 4), np.uint8), 7, (2, 2, 2), (0, 0, 0), None),
        ("origin outside", np.zeros((4, 4, 4), np.uint8), 27, (2, 2, 2), (0, 2, 0), None),
        ("z range", np.zeros((4, 4, 4), np.uint8), 8, (2, 2, 2), (0, 0, 0), (0, 5)),
        ("dtype", np.zeros((4, 4, 4), np.uint16), 8, (2, 2, 2), (0, 0, 0), None),
        ("strided out", np.zeros((4, 4, 8), np.uint8)[:, :, ::2], 8, (2, 2, 2), (0, 0, 0), None),
    ],
)
def test_assemble_box_refuses_what_it_would_read_or_write_outside_of(
    why: str,
    out: np.ndarray,
    n: int,
    shape: tuple[int, int, int],
    origin: tuple[int, int, int],
    z_range: tuple[int, int] | None,
) -> None:
    blocks: list[np.ndarray | None] = [np.ones(shape, np.uint8) for _ in range(n)]
    with pytest.raises(ValueError, match="assemble_box"):
        assemble_box(out, blocks, shape, origin, z_range)
    assert not out.any(), why
