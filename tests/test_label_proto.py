"""DVID's protobuf messages and the LabelIndex block-coordinate key."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cas_dvid.api import protobuf as handrolled
from cas_dvid.datatypes.labelmap import labelindex
from cas_dvid.errors import InvalidInputError
from cas_dvid.proto import keyvalue_pb2, labelops_pb2

LIMIT = 2**20 - 1
coord = st.integers(-LIMIT, LIMIT)


@pytest.mark.parametrize(
    ("xyz", "key"),
    [
        pytest.param((0, 0, 0), 0, id="origin"),
        pytest.param((1, 2, 3), 1 | 2 << 21 | 3 << 42, id="positive"),
        pytest.param((-1, 0, 0), 0x100001, id="negative-x"),
        pytest.param((0, -2, 0), (0x100000 | 2) << 21, id="negative-y"),
        pytest.param((-3, -4, -5), 0x100003 | 0x100004 << 21 | 0x100005 << 42, id="all-negative"),
        pytest.param((LIMIT, -LIMIT, LIMIT), LIMIT | 0x1FFFFF << 21 | LIMIT << 42, id="limits"),
    ],
)
def test_block_index_matches_dvid(xyz: tuple[int, int, int], key: int) -> None:
    """Keys computed by hand from labels/index.go EncodeBlockIndex."""
    assert labelindex.encode_block_index(*xyz) == key
    assert labelindex.decode_block_index(key) == xyz
    assert labelindex.encode_block_indices([xyz]).tolist() == [key]
    assert labelindex.decode_block_indices([key]).tolist() == [list(xyz)]


@given(coord, coord, coord)
@example(-LIMIT, -LIMIT, -LIMIT)
def test_block_index_round_trip(x: int, y: int, z: int) -> None:
    key = labelindex.encode_block_index(x, y, z)
    assert 0 <= key < 2**63
    assert labelindex.decode_block_index(key) == (x, y, z)
    assert labelindex.decode_block_index(key | 1 << 63) == (x, y, z)  # bit 63 ignored


@given(st.lists(st.tuples(coord, coord, coord), max_size=50))
def test_vectorised_block_index_matches_scalar(coords: list[tuple[int, int, int]]) -> None:
    keys = labelindex.encode_block_indices(np.array(coords, np.int64).reshape(-1, 3))
    assert keys.dtype == np.uint64
    assert keys.tolist() == [labelindex.encode_block_index(*c) for c in coords]
    assert [tuple(c) for c in labelindex.decode_block_indices(keys).tolist()] == coords


def test_negative_zero_decodes_to_zero() -> None:
    assert labelindex.decode_block_index(0x100000) == (0, 0, 0)


@pytest.mark.parametrize("bad", [2**20, -(2**20), 2**31])
def test_block_index_rejects_out_of_range(bad: int) -> None:
    with pytest.raises(InvalidInputError, match="outside"):
        labelindex.encode_block_index(bad, 0, 0)
    with pytest.raises(InvalidInputError):
        labelindex.encode_block_indices([(0, bad, 0)])


def test_label_index_round_trip_and_wire_bytes() -> None:
    idx = labelindex.make_label_index(
        7, {(1, -2, 3): {100: 5, 101: 0}, (0, 0, 0): {0: 0}}, last_mutid=9, last_mod_user="me"
    )
    assert len(idx.blocks) == 1  # zero counts and empty blocks dropped
    data = idx.SerializeToString(deterministic=True)
    back = labelindex.parse_label_index(data)
    assert labelindex.index_blocks(back) == {(1, -2, 3): {100: 5}}
    assert (back.label, back.last_mutid, back.last_mod_user) == (7, 9, "me")
    # field 1 (blocks map entry), then label=2 (varint 7), last_mutid=3, last_mod_user=5
    key = labelindex.encode_block_index(1, -2, 3)
    entry = labelops_pb2.LabelIndex.BlocksEntry(key=key, value=back.blocks[key]).SerializeToString()
    assert data == b"\x0a" + bytes([len(entry)]) + entry + b"\x10\x07\x18\x09\x2a\x02me"


def test_label_indices_and_mapping_ops() -> None:
    many = labelops_pb2.LabelIndices(indices=[labelindex.make_label_index(i, {}) for i in (1, 2)])
    back = labelindex.parse_label_indices(many.SerializeToString())
    assert [i.label for i in back.indices] == [1, 2]
    ops = labelops_pb2.MappingOps(
        mappings=[labelops_pb2.MappingOp(mutid=3, mapped=10, original=[4, 5])]
    )
    assert labelops_pb2.MappingOps.FromString(ops.SerializeToString()) == ops
    for name in (
        "RenumberOp",
        "MergeOp",
        "CleaveOp",
        "SplitOp",
        "SVSplit",
        "SupervoxelSplitOp",
        "OpCompleted",
        "Affinity",
        "Affinities",
        "AffinityTable",
        "SVCount",
    ):
        assert getattr(labelops_pb2, name).DESCRIPTOR.full_name == f"proto.{name}"


def test_bad_protobuf_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="LabelIndex"):
        labelindex.parse_label_index(b"\x0a\xff\xff")
    with pytest.raises(InvalidInputError, match="LabelIndices"):
        labelindex.parse_label_indices(b"\x0a\x05\x01")


def test_keyvalue_messages_agree_with_the_api_handrolled_codec() -> None:
    data = handrolled.encode_keyvalues([("a", b"1"), ("bee", b"")])
    kvs = keyvalue_pb2.KeyValues.FromString(data)
    assert [(kv.key, kv.value) for kv in kvs.kvs] == [("a", b"1"), ("bee", b"")]
    keys = keyvalue_pb2.Keys(
        keys=["x", "y"], key_ranges=[keyvalue_pb2.KeyRange(key="z", byte_start=1, byte_end=4)]
    )
    got_keys, got_ranges = handrolled.decode_keys(keys.SerializeToString())
    assert list(got_keys) == ["x", "y"]
    assert got_ranges == [("z", 1, 4)]
