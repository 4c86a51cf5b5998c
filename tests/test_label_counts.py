"""Per-block label counts, from arrays and from encoded Blocks, against numpy.unique."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from _labeldata import (
    MAX_U64,
    distinct_labels,
    fixture_array,
    fixture_block,
    random_labels,
    voronoi,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import codec, counts, reference
from cas_dvid.errors import InvalidInputError


def _same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray]) -> None:
    assert got[0].dtype == np.uint64
    assert np.array_equal(got[0], want[0])
    assert np.array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "name",
    ["fib19-64x64x64-sample1.dat.gz", "cx-64x64x64-sample1.dat.gz", "cx-64x64x64-sample2.dat.gz"],
)
def test_fixture_counts(name: str) -> None:
    vol = fixture_array(name)
    want = reference.label_counts(vol)
    _same(counts.label_counts(vol), want)
    _same(counts.block_label_counts(codec.encode_block(vol)), want)


def test_counts_of_dvid_block() -> None:
    want = reference.label_counts(fixture_array("fib19-64x64x64-sample1.dat.gz"))
    _same(counts.block_label_counts(fixture_block()), want)
    assert int(want[1].sum()) == 64**3


blocks = st.builds(
    lambda n, seed, vor: (
        voronoi((32, 16, 24), n, seed)
        if vor
        else random_labels((16, 16, 16), distinct_labels(n, seed, extremes=True), seed)
    ),
    st.integers(1, 3000),
    st.integers(0, 2**32 - 1),
    st.booleans(),
)


@settings(max_examples=50, deadline=None)
@given(blocks)
@example(np.zeros((8, 8, 8), np.uint64))
@example(np.full((64, 64, 64), MAX_U64, np.uint64))
def test_counts_match_reference(vol: np.ndarray) -> None:
    want = reference.label_counts(vol)
    _same(counts.label_counts(vol), want)
    _same(counts.block_label_counts(codec.encode_block(vol)), want)


def test_duplicate_and_unused_table_entries() -> None:
    """DVID leaves duplicates (after merges) and unused entries in tables: sum and drop."""
    vol = np.zeros((16, 16, 16), np.uint64)
    vol[:8] = 5
    vol[8:, :8] = 6
    data = codec.encode_block(vol)
    assert list(codec.parse_block(data).labels) == [5, 6, 0]
    # Label 6 merged into 5 as Block.MergeLabels leaves it, plus an unused entry 99.
    table = np.array([5, 5, 0, 99], "<u8").tobytes()
    edited = data[:12] + struct.pack("<I", 4) + table + data[16 + 3 * 8 :]
    got = counts.block_label_counts(edited)
    assert got[0].tolist() == [0, 5]
    assert got[1].tolist() == [1024, 3072]
    assert np.array_equal(codec.decode_block(edited), np.where(vol == 6, 5, vol))
    assert codec.block_labels(edited).tolist() == [0, 5]


def test_corrupt_values_are_rejected() -> None:
    data = bytearray(fixture_block())
    parts = codec.parse_block(bytes(data))
    data[parts.nbytes - len(parts.values) : parts.nbytes] = b"\xff" * len(parts.values)
    with pytest.raises(InvalidInputError, match="beyond its"):
        counts.block_label_counts(bytes(data))


def test_solid_counts() -> None:
    got = counts.block_label_counts(codec.solid_block(9, (16, 16, 16)))
    assert got[0].tolist() == [9]
    assert got[1].tolist() == [4096]
