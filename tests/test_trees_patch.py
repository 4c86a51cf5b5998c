"""Apply's splicing fast paths give exactly the bytes a fresh encode of the merged entries does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.objects.ids import Kind, content_id
from cas_dvid.trees._node import decode, encode
from cas_dvid.trees._patch import patch_fixed, patch_node
from cas_dvid.trees._splice_variable import is_variable, patch_variable

TOUCH = object()
# Tiny alphabets: prefixes, empty keys/values, equal and unequal widths all show up.
KEYS = st.binary(max_size=3).filter(lambda k: set(k) <= {0, 1, 255})
VALS = st.sampled_from([b"", b"a", b"bb", b"cc", b"ddd", b"eee"])
MIXED = [b"\0", b"\0\1", b"\1", b"\1\1"]  # keys of two widths: a VARIABLE node either way


def child(i: int) -> tuple[bytes, int]:
    return content_id(Kind.TREE, i.to_bytes(4, "big")), i % 7 + 1


@settings(max_examples=300, deadline=None)
@given(
    entries=st.dictionaries(KEYS, VALS, min_size=1, max_size=30),
    ops=st.dictionaries(KEYS, st.none() | VALS | st.just(TOUCH), max_size=6),
    level=st.sampled_from([0, 0, 1]),
    data=st.data(),
)
@example(entries={b"a": b"x", b"b": b"yy"}, ops={b"a": b"xx"}, level=0, data=None)
@example(entries={b"a": b"x", b"b": b"yy"}, ops={b"a": b"xx"}, level=1, data=None)
@example(entries={b"a": b"x", b"c": b"yy"}, ops={b"b": b"xx"}, level=1, data=None)
@example(
    entries=dict.fromkeys([b"\0", b"\0\1", b"\1", b"\1\1"], b""),
    ops={b"\0\1": None},
    level=1,
    data=None,
)
@example(
    entries=dict.fromkeys([b"\0", b"\0\1", b"\1", b"\1\1"], b"a"),
    ops={b"\0": None},
    level=0,
    data=None,
)
@pytest.mark.filterwarnings("ignore")
def test_splices_equal_a_fresh_encode(
    entries: dict[bytes, bytes], ops: dict[bytes, Any], level: int, data: st.DataObject | None
) -> None:
    keys = sorted(entries)
    if level:
        pairs = [child(i) for i in range(len(keys))]
        vals = [p[0] for p in pairs]
        counts: list[int] | None = [p[1] for p in pairs]
        ops = {k: child(100 + len(v)) if isinstance(v, bytes) else v for k, v in ops.items()}
    else:
        vals = [entries[k] for k in keys]
        counts = None
    raw = encode(level, keys, vals, counts)
    node = decode(raw)
    op_list = sorted(ops.items(), key=lambda kv: kv[0])
    bounds = set(data.draw(st.sets(st.sampled_from(sorted(ops))))) if data and ops else set()
    last = keys[-1]

    merged: dict[bytes, Any] = dict(
        zip(keys, zip(vals, counts, strict=True) if level else vals, strict=True)
    )
    for k, v in op_list:
        if v is None:
            merged.pop(k, None)
        elif v is not TOUCH:
            merged[k] = v
    puts = [k for k, v in op_list if v is not None and v is not TOUCH]
    one_node = merged and max(merged) == last and not any(k in bounds and k != last for k in puts)
    mk = sorted(merged)
    if level:
        want = (
            encode(level, mk, [merged[k][0] for k in mk], [merged[k][1] for k in mk]) if mk else b""
        )
    else:
        want = encode(level, mk, [merged[k] for k in mk]) if mk else b""

    on_bytes = patch_variable if is_variable(raw) else patch_fixed
    for patch in ("bytes", "bytes+keys", "node"):
        if patch == "node":
            got = patch_node(node, raw, op_list, 0, len(op_list), bounds, TOUCH)
        else:
            keys_at_hand = node.keys if patch == "bytes+keys" else None
            got = on_bytes(raw, b"id", level, op_list, 0, len(op_list), bounds, TOUCH, keys_at_hand)
        if got is None:
            assert patch != "node" or not one_node, "patch_node handles every one-node case"
            continue
        assert one_node
        if got is False:
            assert want == raw
            continue
        assert got[0] == last
        assert got[1] == want
        assert got[2] == decode(want).total
        if patch == "node":
            assert got[3] == decode(want)
