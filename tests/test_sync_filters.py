"""The spatial filter against brute force, partial regions, and the framed stream."""

from __future__ import annotations

import io
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.datatypes.geometry import Point3, parse_box
from cas_dvid.datatypes.regions import BoxFilter, Spatial
from cas_dvid.objects.framing import (
    encode_frames,
    pack_bits,
    parse_frames,
    read_frames,
    unpack_bits,
)
from cas_dvid.datatypes.partial import record_transfer, region_boxes
from cas_dvid.trees.keys import block_key
from cas_dvid.versions import Node, Repo

N = 6  # blocks per axis of the brute-force grid, some outside every box
KEYS = sorted(
    b"\x17" + block_key(0, z, y, x)
    for z in range(-1, N)
    for y in range(-1, N)
    for x in range(-1, N)
)

coord = st.integers(-8, 8 * N)


@st.composite
def boxes(draw: st.DrawFn) -> str:
    lo = [draw(coord) for _ in range(3)]
    hi = [v + draw(st.integers(1, 4 * N)) for v in lo]
    return ",".join(map(str, lo + hi))


@settings(max_examples=300, deadline=None)
@given(boxes(), st.integers(0, len(KEYS) - 1), st.integers(0, len(KEYS) - 1))
def test_overlaps_is_exact_on_block_ranges(box: str, i: int, j: int) -> None:
    f = BoxFilter(parse_box(box), Spatial(b"\x17", Point3(8, 8, 8)))
    lo, hi = sorted((i, j))
    if lo == hi:
        return
    (x0, y0, z0), (x1, y1, z1) = f.box.blocks(f.spatial.block)
    kept = [
        b"\x17" + block_key(0, z, y, x)
        for z in range(z0, z1 + 1)
        for y in range(y0, y1 + 1)
        for x in range(x0, x1 + 1)
    ]
    want = any(KEYS[lo] < k <= KEYS[hi] for k in kept)
    assert f.overlaps(KEYS[lo], KEYS[hi]) == want


def test_keep_matches_box_arithmetic() -> None:
    f = BoxFilter(
        parse_box("10,0,0,20,9,5"), Spatial(b"\x17", Point3(8, 8, 8))
    )  # x blocks 1..2, y 0..1, z 0
    kept = {
        (x, y, z)
        for z, y, x in itertools.product(range(4), repeat=3)
        if f.keep(b"\x17" + block_key(0, z, y, x))
    }
    assert kept == {(x, y, 0) for x in (1, 2) for y in (0, 1)}
    assert f.keep(b"\x18") and f.keep(b"\xb1somekey")  # other classes always kept
    assert f.overlaps(None, b"\x17" + block_key(0, 9, 9, 9))  # other classes may sit below


def test_scales_halve_the_box() -> None:
    f = BoxFilter(parse_box("64,0,0,128,32,32"), Spatial(b"\x17", Point3(32, 32, 32)))
    assert f.keep(b"\x17" + block_key(0, 0, 0, 2)) and not f.keep(b"\x17" + block_key(0, 0, 0, 1))
    assert f.keep(b"\x17" + block_key(1, 0, 0, 1)) and not f.keep(b"\x17" + block_key(1, 0, 0, 2))


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d,e,f", "0,0,0,0,1,1", "5,0,0,4,1,1"])
def test_bad_boxes(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_box(text)


def repo_with(*nodes: tuple[str, list[str]]) -> Repo:
    r = Repo(root=nodes[0][0])
    for i, (u, parents) in enumerate(nodes):
        r.nodes[u] = Node(uuid=u, version_id=i + 1, parents=parents, locked=True)
    return r


def test_regions_inherit_and_merges_intersect() -> None:
    r = repo_with(("a", []), ("b", ["a"]), ("c", ["a"]), ("m", ["b", "c"]), ("f", ["a"]))
    b1, b2 = parse_box("0,0,0,10,10,10"), parse_box("5,5,5,20,20,20")
    record_transfer(r, "b", "d", (b1,), existed=False)
    record_transfer(r, "c", "d", (b2,), existed=False)
    assert region_boxes(r, "a", "d") is None
    assert region_boxes(r, "b", "d") == (b1,)
    assert region_boxes(r, "m", "d") == (parse_box("5,5,5,10,10,10"),)
    record_transfer(r, "b", "d", None, existed=True)  # the rest arrived later
    assert region_boxes(r, "b", "d") is None
    assert region_boxes(r, "m", "d") == (b2,)
    record_transfer(r, "a", "d", (b1,), existed=False)
    record_transfer(r, "f", "d", None, existed=False)  # complete although its parent is partial
    assert region_boxes(r, "f", "d") is None and region_boxes(r, "a", "d") == (b1,)


def test_frames_round_trip() -> None:
    items = [(ObjectId(bytes([i]) * 32), bytes([i]) * (i * 1000)) for i in range(5)]
    body = encode_frames(items)
    assert [(o, bytes(s)) for o, s in parse_frames(body)] == items
    assert list(read_frames(io.BytesIO(body))) == items
    with pytest.raises(InvalidInputError, match="cut off"):
        list(parse_frames(body[:-1]))
    flags = [i % 3 == 0 for i in range(19)]
    assert unpack_bits(pack_bits(flags), 19) == flags
