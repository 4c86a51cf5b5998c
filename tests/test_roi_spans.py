"""ROI kernels behave as DVID's roi datatype: spans, ptquery, mask, partition."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.roi import _partition_ref, _reference
from cas_dvid.datatypes.roi.partition import (
    PartitionPanicError,
    is_optimized,
    parse_batchsize,
    partition,
    partition_json,
)
from cas_dvid.datatypes.roi.query import (
    inclusions_json,
    mask_block_range,
    parse_points_json,
    points_in_roi,
    roi_mask,
)
from cas_dvid.datatypes.roi.spans import (
    SPAN_KEY_SIZE,
    blocks_to_spans,
    check_spans,
    count_blocks,
    intersect_box,
    merge_spans,
    parse_span_key,
    parse_span_keys,
    parse_spans_json,
    sort_unique_spans,
    span_key,
    span_keys,
    span_row_range,
    spans_json,
    spans_to_blocks,
)
from cas_dvid.errors import InvalidInputError

# roi_test.go's fixtures, verbatim.
DVID_SPANS = [
    [100, 101, 200, 210], [100, 102, 200, 210], [100, 103, 201, 212],
    [101, 101, 201, 213], [101, 102, 202, 215], [101, 103, 202, 216],
    [102, 101, 200, 210], [102, 103, 201, 216], [102, 104, 203, 217],
    [103, 101, 200, 210], [103, 103, 200, 210], [103, 105, 201, 212],
]  # fmt: skip
DVID_POINTS = [
    [6400, 3232, 3167], [6400, 3232, 3200], [6719, 3232, 3200], [6720, 3232, 3200],
    [6720, 4100, 3263], [6720, 3233, 3201], [6720, 3234, 3200],
]  # fmt: skip
DVID_INCLUSIONS = [False, True, True, True, False, True, True]
BS32 = (32, 32, 32)


def _sv(
    mn: list[int], mx: list[int], total: int, active: int, maxpt: list[int] | None = None
) -> dict[str, object]:
    return {
        "MinPoint": [v * 32 for v in mn],
        "MaxPoint": maxpt or [(v + 1) * 32 - 1 for v in mx],
        "MinChunk": mn,
        "MaxChunk": mx,
        "TotalBlocks": total,
        "ActiveBlocks": active,
    }


# roi_test.go expectedPartition / expectedSimplePartition, as Python data.
EXPECTED_OPTIMIZED = {
    "NumTotalBlocks": 450,
    "NumActiveBlocks": 152,
    "NumSubvolumes": 3,
    "ROI": {"MinChunk": [0, 0, 100], "MaxChunk": [217, 105, 103]},
    "Subvolumes": [
        _sv([200, 101, 100], [205, 105, 104], 150, 61),
        _sv([206, 101, 100], [211, 105, 104], 150, 67),
        _sv([212, 101, 100], [217, 105, 104], 150, 24),
    ],
}
_SIMPLE = [
    ([199, 99, 98], 25), ([204, 99, 98], 40), ([209, 99, 98], 30), ([214, 99, 98], 8),
    ([203, 104, 98], 5), ([208, 104, 98], 5), ([213, 104, 98], 5),
    ([199, 101, 103], 11), ([204, 101, 103], 15), ([209, 101, 103], 8),
]  # fmt: skip
EXPECTED_SIMPLE = {
    "NumTotalBlocks": 1375,
    "NumActiveBlocks": 152,
    "NumSubvolumes": 10,
    "ROI": {"MinChunk": [0, 0, 100], "MaxChunk": [217, 105, 103]},
    "Subvolumes": [_sv(mn, [v + 4 for v in mn], 125, a) for mn, a in _SIMPLE],
}

SPAN = st.tuples(st.integers(-2, 3), st.integers(-2, 3), st.integers(-8, 8), st.integers(0, 6)).map(
    lambda t: [t[0], t[1], t[2], t[2] + t[3]]
)
SPANS = st.lists(SPAN, max_size=25)


def _block_set(spans: list[list[int]]) -> set[tuple[int, int, int]]:
    return {(z, y, x) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}


# --- parse / serialise -------------------------------------------------------------------


def test_dvid_fixture_round_trips_byte_for_byte() -> None:
    body = json.dumps(DVID_SPANS).encode()
    got = spans_json(sort_unique_spans(parse_spans_json(body)))
    assert got == json.dumps(DVID_SPANS, separators=(",", ":")).encode()


def test_get_after_overlapping_post_is_sorted_deduped_not_merged() -> None:
    posted = parse_spans_json("[[0,0,5,9],[0,0,0,6],[0,0,5,9],[0,0,0,3],[0,0,10,12]]")
    assert spans_json(sort_unique_spans(posted)) == b"[[0,0,0,3],[0,0,0,6],[0,0,5,9],[0,0,10,12]]"
    assert merge_spans(posted).tolist() == [[0, 0, 0, 12]]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("[]", [], id="empty"),
        pytest.param("null", [], id="null"),
        pytest.param(" [[1, -2, 3, 3]] ", [[1, -2, 3, 3]], id="spaces-negatives"),
        pytest.param(b"[[-2147483648,0,0,2147483647]]", [[-(2**31), 0, 0, 2**31 - 1]], id="i32"),
    ],
)
def test_parse_spans_accepts(body: str | bytes, expected: list[list[int]]) -> None:
    assert parse_spans_json(body).tolist() == expected


P = "Error trying to parse POSTed JSON: "


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "[[0,0,5,3]]", "Got weird span [0, 0, 5, 3].  span[3] (X1) < span[2] (X0)", id="x1<x0"
        ),
        pytest.param(
            "[[0,0,1.5,3]]",
            P + "json: cannot unmarshal number 1.5 into Go value of type int32",
            id="float",
        ),
        pytest.param(
            "[[0,0,1.0,3]]",
            P + "json: cannot unmarshal number 1.0 into Go value of type int32",
            id="float-int",
        ),
        pytest.param(
            "[[0,0,0,2147483648]]",
            P + "json: cannot unmarshal number 2147483648 into Go value of type int32",
            id="overflow",
        ),
        pytest.param(
            "[[0,0,0,100000000000000000000]]",
            P + "json: cannot unmarshal number 100000000000000000000 into Go value of type int32",
            id="over-int64",
        ),
        pytest.param(
            '[[0,0,"1",3]]',
            P + "json: cannot unmarshal string into Go value of type int32",
            id="string",
        ),
        pytest.param(
            "[[0,0,true,3]]",
            P + "json: cannot unmarshal bool into Go value of type int32",
            id="bool",
        ),
        pytest.param(
            "[5]",
            P + "json: cannot unmarshal number into Go value of type dvid.Span",
            id="not-list",
        ),
        pytest.param(
            "{}", P + "json: cannot unmarshal object into Go value of type []dvid.Span", id="object"
        ),
        pytest.param("", P + "unexpected end of JSON input", id="no-body"),
        pytest.param("[[0,0,0,1]", P + "unexpected end of JSON input", id="truncated"),
        pytest.param(
            "[[0,0,0,NaN]]", P + "invalid character 'N' looking for beginning of value", id="nan"
        ),
        pytest.param("[] x", P + "invalid character 'x' after top-level value", id="trailing"),
        pytest.param(
            "[[0,0,0]]",
            P + "expected a span [z, y, x0, x1] of 4 integers at item 0, got 3",
            id="short",
        ),
        pytest.param(
            "[[0,0,0,1,2]]",
            P + "expected a span [z, y, x0, x1] of 4 integers at item 0, got 5",
            id="long",
        ),
        pytest.param(
            "[null]", P + "expected a span [z, y, x0, x1] at item 0, got null", id="null-item"
        ),
        # DVID reports a decode error before any x1 < x0, wherever they are.
        pytest.param(
            "[[0,0,5,3],[0,0,0.5,1]]", P + "json: cannot unmarshal number 0.5", id="decode-first"
        ),
    ],
)
def test_parse_spans_rejects_with_dvid_wording(body: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_spans_json(body)
    assert str(err.value).startswith(message)


def test_spans_json_of_nothing_is_empty_list() -> None:
    assert spans_json(np.zeros((0, 4), dtype=np.int64)) == b"[]"
    assert spans_json([]) == b"[]"


# --- block-set operations ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(SPANS)
@example([])
def test_sort_unique_is_sorted_set_of_spans(spans: list[list[int]]) -> None:
    assert sort_unique_spans(spans).tolist() == [list(s) for s in sorted({tuple(s) for s in spans})]


@settings(max_examples=300, deadline=None)
@given(SPANS)
@example([])
@example([[0, 0, 0, 5], [0, 0, 6, 6], [0, 0, 2, 3], [0, 1, 7, 8]])
def test_merge_matches_dvid_normalize(spans: list[list[int]]) -> None:
    got = merge_spans(spans)
    assert got.tolist() == _reference.normalize(spans)
    assert _block_set(got.tolist()) == _block_set(spans)


@settings(max_examples=200, deadline=None)
@given(SPANS)
def test_blocks_round_trip_and_count(spans: list[list[int]]) -> None:
    blocks = spans_to_blocks(spans)
    truth = sorted(_block_set(spans))
    assert [tuple(b) for b in blocks.tolist()] == truth
    assert count_blocks(spans) == len(truth)
    assert blocks_to_spans(blocks[::-1]).tolist() == merge_spans(spans).tolist()


@settings(max_examples=200, deadline=None)
@given(SPANS, st.tuples(*[st.integers(-3, 4)] * 6))
def test_intersect_box_is_set_intersection(spans: list[list[int]], box: tuple[int, ...]) -> None:
    lo = (min(box[0], box[3]), min(box[1], box[4]), min(box[2], box[5]) * 2)
    hi = (max(box[0], box[3]), max(box[1], box[4]), max(box[2], box[5]) * 2)
    got = intersect_box(spans, lo, hi)
    inside = {b for b in _block_set(spans) if all(lo[i] <= b[i] <= hi[i] for i in range(3))}
    assert _block_set(got.tolist()) == inside
    assert got.tolist() == merge_spans(got).tolist()  # one x interval per row run


# --- span keys ---------------------------------------------------------------------------

I32 = st.integers(-(2**31), 2**31 - 1)


@settings(max_examples=300, deadline=None)
@given(st.tuples(I32, I32, I32, I32), st.tuples(I32, I32, I32, I32))
def test_span_key_order_is_stored_order(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    ka, kb = span_key(*a), span_key(*b)
    assert len(ka) == SPAN_KEY_SIZE
    assert parse_span_key(ka) == a
    assert (ka < kb) == (a < b)


@settings(max_examples=100, deadline=None)
@given(SPANS)
def test_span_keys_vectorised_twin(spans: list[list[int]]) -> None:
    keys = span_keys(spans)
    assert keys == [span_key(*s) for s in spans]
    assert parse_span_keys(keys).tolist() == spans
    assert sorted(set(keys)) == span_keys(sort_unique_spans(spans))


def test_span_keys_of_overlapping_spans_stay_distinct() -> None:
    assert len(set(span_keys([[0, 0, 0, 3], [0, 0, 0, 5]]))) == 2


@settings(max_examples=100, deadline=None)
@given(SPANS, st.integers(-2, 3), st.integers(-2, 3), st.integers(-8, 14))
def test_span_row_range_selects_row_spans_starting_by_x(
    spans: list[list[int]], z: int, y: int, x_max: int
) -> None:
    first, last = span_row_range(z, y, x_max)
    picked = sorted(s for s in spans if first <= span_key(*s) <= last)
    assert picked == sorted(s for s in spans if s[0] == z and s[1] == y and s[2] <= x_max)


@pytest.mark.parametrize(
    "bad",
    [pytest.param((0, 0, 0, 2**31), id="high"), pytest.param((-(2**31) - 1, 0, 0, 0), id="low")],
)
def test_span_key_rejects_out_of_int32(bad: tuple[int, int, int, int]) -> None:
    with pytest.raises(InvalidInputError):
        span_key(*bad)
    with pytest.raises(InvalidInputError):
        span_keys([bad])
    with pytest.raises(InvalidInputError, match="16-byte"):
        parse_span_key(b"\0" * 12)


def test_check_spans_rejects_bad_shapes() -> None:
    with pytest.raises(InvalidInputError, match=r"\(n, 4\)"):
        check_spans([[1, 2, 3]])
    with pytest.raises(InvalidInputError, match="int32"):
        sort_unique_spans([[0, 0, 0, 2**31]])
    with pytest.raises(InvalidInputError, match="weird span"):
        merge_spans([[0, 0, 1, 0], [0, 0, 0, 0]])


# --- ptquery -----------------------------------------------------------------------------


def test_ptquery_dvid_fixture() -> None:
    pts = parse_points_json(json.dumps(DVID_POINTS))
    got = points_in_roi(DVID_SPANS, pts, BS32)
    assert got.tolist() == DVID_INCLUSIONS
    assert inclusions_json(got) == b"[false,true,true,true,false,true,true]"


POINT = st.tuples(st.integers(-40, 60), st.integers(-40, 60), st.integers(-40, 60))


@settings(max_examples=300, deadline=None)
@given(SPANS, st.lists(POINT, max_size=40), st.tuples(*[st.integers(1, 9)] * 3))
@example([], [(0, 0, 0)], (1, 1, 1))
def test_ptquery_matches_dvid_seekspan(
    spans: list[list[int]], points: list[tuple[int, int, int]], bs: tuple[int, int, int]
) -> None:
    got = points_in_roi(spans, np.array(points, dtype=np.int64).reshape(-1, 3), bs)
    assert got.tolist() == _reference.point_query(spans, points, bs)


def test_ptquery_points_at_int32_limits() -> None:
    spans = [[-1, -1, -1, -1], [0, 0, 0, 0]]
    pts = [[-(2**31), -(2**31), -(2**31)], [2**31 - 1] * 3, [-1, -1, -1], [0, 0, 0]]
    assert points_in_roi(spans, pts, (2**31, 2**31, 2**31)).tolist() == [True, True, True, True]
    assert points_in_roi(spans, pts, (1, 1, 1)).tolist() == [False, False, True, True]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "[[1,2,3.5]]",
            "json: cannot unmarshal number 3.5 into Go value of type int32",
            id="float",
        ),
        pytest.param(
            "[[1,2]]", "expected a point [x, y, z] of 3 integers at item 0, got 2", id="short"
        ),
        pytest.param(
            '{"a":1}',
            "json: cannot unmarshal object into Go value of type []dvid.Point3d",
            id="object",
        ),
    ],
)
def test_parse_points_rejects(body: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace(".", r"\.")):
        parse_points_json(body)


def test_ptquery_of_no_points() -> None:
    assert inclusions_json(points_in_roi(DVID_SPANS, parse_points_json("null"), BS32)) == b"[]"


# --- mask --------------------------------------------------------------------------------


def test_mask_dvid_fixture() -> None:
    assert not roi_mask(DVID_SPANS, BS32, (10, 40, 70), (100, 100, 100)).any()
    m = roi_mask(DVID_SPANS, BS32, (6350, 3232, 3200), (100, 100, 100))
    assert m.shape == (100, 100, 100)
    assert m.dtype == np.uint8
    first = m[0]  # block z 100: rows 101, 102 from x 200; row 103 from x 201
    assert not first[:, :50].any()
    assert first[:64, 50:].all()
    assert not first[64:96, :82].any()
    assert first[64:96, 82:].all()
    second = m[32]  # block z 101: row 101 from x 201, nothing at y >= 3264 (row 102 is 202..)
    assert not second[:32, :82].any()
    assert second[:32, 82:].all()
    assert (m == _reference.get_mask(DVID_SPANS, BS32, (6350, 3232, 3200), (100, 100, 100))).all()


@settings(max_examples=200, deadline=None)
@given(
    SPANS,
    st.tuples(*[st.integers(-30, 30)] * 3),
    st.tuples(*[st.integers(0, 14)] * 3),
    st.tuples(*[st.integers(1, 5)] * 3),
)
@example([[0, 0, -1, -1]], (-3, 0, 0), (5, 2, 2), (2, 2, 2))
@example([[0, 0, -1, 0]], (-1, 0, 0), (1, 1, 1), (2, 1, 1))  # a span past the skipped block
def test_mask_matches_go_getmask(
    spans: list[list[int]],
    offset: tuple[int, int, int],
    size: tuple[int, int, int],
    bs: tuple[int, int, int],
) -> None:
    got = roi_mask(spans, bs, offset, size)
    assert (got == _reference.get_mask(spans, bs, offset, size)).all()
    # With floor division the mask is exactly the voxel-level block membership.
    exact = roi_mask(spans, bs, offset, size, dvid_truncation=False)
    blocks = _block_set(spans)
    zz, yy, xx = np.meshgrid(
        *[np.arange(o, o + n) for o, n in zip(offset[::-1], size[::-1], strict=True)], indexing="ij"
    )
    truth = np.vectorize(
        lambda z, y, x: (z // bs[2], y // bs[1], x // bs[0]) in blocks, otypes=[bool]
    )
    assert (exact == (truth(zz, yy, xx) if zz.size else exact)).all()


def test_mask_dvid_truncation_skips_first_negative_block() -> None:
    # Box from x = -3 with blocks of 2: Go's -3 / 2 == -1, so block -2 (voxels -4, -3) is skipped.
    assert mask_block_range((-3, 0, 0), (5, 1, 1), (2, 2, 2)) == ((-1, 0, 0), (0, 0, 0))
    assert mask_block_range((-3, 0, 0), (5, 1, 1), (2, 2, 2), dvid_truncation=False)[0] == (
        -2,
        0,
        0,
    )
    # A span ending in the skipped block is not drawn; GetMask draws every other span
    # whole (clipped to the box), so one reaching on into the box draws that block too.
    spans = [[0, 0, -2, -2], [0, 0, -1, 0]]
    assert roi_mask(spans, (2, 2, 2), (-3, 0, 0), (5, 1, 1)).ravel().tolist() == [0, 1, 1, 1, 1]
    exact = roi_mask(spans, (2, 2, 2), (-3, 0, 0), (5, 1, 1), dvid_truncation=False)
    assert exact.ravel().tolist() == [1, 1, 1, 1, 1]
    whole = roi_mask([[0, 0, -2, 0]], (2, 2, 2), (-3, 0, 0), (5, 1, 1))
    assert whole.ravel().tolist() == [1, 1, 1, 1, 1]


@pytest.mark.parametrize(
    ("size", "bs"),
    [
        pytest.param((1, -1, 1), BS32, id="neg-size"),
        pytest.param((1, 1, 1), (0, 1, 1), id="zero-block"),
    ],
)
def test_mask_rejects_bad_geometry(size: tuple[int, int, int], bs: tuple[int, int, int]) -> None:
    with pytest.raises(InvalidInputError):
        roi_mask(DVID_SPANS, bs, (0, 0, 0), size)


def test_mask_of_zero_size_is_empty() -> None:
    assert roi_mask(DVID_SPANS, BS32, (0, 0, 0), (0, 5, 5)).shape == (5, 5, 0)


# --- partition ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("optimized", "expected"),
    [
        pytest.param(True, EXPECTED_OPTIMIZED, id="optimized"),
        pytest.param(False, EXPECTED_SIMPLE, id="simple"),
    ],
)
def test_partition_dvid_fixture(optimized: bool, expected: dict[str, object]) -> None:
    got = partition(DVID_SPANS, BS32, 5, optimized=optimized)
    assert got == expected
    assert json.loads(partition_json(got)) == expected


def test_partition_json_layout_is_go_marshalindent() -> None:
    body = partition_json(partition([], BS32, 8))
    assert body == (
        b'{\n    "NumTotalBlocks": 0,\n    "NumActiveBlocks": 0,\n    "NumSubvolumes": 0,\n'
        b'    "ROI": {\n        "MinChunk": [\n            0,\n            0,\n'
        b'            2147483647\n        ],\n        "MaxChunk": [\n            0,\n'
        b'            0,\n            -2147483648\n        ]\n    },\n    "Subvolumes": []\n}'
    )


def test_optimized_merge_into_previous_keeps_dvid_maxpoint_bug() -> None:
    # Layer z 2..4 has x 0 and 3 only: its cells have holes, so their leading parts are
    # folded into the previous subvolume (from layer z 0..1), whose MaxPoint becomes the
    # *min* voxel of its new last block (DVID sets it from lastCorner.MinPoint).
    spans = [[0, 0, 0, 3], [2, 0, 0, 0], [2, 0, 3, 3]]
    got = partition(spans, (4, 4, 4), 2, optimized=True)
    assert got == _partition_ref.partition(spans, (4, 4, 4), 2, True, 0, 2)
    assert got["NumSubvolumes"] == 2
    last = got["Subvolumes"][-1]
    assert last["MinChunk"] == [2, 0, 0]
    assert last["MaxChunk"] == [3, 2, 4]
    assert last["MaxPoint"] == [12, 8, 16]
    assert (last["TotalBlocks"], last["ActiveBlocks"]) == (2 * 3 * 2 + 1 * 3 * 3 + 1 * 3 * 3, 4)


def test_optimized_partition_panics_where_dvid_does() -> None:
    with pytest.raises(PartitionPanicError) as err:
        partition([[0, 0, 0, 0]], BS32, 2, optimized=True)
    assert err.value.http_status.startswith("500")
    with pytest.raises(_partition_ref._Panic):
        _partition_ref.partition([[0, 0, 0, 0]], BS32, 2, True, 0, 0)


ZSPANS = st.lists(
    st.tuples(st.integers(-4, 12), st.integers(-3, 6), st.integers(-6, 12), st.integers(0, 7)).map(
        lambda t: [t[0], t[1], t[2], t[2] + t[3]]
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(ZSPANS, st.integers(1, 5), st.booleans(), st.tuples(*[st.integers(1, 40)] * 3), st.data())
def test_partition_matches_go_port(
    spans: list[list[int]],
    batch: int,
    optimized: bool,
    bs: tuple[int, int, int],
    data: st.DataObject,
) -> None:
    zs = [s[0] for s in spans] or [0]
    lo, hi = min(zs), max(zs)
    # Sometimes an instance MinZ/MaxZ wider than the spans (set by a POST at another version).
    zr = data.draw(st.sampled_from([(lo, hi), (lo - 3, hi), (lo, hi + 7)]))
    try:
        want = _partition_ref.partition(spans, bs, batch, optimized, *zr)
    except _partition_ref._Panic:
        with pytest.raises(PartitionPanicError):
            partition(spans, bs, batch, optimized=optimized, z_range=zr)
        return
    assert partition(spans, bs, batch, optimized=optimized, z_range=zr) == want


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(None, 'strconv.Atoi: parsing "": invalid syntax', id="missing"),
        pytest.param("8.0", 'strconv.Atoi: parsing "8.0": invalid syntax', id="float"),
        pytest.param(" 8", 'strconv.Atoi: parsing " 8": invalid syntax', id="space"),
        pytest.param("99999999999999999999", "value out of range", id="huge"),
        pytest.param("0", "expected batchsize in 1..2147483647, got 0", id="zero"),
        pytest.param("-3", "got -3", id="negative"),
    ],
)
def test_parse_batchsize_rejects(value: str | None, message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_batchsize(value)
    assert message in str(err.value)
    if "strconv" in message:
        assert str(err.value).startswith("Error reading batchsize query string: ")


def test_parse_batchsize_and_optimized_accept_go_forms() -> None:
    assert parse_batchsize("+8") == 8
    assert parse_batchsize("08") == 8
    assert [is_optimized(v) for v in ("true", "on", "True", "1", None)] == [
        True,
        True,
        False,
        False,
        False,
    ]
