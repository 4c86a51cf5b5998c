"""Node codec, boundary hash and walking helpers, each against its plain twin."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects.ids import Kind, content_id
from cas_dvid.trees import EMPTY_ROOT, MemoryNodeStore, Tree, children, is_leaf, node_level
from cas_dvid.trees._chunk import key_hash, key_hashes
from cas_dvid.trees._node import FIXED, VARIABLE, decode, encode, node_id

ENTRIES = st.dictionaries(st.binary(max_size=6), st.binary(max_size=6), max_size=40).map(
    lambda d: sorted(d.items())
)


def layout(data: bytes) -> int:
    return data[2]


@settings(max_examples=200, deadline=None)
@given(ENTRIES)
@example([])
@example([(b"", b"")])
@example([(b"a" * 1024, b"v" * 1024)] * 1)
def test_leaf_round_trip_and_fixed_layout_matches_variable_twin(
    items: list[tuple[bytes, bytes]],
) -> None:
    keys = [k for k, _ in items]
    vals = [v for _, v in items]
    data = encode(0, keys, vals)
    node = decode(data)
    assert (node.level, list(node.keys), list(node.vals), node.total) == (0, keys, vals, len(keys))
    # The VARIABLE layout is the plain form every node could use; forcing it
    # must decode to the same entries as whatever layout encode picked.
    twin = decode(encode(0, keys, vals, widths=(-1, -1)))
    assert (twin.keys, twin.vals) == (node.keys, node.vals)
    uniform = len({len(k) for k in keys}) <= 1 and len({len(v) for v in vals}) <= 1
    assert layout(data) == (FIXED if uniform else VARIABLE)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=5), min_size=1, max_size=30, unique=True), st.data())
def test_internal_round_trip(keys: list[bytes], data: st.DataObject) -> None:
    keys.sort()
    ids = [content_id(Kind.TREE, k) for k in keys]
    counts = data.draw(st.lists(st.integers(1, 2**40), min_size=len(keys), max_size=len(keys)))
    raw = encode(3, keys, ids, counts)
    node = decode(raw)
    assert (node.level, list(node.keys), list(node.vals), node.counts) == (
        3,
        keys,
        ids,
        tuple(counts),
    )
    assert node.total == sum(counts)
    assert node_level(raw) == 3
    assert not is_leaf(raw)
    assert children(raw) == ids


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=50))
def test_vectorised_key_hash_matches_scalar_twin(keys: list[bytes]) -> None:
    assert key_hashes(keys).tolist() == [key_hash(k) for k in keys]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000))
def test_node_id_is_the_objects_layer_content_id(data: bytes) -> None:
    assert node_id(data) == content_id(Kind.TREE, data)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x02" + encode(0, [b"a"], [b"b"])[1:], id="bad-version"),
        pytest.param(encode(0, [b"a"], [b"b"])[:-1], id="truncated"),
        pytest.param(encode(0, [b"a"], [b"b"]) + b"x", id="trailing"),
        pytest.param(
            encode(1, [b"a"], [b"b" * 32], [1])[:-8] + (2).to_bytes(8, "little"), id="count"
        ),
        pytest.param(encode(1, [b"a", b"bb"], [b"b", b"c"], [1, 1]), id="short-child-id"),
    ],
)
def test_malformed_nodes_raise_corrupt(raw: bytes) -> None:
    with pytest.raises(CorruptObjectError):
        decode(raw, b"\x07" * 32)


def test_walk_reaches_every_node_and_exclude_prunes_subtrees() -> None:
    store = MemoryNodeStore()
    tree = Tree(store)
    root = tree.build([(i.to_bytes(4, "big"), b"v") for i in range(20_000)])
    ids = list(tree.iter_node_ids(root))
    assert ids[0] == root
    assert len(ids) == len(set(ids)) == len(store.nodes)
    assert set(ids) == set(store.nodes)
    # Walk raw bytes top-down the way sync does, with children() / is_leaf().
    seen, todo = [], [root]
    while todo:
        oid = todo.pop()
        seen.append(oid)
        raw = store.nodes[oid]
        assert is_leaf(raw) == (not children(raw))
        todo.extend(children(raw))
    assert set(seen) == set(ids)
    first_child = children(store.nodes[root])[0]
    below = set(Tree(store).iter_node_ids(first_child))
    pruned = list(tree.iter_node_ids(root, exclude=lambda level: {first_child} & set(level)))
    assert set(pruned) == set(ids) - below
    assert list(tree.iter_node_ids(EMPTY_ROOT)) == [EMPTY_ROOT]
