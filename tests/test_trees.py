"""Tree behaviour against a plain dict model, history independence, merge, and edge pins."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cas_dvid.errors import CorruptObjectError, InvalidInputError, NotFoundError
from cas_dvid.objects.ids import Kind, ObjectId, content_id
from cas_dvid.trees import (
    EMPTY_NODE,
    EMPTY_ROOT,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    MemoryNodeStore,
    NodeStore,
    Tree,
    _chunk,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Model = dict[bytes, bytes]


@contextlib.contextmanager
def fanout_bits(bits: int) -> Iterator[None]:
    """Run with nodes of 2**bits entries on average (small fanouts make tall trees)."""
    saved = _chunk.THRESHOLDS, _chunk.MAX_SPLIT_LEVEL
    levels = 32 // bits
    _chunk.THRESHOLDS = tuple((1 << 32) >> (bits * (lv + 1)) for lv in range(levels))
    _chunk.MAX_SPLIT_LEVEL = levels
    try:
        yield
    finally:
        _chunk.THRESHOLDS, _chunk.MAX_SPLIT_LEVEL = saved


# Short keys over a tiny alphabet: many keys are prefixes of others, b"" included.
SHORT_KEYS = st.lists(st.sampled_from(b"\x00a\xff"), max_size=5).map(bytes)
SHORT_VALS = st.binary(max_size=3)
# Fixed-width keys and values exercise the FIXED node layout.
FIXED_KEYS = st.integers(0, 3000).map(lambda i: i.to_bytes(2, "big"))
FIXED_VALS = st.sampled_from([b"aaaa", b"bbbb", b"cccc"])
SPACES = {"short": (SHORT_KEYS, SHORT_VALS), "fixed": (FIXED_KEYS, FIXED_VALS)}


def model_diff(a: Model, b: Model) -> list[tuple[bytes, bytes | None, bytes | None]]:
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return [(k, a.get(k), b.get(k)) for k in keys]


def model_range(
    m: Model, start: bytes | None, end: bytes | None, start_inc: bool, end_inc: bool
) -> list[tuple[bytes, bytes]]:
    out = []
    for k in sorted(m):
        if start is not None and (k < start or (k == start and not start_inc)):
            continue
        if end is not None and (k > end or (k == end and not end_inc)):
            continue
        out.append((k, m[k]))
    return out


def check_against_model(tree: Tree, root: ObjectId, model: Model, data: st.DataObject) -> None:
    keys, _ = SPACES["short"] if any(len(k) != 2 for k in model) else SPACES["fixed"]
    assert root == Tree(MemoryNodeStore()).build(sorted(model.items()))
    assert tree.count(root) == len(model)
    assert list(tree.range(root)) == sorted(model.items())
    probes = list(model) + data.draw(st.lists(keys, max_size=10))
    for k in probes:
        assert tree.get(root, k) == model.get(k)
    assert tree.get_many(root, probes) == {k: model[k] for k in probes if k in model}
    bound = st.none() | st.sampled_from(sorted(model)) | keys if model else st.none() | keys
    start, end = data.draw(bound), data.draw(bound)
    s_inc, e_inc = data.draw(st.booleans()), data.draw(st.booleans())
    got = list(tree.range(root, start, end, start_inclusive=s_inc, end_inclusive=e_inc))
    assert got == model_range(model, start, end, s_inc, e_inc)


def draw_batch(
    data: st.DataObject, space: str, model: Model
) -> tuple[dict[bytes, bytes], list[bytes]]:
    keys, vals = SPACES[space]
    puts = data.draw(st.dictionaries(keys, vals, max_size=60))
    dels = data.draw(st.lists(keys, max_size=4))
    if model:
        dels += data.draw(st.lists(st.sampled_from(sorted(model)), max_size=40))
    return puts, [k for k in dels if k not in puts]


@pytest.mark.parametrize("bits", [2, 6])
@pytest.mark.parametrize("space", ["short", "fixed"])
@SETTINGS
@given(data=st.data())
def test_batches_agree_with_dict_model(bits: int, space: str, data: st.DataObject) -> None:
    with fanout_bits(bits):
        tree = Tree(MemoryNodeStore(), cache_nodes=16)
        model: Model = {}
        root = EMPTY_ROOT
        for _ in range(data.draw(st.integers(1, 5))):
            puts, dels = draw_batch(data, space, model)
            new_root = tree.apply(root, puts, dels)
            new_model = {**model, **puts}
            for k in dels:
                new_model.pop(k, None)
            check_against_model(tree, new_root, new_model, data)
            assert list(tree.diff(root, new_root)) == model_diff(model, new_model)
            assert list(tree.diff(new_root, root)) == model_diff(new_model, model)
            model, root = new_model, new_root


@pytest.mark.parametrize("bits", [2, 6])
@SETTINGS
@given(
    final=st.dictionaries(SHORT_KEYS, SHORT_VALS, max_size=120),
    extra=st.dictionaries(SHORT_KEYS, SHORT_VALS, max_size=30),
    seed=st.integers(0, 2**32),
)
def test_same_content_in_two_orders_gives_same_root(
    bits: int, final: Model, extra: Model, seed: int
) -> None:
    with fanout_bits(bits):
        rnd = random.Random(seed)
        roots = []
        for _ in range(2):
            tree = Tree(MemoryNodeStore())
            root = EMPTY_ROOT
            items = list(final.items()) + [(k, v + b"!") for k, v in extra.items()]
            rnd.shuffle(items)
            while items:
                n = rnd.randint(1, 10)
                root = tree.apply(root, dict(items[:n]))
                items = items[n:]
            # Extra keys get their final value or vanish again, in random batches.
            fix = list(extra)
            rnd.shuffle(fix)
            for k in fix:
                root = tree.apply(root, {k: final[k]}) if k in final else tree.apply(root, (), [k])
            assert tree.count(root) == len(final)
            roots.append(root)
        assert roots[0] == roots[1] == Tree(MemoryNodeStore()).build(sorted(final.items()))


def model_merge(base: Model, ours: Model, theirs: Model) -> tuple[Model, list[bytes]]:
    merged = dict(ours)
    conflicts = []
    for k, _, new in model_diff(base, theirs):
        if ours.get(k) != base.get(k):
            if ours.get(k) != new:
                conflicts.append(k)
        elif new is None:
            merged.pop(k, None)
        else:
            merged[k] = new
    return merged, conflicts


def edit(data: st.DataObject, base: Model) -> Model:
    puts, dels = draw_batch(data, "short", base)
    out = {**base, **puts}
    for k in dels:
        out.pop(k, None)
    return out


@pytest.mark.parametrize("bits", [2, 6])
@SETTINGS
@given(data=st.data())
def test_merge3_agrees_with_model_merge(bits: int, data: st.DataObject) -> None:
    with fanout_bits(bits):
        tree = Tree(MemoryNodeStore())
        base = data.draw(st.dictionaries(SHORT_KEYS, SHORT_VALS, max_size=80))
        ours, theirs = edit(data, base), edit(data, base)
        b, o, t = (tree.build(sorted(m.items())) for m in (base, ours, theirs))
        root, conflicts = tree.merge3(b, o, t)
        want, want_conflicts = model_merge(base, ours, theirs)
        assert conflicts == want_conflicts
        assert root == tree.build(sorted(want.items()))


def test_merge3_same_change_is_no_conflict_and_different_is() -> None:
    tree = Tree(MemoryNodeStore())
    base = tree.build([(b"a", b"1"), (b"b", b"1"), (b"c", b"1")])
    ours = tree.apply(base, {b"a": b"2", b"b": b"2"}, [b"c"])
    theirs = tree.apply(base, {b"a": b"2", b"b": b"3", b"d": b"3"}, [b"c"])
    root, conflicts = tree.merge3(base, ours, theirs)
    assert conflicts == [b"b"]
    assert list(tree.range(root)) == [(b"a", b"2"), (b"b", b"2"), (b"d", b"3")]
    assert tree.merge3(base, base, theirs) == (theirs, [])
    assert tree.merge3(base, ours, base) == (ours, [])


# -- edge pins -------------------------------------------------------------------------


def test_empty_tree_has_a_well_known_root_that_is_never_loaded() -> None:
    store = MemoryNodeStore()
    tree = Tree(store)
    assert content_id(Kind.TREE, EMPTY_NODE) == EMPTY_ROOT
    assert tree.build([]) == EMPTY_ROOT
    assert tree.get(EMPTY_ROOT, b"") is None
    assert tree.get_many(EMPTY_ROOT, [b"a"]) == {}
    assert list(tree.range(EMPTY_ROOT)) == []
    assert tree.count(EMPTY_ROOT) == 0
    assert list(tree.diff(EMPTY_ROOT, EMPTY_ROOT)) == []
    assert tree.apply(EMPTY_ROOT, {}, [b"absent"]) == EMPTY_ROOT
    assert list(tree.iter_node_ids(EMPTY_ROOT)) == [EMPTY_ROOT]
    assert store.loads == 0


def test_one_key_round_trip_and_delete_back_to_empty() -> None:
    store = MemoryNodeStore()
    tree = Tree(store)
    root = tree.apply(EMPTY_ROOT, {b"k": b"v"})
    assert root == tree.build([(b"k", b"v")])
    assert tree.get(root, b"k") == b"v"
    assert list(tree.diff(EMPTY_ROOT, root)) == [(b"k", None, b"v")]
    assert list(tree.diff(root, EMPTY_ROOT)) == [(b"k", b"v", None)]
    assert tree.apply(root, (), [b"k"]) == EMPTY_ROOT
    assert store.nodes[EMPTY_ROOT] == EMPTY_NODE  # stored once a tree points at it


def test_prefix_keys_and_empty_values_keep_byte_order() -> None:
    tree = Tree(MemoryNodeStore())
    items = [(b"", b""), (b"a", b""), (b"a\x00", b"x"), (b"ab", b""), (b"b", b"y")]
    root = tree.build(items)
    assert list(tree.range(root)) == items
    assert tree.get(root, b"") == b""
    assert tree.get(root, b"a") == b""
    assert tree.get(root, b"a\x01") is None
    assert list(tree.range(root, b"a", b"ab")) == items[1:3]
    assert list(tree.range(root, b"a", b"ab", start_inclusive=False, end_inclusive=True)) == [
        items[2],
        items[3],
    ]


@pytest.mark.parametrize(
    ("puts", "deletes"),
    [
        pytest.param({b"k": b"v" * (MAX_VALUE_SIZE + 1)}, [], id="value-too-big"),
        pytest.param({b"k" * (MAX_KEY_SIZE + 1): b"v"}, [], id="key-too-big"),
        pytest.param({"k": b"v"}, [], id="str-key"),
        pytest.param({b"k": "v"}, [], id="str-value"),
        pytest.param({b"k": b"v"}, [b"k"], id="put-and-delete"),
        pytest.param({}, ["k"], id="str-delete"),
    ],
)
def test_apply_rejects_bad_batches(puts: dict, deletes: list) -> None:  # type: ignore[type-arg]
    tree = Tree(MemoryNodeStore())
    root = tree.build([(b"a", b"1")])
    with pytest.raises(InvalidInputError):
        tree.apply(root, puts, deletes)


def test_limits_are_inclusive() -> None:
    tree = Tree(MemoryNodeStore())
    key, val = b"k" * MAX_KEY_SIZE, b"v" * MAX_VALUE_SIZE
    root = tree.apply(tree.build([(b"a", b"1")]), {key: val})
    assert tree.get(root, key) == val


@pytest.mark.parametrize(
    "items",
    [
        pytest.param([(b"b", b""), (b"a", b"")], id="unsorted"),
        pytest.param([(b"a", b""), (b"a", b"")], id="duplicate"),
    ],
)
def test_build_rejects_unsorted_input(items: list[tuple[bytes, bytes]]) -> None:
    with pytest.raises(InvalidInputError, match="strictly increasing"):
        Tree(MemoryNodeStore()).build(items)


def test_missing_and_corrupt_nodes_raise() -> None:
    store = MemoryNodeStore()
    tree = Tree(store)
    with pytest.raises(NotFoundError):
        tree.get(ObjectId(bytes(32)), b"k")
    bad = ObjectId(b"\x01" * 32)
    store.nodes[bad] = b"\x01\x00garbage"
    with pytest.raises(CorruptObjectError, match="0101"):
        tree.get(bad, b"k")


def test_memory_store_is_a_node_store() -> None:
    assert isinstance(MemoryNodeStore(), NodeStore)


def test_apply_shares_untouched_nodes() -> None:
    store = MemoryNodeStore()
    tree = Tree(store)
    root = tree.build([(i.to_bytes(4, "big"), b"v") for i in range(100_000)])
    before = store.stores
    new_root = tree.apply(root, {(5000).to_bytes(4, "big"): b"w"})
    # One changed value rewrites one node per level and nothing else.
    assert store.stores - before == tree.height(root)
    assert tree.height(new_root) == tree.height(root)
    shared = set(tree.iter_node_ids(root)) & set(tree.iter_node_ids(new_root))
    assert len(shared) == len(list(tree.iter_node_ids(root))) - tree.height(root)


@pytest.mark.parametrize("bits", [2, 6])
@pytest.mark.parametrize("space", ["short", "fixed"])
@SETTINGS
@given(data=st.data())
def test_single_key_writes_agree_with_build(bits: int, space: str, data: st.DataObject) -> None:
    """One-key applies take their own path (and splice node bytes): same roots as a build."""
    keys, vals = SPACES[space]
    vals = vals | st.binary(max_size=5)  # odd widths turn FIXED nodes VARIABLE and back
    with fanout_bits(bits):
        model = data.draw(st.dictionaries(keys, vals, max_size=150))
        tree = Tree(MemoryNodeStore(), cache_nodes=data.draw(st.sampled_from([4, 8192])))
        root = tree.build(sorted(model.items()))
        for _ in range(data.draw(st.integers(1, 12))):
            key = data.draw(st.sampled_from(sorted(model)) | keys if model else keys)
            if data.draw(st.booleans()):
                value = data.draw(vals)
                root = tree.apply(root, {key: value})
                model[key] = value
            else:
                root = tree.apply(root, (), [key])
                model.pop(key, None)
            assert root == Tree(MemoryNodeStore()).build(sorted(model.items()))
        assert list(tree.range(root)) == sorted(model.items())
        assert list(tree.diff(EMPTY_ROOT, root)) == [(k, None, v) for k, v in sorted(model.items())]


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**32))
def test_diff_of_large_fixed_leaves_agrees_with_model(data: st.DataObject, seed: int) -> None:
    """Full-size FIXED leaves (compared on their bytes, a chunk of slots at a time)."""
    rnd = random.Random(seed)
    base = {i.to_bytes(2, "big"): rnd.choice([b"aaaa", b"bbbb"]) for i in range(0, 3000, 2)}
    tree = Tree(MemoryNodeStore())
    root = tree.build(sorted(base.items()))
    puts, dels = draw_batch(data, "fixed", base)
    new = tree.apply(root, puts, dels)
    model = {**base, **puts}
    for k in dels:
        model.pop(k, None)
    assert list(tree.diff(root, new)) == model_diff(base, model)
    assert list(tree.diff(new, root)) == model_diff(model, base)
