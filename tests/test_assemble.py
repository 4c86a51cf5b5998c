"""The box-assembly kernel against its numpy twin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.kernels import _reference
from cas_dvid.datatypes.kernels.assemble import copy_block

Shapes = tuple[tuple[int, ...], tuple[int, ...], tuple[slice, ...], tuple[slice, ...]]


@st.composite
def regions(draw: st.DrawFn) -> Shapes:
    """An out shape, a block shape and regions of one size in each."""
    block = tuple(draw(st.integers(1, 9)) for _ in range(3))
    out = tuple(draw(st.integers(1, 12)) for _ in range(3))
    dst, src = [], []
    for b, o in zip(block, out, strict=True):
        n = draw(st.integers(0, min(b, o)))
        s0, d0 = draw(st.integers(0, b - n)), draw(st.integers(0, o - n))
        src.append(slice(s0, s0 + n))
        dst.append(slice(d0, d0 + n))
    return out, block, tuple(dst), tuple(src)


@settings(max_examples=300, deadline=None)
@given(regions(), st.sampled_from(["<u1", "<u2", "<u4", "<u8", "<f4"]), st.integers(0, 2**32))
def test_copy_block_matches_numpy(shapes: Shapes, dtype: str, seed: int) -> None:
    out_shape, block_shape, dst, src = shapes
    rng = np.random.default_rng(seed)
    block = rng.integers(0, 255, block_shape).astype(dtype)
    block.flags.writeable = False  # blocks come from the store read-only
    start = rng.integers(0, 255, out_shape).astype(dtype)
    want, got = start.copy(), start.copy()
    _reference.copy_block(want, dst, block, src)
    copy_block(got, dst, block, src)
    np.testing.assert_array_equal(got, want)


def test_copy_block_a_64_cube_into_an_unaligned_box_and_a_slab_of_it() -> None:
    rng = np.random.default_rng(1)
    block = rng.integers(0, 256, (64, 64, 64), dtype=np.uint8)
    dst = (slice(30, 94), slice(5, 69), slice(0, 34))
    src = (slice(0, 64), slice(0, 64), slice(30, 64))
    want = np.zeros((100, 90, 80), np.uint8)
    got = want.copy()
    _reference.copy_block(want, dst, block, src)
    copy_block(got, dst, block, src)
    np.testing.assert_array_equal(got, want)
    slab = np.zeros((64, 90, 80), np.uint8)  # a C-contiguous z-slab of a bigger array
    whole = np.zeros((200, 90, 80), np.uint8)
    copy_block(whole[100:164], (slice(0, 64), *dst[1:]), block, src)
    _reference.copy_block(slab, (slice(0, 64), *dst[1:]), block, src)
    np.testing.assert_array_equal(whole[100:164], slab)
    assert not whole[:100].any()
    assert not whole[164:].any()


def test_copy_block_non_contiguous_falls_back_to_numpy() -> None:
    block = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8)[:, :, ::2]
    got = np.zeros((4, 6, 4), np.uint16)
    full = (slice(0, 4), slice(0, 6), slice(0, 4))
    copy_block(got, full, block, full)
    np.testing.assert_array_equal(got, block)


def _s(*bounds: tuple[int, int] | tuple[int, int, int]) -> tuple[slice, ...]:
    return tuple(slice(*b) for b in bounds)


@pytest.mark.parametrize(
    ("dst", "src"),
    [
        pytest.param(_s((0, 5), (0, 4), (0, 4)), _s((0, 5), (0, 4), (0, 4)), id="past-out-end"),
        pytest.param(_s((0, 2), (0, 2), (0, 2)), _s((3, 5), (0, 2), (0, 2)), id="past-block-end"),
        pytest.param(_s((0, 2), (0, 2), (0, 2)), _s((0, 2), (0, 2), (0, 3)), id="sizes-differ"),
        pytest.param(_s((0, 2), (0, 2)), _s((0, 2), (0, 2)), id="2-d"),
        pytest.param(_s((0, 4, 2), (0, 2), (0, 2)), _s((0, 2), (0, 2), (0, 2)), id="step"),
    ],
)
def test_copy_block_refuses_bad_regions(dst: tuple[slice, ...], src: tuple[slice, ...]) -> None:
    out = np.zeros((4, 4, 4), np.uint8)
    block = np.ones((4, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="copy_block"):
        copy_block(out, dst, block, src)
    assert not out.any()  # nothing written, out of bounds or in part
