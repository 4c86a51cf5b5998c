"""DVID compressed label Block codec: DVID's own bytes, reference twin, round trips, bad input."""

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
    stream_block,
    voronoi,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import codec, reference
from cas_dvid.errors import InvalidInputError

ARRAYS = [
    "fib19-64x64x64-sample1.dat.gz",
    "fib19-64x64x64-sample2.dat.gz",
    "cx-64x64x64-sample1.dat.gz",
    "cx-64x64x64-sample2.dat.gz",
]


# --- DVID's bytes -----------------------------------------------------------------------


def test_dvid_block_decodes_to_its_array() -> None:
    got = codec.decode_block(fixture_block())
    assert got.dtype == np.uint64
    assert np.array_equal(got, fixture_array("fib19-64x64x64-sample1.dat.gz"))


def test_reencoding_dvid_block_gives_dvid_bytes() -> None:
    data = fixture_block()
    assert codec.encode_block(codec.decode_block(data)) == data
    assert codec.encode_block(fixture_array("fib19-64x64x64-sample1.dat.gz")) == data


def test_dvid_table_order_is_not_deterministic_but_the_rest_is() -> None:
    """stream_1block's table is in Go map order; all else matches ours byte for byte."""
    theirs = codec.parse_block(stream_block())
    ours = codec.parse_block(codec.encode_block(codec.decode_block(stream_block())))
    assert list(theirs.labels) == [6, 5, 8, 9, 1, 7, 4, 3, 0, 2]  # not first-appearance
    assert list(ours.labels) == [5, 8, 9, 0, 1, 7, 4, 3, 6, 2]  # first-appearance
    assert np.array_equal(theirs.ns, ours.ns)
    assert np.array_equal(theirs.values, ours.values)
    assert np.array_equal(theirs.labels[theirs.indices], ours.labels[ours.indices])
    assert theirs.nbytes == ours.nbytes == len(stream_block())


@pytest.mark.parametrize("name", ARRAYS)
def test_fixture_arrays_round_trip(name: str) -> None:
    arr = fixture_array(name)
    data = codec.encode_block(arr)
    assert np.array_equal(codec.decode_block(data), arr)
    assert np.array_equal(codec.block_labels(data), np.unique(arr))


def test_fast_encoder_matches_reference_twin_on_dvid_data() -> None:
    arr = fixture_array("fib19-64x64x64-sample1.dat.gz")
    assert reference.encode_block(arr) == codec.encode_block(arr)
    assert np.array_equal(reference.decode_block(fixture_block()), arr)


# --- round trips ------------------------------------------------------------------------

SHAPES = [(8, 8, 8), (16, 16, 16), (16, 8, 24), (32, 16, 8)]


def _make(kind: str, shape: tuple[int, int, int], nlabels: int, seed: int) -> np.ndarray:
    nvox = shape[0] * shape[1] * shape[2]
    if kind == "solid":
        return np.full(shape, distinct_labels(1, seed)[0], np.uint64)
    if kind == "voronoi":
        return voronoi(shape, min(nlabels, nvox), seed)
    if kind == "stripes":  # structured: label changes along x every few voxels
        pool = distinct_labels(max(nlabels, 1), seed, extremes=True)
        x = np.arange(shape[2]) // max(1, seed % 5 + 1)
        return np.broadcast_to(pool[x % len(pool)], shape).copy()
    return random_labels(shape, distinct_labels(min(nlabels, nvox), seed, extremes=True), seed)


volumes = st.builds(
    _make,
    st.sampled_from(["random", "voronoi", "solid", "stripes"]),
    st.sampled_from(SHAPES),
    st.integers(1, 4096),
    st.integers(0, 2**32 - 1),
)


