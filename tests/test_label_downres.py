"""Label downres: DVID's vote rule, its tie and zero handling, and octant assembly."""

from __future__ import annotations

import numpy as np
import pytest
from _labeldata import MAX_U64, distinct_labels, fixture_array, random_labels, voronoi
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import downres, reference
from cas_dvid.errors import InvalidInputError


def _cell(values: list[int]) -> int:
    vol = np.array(values, np.uint64).reshape(2, 2, 2)
    got = int(downres.downres_labels(vol)[0, 0, 0])
    assert got == int(reference.downres_labels(vol)[0, 0, 0])
    return got


@pytest.mark.parametrize(
    ("cell", "winner"),
    [
        pytest.param([0] * 8, 0, id="all-zero"),
        pytest.param([0] * 7 + [5], 5, id="one-label-beats-seven-zeros"),
        pytest.param([0, 0, 0, 0, 0, 0, 7, 5], 5, id="tie-among-minority-smallest"),
        pytest.param([9, 9, 9, 9, 3, 3, 3, 3], 3, id="4-4-tie-smallest"),
        pytest.param([3, 3, 3, 3, 9, 9, 9, 9], 3, id="4-4-tie-order-free"),
        pytest.param([8, 8, 8, 2, 2, 0, 0, 0], 8, id="majority"),
        pytest.param([1, 2, 3, 4, 5, 6, 7, 8], 1, id="all-distinct"),
        pytest.param([2**64 - 1] * 2 + [2**63] * 2 + [0] * 4, 2**63, id="big-labels"),
        pytest.param([6, 6, 6, 6, 6, 6, 6, 6], 6, id="uniform"),
    ],
)
def test_vote_rule(cell: list[int], winner: int) -> None:
    assert _cell(cell) == winner


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 2, 3, 2**64 - 1]), min_size=8, max_size=8))
def test_vote_rule_matches_reference_on_cells(cell: list[int]) -> None:
    _cell(cell)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1), st.booleans())
@example(1, 0, False)
def test_downres_matches_reference(n: int, seed: int, vor: bool) -> None:
    shape = (16, 8, 24)
    pool = distinct_labels(n, seed, extremes=True)
    vol = voronoi(shape, n, seed) if vor else random_labels(shape, pool, seed)
    vol[random_labels(shape, np.array([0, 1], np.uint64), seed + 1) == 0] = 0  # holes
    got = downres.downres_labels(vol)
    assert got.shape == (8, 4, 12)
    assert np.array_equal(got, reference.downres_labels(vol))


def test_downres_fixture_block() -> None:
    vol = fixture_array("fib19-64x64x64-sample1.dat.gz")
    assert np.array_equal(downres.downres_labels(vol), reference.downres_labels(vol))


def test_downres_rejects_odd_or_wrong_type() -> None:
    with pytest.raises(InvalidInputError, match="even"):
        downres.downres_labels(np.zeros((4, 4, 3), np.uint64))
    with pytest.raises(InvalidInputError, match="uint64"):
        downres.downres_labels(np.zeros((4, 4, 4), np.int32))


SHAPE = (16, 16, 16)


def _octants(seed: int, present: list[bool], solid: list[int | None]) -> list[np.ndarray | None]:
    out: list[np.ndarray | None] = []
    for i in range(8):
        if not present[i]:
            out.append(None)
        elif solid[i] is not None:
            out.append(np.full(SHAPE, solid[i], np.uint64))
        else:
            out.append(voronoi(SHAPE, 20, seed + i))
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.lists(st.booleans(), min_size=8, max_size=8),
    st.lists(st.one_of(st.none(), st.sampled_from([0, 4, MAX_U64])), min_size=8, max_size=8),
    st.booleans(),
)
@example(0, [True] * 8, [4] * 8, True)  # all solid, same label: solid result
@example(0, [False] * 8, [None] * 8, True)  # nothing given: DVID's setBlank gives all 0
@example(0, [True] + [False] * 7, [0] + [None] * 7, True)  # solid 0 + absent: all 0
@example(0, [True] + [False] * 7, [4] + [None] * 7, True)  # absent octants keep prior
def test_octants_match_reference(
    seed: int, present: list[bool], solid: list[int | None], with_prior: bool
) -> None:
    octants = _octants(seed, present, [None if s is None else int(s) for s in solid])
    prior = voronoi(SHAPE, 30, seed + 99) if with_prior else None
    got = downres.downres_octants(octants, prior, SHAPE)
    assert np.array_equal(got, reference.downres_octants(octants, prior, SHAPE))


def test_absent_octants_keep_prior() -> None:
    prior = np.full(SHAPE, 77, np.uint64)
    octants: list[np.ndarray | None] = [None] * 8
    octants[7] = np.full(SHAPE, 5, np.uint64)
    got = downres.downres_octants(octants, prior, SHAPE)
    assert (got[8:, 8:, 8:] == 5).all()
    assert (got[:8] == 77).all()
    assert (got[8:, :8] == 77).all()


def test_all_solid_zero_octants_blank_the_prior() -> None:
    """DVID's setBlank treats absent octants as label 0: a solid-0 octant clears all."""
    octants: list[np.ndarray | None] = [None] * 8
    octants[0] = np.zeros(SHAPE, np.uint64)
    got = downres.downres_octants(octants, np.full(SHAPE, 77, np.uint64), SHAPE)
    assert not got.any()


def test_octants_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="8 octants"):
        downres.downres_octants([None] * 7, None, SHAPE)
    bad: list[np.ndarray | None] = [np.zeros((8, 8, 8), np.uint64)] + [None] * 7
    with pytest.raises(InvalidInputError, match="octant 0 has shape"):
        downres.downres_octants(bad, None, SHAPE)
