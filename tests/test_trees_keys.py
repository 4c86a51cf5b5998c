"""Block keys sort like their coordinates; box and prefix ranges cover exactly what they say."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.errors import InvalidInputError
from cas_dvid.trees import MemoryNodeStore, Tree
from cas_dvid.trees.keys import (
    BLOCK_KEY_SIZE,
    block_key,
    block_keys,
    box_ranges,
    parse_block_key,
    prefix_range,
)

I32 = st.integers(-(2**31), 2**31 - 1)
COORD = st.tuples(st.integers(0, 255), I32, I32, I32)


@settings(max_examples=300, deadline=None)
@given(COORD, COORD)
def test_block_key_order_is_scale_z_y_x_order(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    ka, kb = block_key(*a), block_key(*b)
    assert len(ka) == BLOCK_KEY_SIZE
    assert parse_block_key(ka) == a
    assert (ka < kb) == (a < b)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 255), st.lists(st.tuples(I32, I32, I32), max_size=20))
def test_block_keys_matches_scalar_twin(scale: int, zyx: list[tuple[int, int, int]]) -> None:
    assert block_keys(scale, zyx) == [block_key(scale, *c) for c in zyx]


@pytest.mark.parametrize(
    "coord",
    [
        pytest.param((256, 0, 0, 0), id="scale"),
        pytest.param((-1, 0, 0, 0), id="neg-scale"),
        pytest.param((0, 2**31, 0, 0), id="z-high"),
        pytest.param((0, 0, -(2**31) - 1, 0), id="y-low"),
    ],
)
def test_block_key_rejects_out_of_range(coord: tuple[int, int, int, int]) -> None:
    with pytest.raises(InvalidInputError):
        block_key(*coord)
    with pytest.raises(InvalidInputError):
        block_keys(coord[0], [coord[1:]])


def test_parse_block_key_rejects_wrong_length() -> None:
    with pytest.raises(InvalidInputError, match="13-byte"):
        parse_block_key(b"\x00" * 12)


def test_box_ranges_cover_exactly_the_box() -> None:
    rnd = random.Random(3)
    coords = {
        (s, rnd.randint(-4, 4), rnd.randint(-4, 4), rnd.randint(-4, 4))
        for s in (0, 1)
        for _ in range(400)
    }
    tree = Tree(MemoryNodeStore())
    root = tree.build(sorted((block_key(*c), b"") for c in coords))
    lo, hi = (-2, -3, -1), (1, 2, 3)
    ranges = box_ranges(0, lo, hi)
    assert len(ranges) == 4 * 6
    assert ranges == sorted(ranges)
    got = [
        parse_block_key(k) for a, b in ranges for k, _ in tree.range(root, a, b, end_inclusive=True)
    ]
    inside = [c for c in coords if all(a <= v <= b for a, v, b in zip(lo, c[1:], hi, strict=True))]
    want = sorted(c for c in inside if c[0] == 0)
    assert got == want
    assert box_ranges(0, (0, 0, 1), (0, 0, 0)) == []


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        pytest.param(b"ab", b"ac", id="plain"),
        pytest.param(b"a\xff", b"b", id="trailing-ff"),
        pytest.param(b"\xff\xff", None, id="all-ff"),
        pytest.param(b"", None, id="empty"),
    ],
)
def test_prefix_range(prefix: bytes, end: bytes | None) -> None:
    assert prefix_range(prefix) == (prefix, end)
    keys = [bytes(p) for n in range(4) for p in itertools.product(b"ab\xff", repeat=n)]
    tree = Tree(MemoryNodeStore())
    root = tree.build([(k, b"") for k in sorted(keys)])
    start, stop = prefix_range(prefix)
    got = [k for k, _ in tree.range(root, start, stop)]
    assert got == sorted(k for k in keys if k.startswith(prefix))