@settings(max_examples=60, deadline=None)
@given(volumes)
@example(np.zeros((8, 8, 8), np.uint64))
@example(np.full((16, 16, 16), MAX_U64, np.uint64))
@example(np.array([0, MAX_U64] * 256, np.uint64).reshape(8, 8, 8))
@example(np.arange(512, dtype=np.uint64).reshape(8, 8, 8))  # 512 labels: 9 bits
@example(np.arange(513, 513 + 4096, dtype=np.uint64).reshape(16, 16, 16) % 257)
def test_encode_matches_reference_and_round_trips(vol: np.ndarray) -> None:
    data = codec.encode_block(vol)
    assert data == reference.encode_block(vol)
    assert np.array_equal(codec.decode_block(data), vol)
    assert np.array_equal(reference.decode_block(data), vol)
    assert np.array_equal(codec.block_labels(data), np.unique(vol))
    assert codec.encode_block(vol.copy()) == data  # deterministic


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["random", "voronoi", "stripes"]),
    st.integers(2, 100_000),
    st.integers(0, 2**32 - 1),
)
@example("random", 100_000, 1)  # 100,000 distinct labels in one 64^3 block
@example("random", 2, 7)
@example("voronoi", 1000, 3)
def test_full_blocks_round_trip(kind: str, nlabels: int, seed: int) -> None:
    vol = _make(kind, (64, 64, 64), nlabels, seed)
    data = codec.encode_block(vol)
    assert np.array_equal(codec.decode_block(data, (64, 64, 64)), vol)
    assert np.array_equal(codec.block_labels(data), np.unique(vol))


def test_many_distinct_labels() -> None:
    vol = distinct_labels(64**3, 5).reshape(64, 64, 64)
    data = codec.encode_block(vol)
    parts = codec.parse_block(data)
    assert len(parts.labels) == 64**3
    assert (parts.ns == 512).all()
    assert np.array_equal(codec.decode_block(data), vol)


# --- solid blocks and cheap reads ---------------------------------------------------------


@pytest.mark.parametrize("label", [0, 1, 2**63, 2**64 - 1])
def test_solid_blocks(label: int) -> None:
    data = codec.solid_block(label)
    assert len(data) == 24
    assert struct.unpack("<4IQ", data) == (8, 8, 8, 1, label)
    vol = np.full((64, 64, 64), label, np.uint64)
    assert codec.encode_block(vol) == data == reference.encode_block(vol)
    assert np.array_equal(codec.decode_block(data), vol)
    assert codec.solid_label(data) == label
    assert list(codec.block_labels(data)) == [label]


def test_solid_label_of_mixed_block_is_none() -> None:
    assert codec.solid_label(fixture_block()) is None


def test_solid_block_shape() -> None:
    data = codec.solid_block(3, (16, 32, 8))
    assert codec.decode_block(data).shape == (16, 32, 8)
    with pytest.raises(InvalidInputError, match="multiple of 8"):
        codec.solid_block(3, (16, 32, 9))
    with pytest.raises(InvalidInputError, match="uint64"):
        codec.solid_block(-1)


def test_block_labels_reads_tables_only() -> None:
    """Corrupt the voxel values: block_labels still answers, decode refuses."""
    data = bytearray(fixture_block())
    parts = codec.parse_block(bytes(data))
    start = parts.nbytes - len(parts.values)
    data[start : parts.nbytes] = b"\xff" * len(parts.values)
    assert np.array_equal(codec.block_labels(bytes(data)), np.unique(parts.labels))
    with pytest.raises(InvalidInputError, match="beyond its"):
        codec.decode_block(bytes(data))


def test_subblock_with_no_labels_is_zero() -> None:
    """Ns = 0 (DVID: uninitialised sub-block) decodes to label 0."""
    vol = np.full((16, 16, 16), 7, np.uint64)
    vol[0, 0, 0] = 9
    parts = codec.parse_block(codec.encode_block(vol))
    ns = parts.ns.copy()
    ns[1:] = 0
    blob = (
        struct.pack("<4I", 2, 2, 2, len(parts.labels))
        + parts.labels.tobytes()
        + ns.astype("<u2").tobytes()
        + parts.indices[: int(ns[0])].astype("<u4").tobytes()
        + parts.values[: 64 * 1].tobytes()
    )
    got = codec.decode_block(blob)
    want = np.zeros_like(vol)
    want[:8, :8, :8] = vol[:8, :8, :8]
    assert np.array_equal(got, want)
    assert list(codec.block_labels(blob)) == [0, 7, 9]


def test_trailing_bytes_are_ignored_like_dvid() -> None:
    data = fixture_block()
    assert np.array_equal(codec.decode_block(data + b"junk"), codec.decode_block(data))


# --- malformed input ----------------------------------------------------------------------


def _mutated(**fields: int) -> bytes:
    data = bytearray(fixture_block())
    for name, value in fields.items():
        struct.pack_into("<I", data, {"gx": 0, "gy": 4, "gz": 8, "n": 12}[name], value)
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"", "at least 24 bytes", id="empty"),
        pytest.param(fixture_block()[:23], "at least 24 bytes", id="short-header"),
        pytest.param(fixture_block()[:100], "truncated", id="truncated-labels"),
        pytest.param(fixture_block()[:1200], "truncated", id="truncated-indices"),
        pytest.param(fixture_block()[:-1], "truncated", id="truncated-values"),
        pytest.param(_mutated(n=0), "0 labels", id="no-labels"),
        pytest.param(_mutated(n=2**31), "truncated", id="huge-label-count"),
        pytest.param(_mutated(gx=0), "sub-blocks per axis", id="zero-grid"),
        pytest.param(_mutated(gx=129), "sub-blocks per axis", id="oversized-grid"),
        pytest.param(_mutated(gz=16), "label Block", id="grid-bigger-than-data"),
    ],
)
def test_malformed_blocks_raise_invalid_input(data: bytes, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        codec.decode_block(data)
    with pytest.raises(InvalidInputError):
        codec.block_labels(data)


def test_index_beyond_table_is_rejected() -> None:
    data = bytearray(fixture_block())
    parts = codec.parse_block(bytes(data))
    struct.pack_into("<I", data, 16 + 8 * 18 + 2 * 512, 18)
    assert len(parts.labels) == 18
    with pytest.raises(InvalidInputError, match="index 18 is beyond its 18-label table"):
        codec.decode_block(bytes(data))


def test_subblock_count_over_512_is_rejected() -> None:
    data = bytearray(fixture_block())
    struct.pack_into("<H", data, 16 + 8 * 18, 600)
    with pytest.raises(InvalidInputError, match="600 labels; at most 512"):
        codec.decode_block(bytes(data))


def test_wrong_shape_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="64x64x64 voxels; expected 32x32x32"):
        codec.decode_block(fixture_block(), (32, 32, 32))
    with pytest.raises(InvalidInputError, match="expected 32x32x32"):
        codec.decode_block(codec.parse_block(fixture_block()), (32, 32, 32))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 2**32 - 1))
def test_garbage_never_crashes(junk: bytes, n: int) -> None:
    """Random bytes after a plausible header: a clean error or a valid decode, nothing else."""
    data = struct.pack("<4I", 2, 2, 2, n % 40) + junk
    try:
        vol = codec.decode_block(data)
    except InvalidInputError:
        return
    assert vol.shape == (16, 16, 16)


@pytest.mark.parametrize(
    ("vol", "match"),
    [
        pytest.param(np.zeros((64, 64, 64), np.int64), "uint64", id="int64"),
        pytest.param(np.zeros((64, 64, 64), np.uint32), "uint64", id="uint32"),
        pytest.param(np.zeros((64, 64), np.uint64), "3-d", id="2d"),
        pytest.param(np.zeros((64, 64, 60), np.uint64), "multiple of 8", id="not-multiple"),
        pytest.param(np.zeros((8, 8, 2048), np.uint64), "1024", id="too-big"),
        pytest.param([[[0]]], "numpy", id="list"),
    ],
)
def test_encode_rejects_bad_volumes(vol: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        codec.encode_block(vol)  # type: ignore[arg-type]


def test_encode_accepts_views_and_big_endian() -> None:
    vol = fixture_array("cx-64x64x64-sample1.dat.gz")
    want = codec.encode_block(vol)
    assert codec.encode_block(vol.astype(">u8")) == want
    bigger = np.zeros((64, 64, 128), np.uint64)
    bigger[:, :, 64:] = vol
    assert codec.encode_block(bigger[:, :, 64:]) == want


def test_encode_with_counts() -> None:
    vol = fixture_array("fib19-64x64x64-sample2.dat.gz")
    data, labels, counts = codec.encode_block_with_counts(vol)
    assert data == codec.encode_block(vol)
    assert list(labels) == list(codec.parse_block(data).labels)
    want = dict(zip(*np.unique(vol, return_counts=True), strict=True))
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == want
