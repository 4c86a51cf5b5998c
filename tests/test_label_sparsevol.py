"""Sparse volume formats (rles, srles, blocks, coarse), checked by decoders written from
dvid-api.md section 6 and by brute force on random volumes."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import reference, rle, sparsevol
from cas_dvid.datatypes.labelmap.sparsevol import Bounds
from cas_dvid.errors import InvalidInputError

Voxel = tuple[int, int, int]
SHAPE = (16, 16, 16)


# --- decoders from the spec (dvid-api.md section 6), independent of the code under test ----


def spec_rles(data: bytes) -> list[tuple[int, int, int, int]]:
    """Legacy RLE: u8 0, u8 3, u8 0, u8 0, u32 0, u32 n, then n x int32 x, y, z, length."""
    payload, ndims, rundim, reserved, zero, n = struct.unpack_from("<4BII", data)
    assert (payload, ndims, rundim, reserved, zero) == (0, 3, 0, 0, 0)
    assert len(data) == 12 + 16 * n
    return spec_srles(data[12:])


def spec_srles(data: bytes) -> list[tuple[int, int, int, int]]:
    assert len(data) % 16 == 0
    return [struct.unpack_from("<4i", data, i) for i in range(0, len(data), 16)]


def voxels_of_runs(runs: list[tuple[int, int, int, int]]) -> set[Voxel]:
    out: set[Voxel] = set()
    for x, y, z, n in runs:
        assert n > 0
        cells = {(x + i, y, z) for i in range(n)}
        assert not cells & out, "runs overlap"
        out |= cells
    return out


def assert_maximal(runs: list[tuple[int, int, int, int]]) -> None:
    """DVID merges runs across X-adjacent blocks: no run may end where another starts."""
    ends = {(x + n, y, z) for x, y, z, n in runs}
    starts = {(x, y, z) for x, y, z, _ in runs}
    assert not ends & starts


def spec_blocks(data: bytes) -> tuple[int, dict[Voxel, np.ndarray]]:
    """format=blocks: 3 x u32 gx, gy, gz; u64 label; per block 3 x int32 offset, u8 flag
    (0 bg, 1 fg, 2 mixed); if 2, per sub-block u8 flag and, if 2, a 64-byte mask."""
    if not data:
        return 0, {}
    gx, gy, gz, label = struct.unpack_from("<3IQ", data)
    pos = 20
    out: dict[Voxel, np.ndarray] = {}
    while pos < len(data):
        ox, oy, oz, flag = struct.unpack_from("<3iB", data, pos)
        pos += 13
        mask = np.zeros((gz * 8, gy * 8, gx * 8), bool)
        if flag == 1:
            mask[:] = True
        elif flag == 2:
            for sz in range(gz):
                for sy in range(gy):
                    for sx in range(gx):
                        sub = data[pos]
                        pos += 1
                        view = mask[sz * 8 : sz * 8 + 8, sy * 8 : sy * 8 + 8, sx * 8 : sx * 8 + 8]
                        if sub == 1:
                            view[:] = True
                        elif sub == 2:
                            bits = [(data[pos + i // 8] >> (i % 8)) & 1 for i in range(512)]
                            view[:] = np.array(bits, bool).reshape(8, 8, 8)
                            pos += 64
                        else:
                            assert sub == 0
        else:
            assert flag == 0
        out[(ox, oy, oz)] = mask
    assert pos == len(data)
    return label, out


# --- random volumes ---------------------------------------------------------------------


def make_blocks(seed: int, grid: Voxel, fill: float) -> list[sparsevol.LabelBlock]:
    """Blocks of a random labelled volume, some left out, in (z, y, x) order."""
    rng = np.random.default_rng(seed)
    pool = np.array([0, 1, 2, 3, 2**64 - 1], np.uint64)
    out = []
    for bz in range(grid[2]):
        for by in range(grid[1]):
            for bx in range(grid[0]):
                if rng.random() > fill:
                    continue
                kind = rng.integers(0, 3)
                if kind == 0:  # solid
                    vol = np.full(SHAPE, pool[rng.integers(0, 5)], np.uint64)
                elif kind == 1:  # slabs along x, so runs cross block edges
                    vol = np.broadcast_to(pool[rng.integers(0, 5, SHAPE[2])], SHAPE).copy()
                else:
                    vol = pool[rng.integers(0, 5, SHAPE)]
                out.append(((bx - 1, by, bz - 1), vol))  # negative coordinates too
    return out


def brute_voxels(
    blocks: list[sparsevol.LabelBlock], svs: set[int], bounds: Bounds | None
) -> set[Voxel]:
    out: set[Voxel] = set()
    for (bx, by, bz), vol in blocks:
        for z, y, x in zip(*np.nonzero(np.isin(vol, list(svs))), strict=True):
            v = (bx * 16 + int(x), by * 16 + int(y), bz * 16 + int(z))
            if bounds is None or bounds.clip(v, v) == (v, v):
                out.add(v)
    return out


bounds_st = st.builds(
    Bounds,
    *(st.one_of(st.none(), st.integers(-20, 40)) for _ in range(6)),
)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.sets(st.sampled_from([1, 2, 3, 2**64 - 1]), min_size=1),
    st.one_of(st.none(), bounds_st),
)
@example(0, {1}, None)
@example(1, {2**64 - 1}, Bounds(minx=-3, maxx=5))
def test_rles_against_brute_force(seed: int, svs: set[int], bounds: Bounds | None) -> None:
    blocks = make_blocks(seed, (3, 2, 3), 0.8)
    if bounds is not None:
        keep = {
            tuple(c)
            for c in sparsevol.fit_blocks([b[0] for b in blocks], bounds.divide(SHAPE)).tolist()
        }
        blocks = [b for b in blocks if b[0] in keep]
    want = brute_voxels(blocks, svs, bounds)
    data = rle.encode_rles(blocks, svs, bounds)
    if not want:
        assert data == b""
        return
    runs = spec_rles(data)
    assert voxels_of_runs(runs) == want
    assert_maximal(runs)
    assert sorted(runs) == sorted(
        map(tuple, reference.sparsevol_runs(blocks, svs, bounds).tolist())
    )
    assert spec_srles(b"".join(rle.encode_srles(blocks, svs, bounds))) == runs


def test_runs_merge_across_adjacent_blocks_only() -> None:
    full = np.full(SHAPE, 7, np.uint64)
    blocks = [((0, 0, 0), full), ((1, 0, 0), full), ((3, 0, 0), full)]
    runs = spec_rles(rle.encode_rles(blocks, [7]))
    assert len(runs) == 2 * 16 * 16
    assert sorted({r[3] for r in runs}) == [16, 32]
    assert {r[0] for r in runs} == {0, 48}


def test_rles_emission_order() -> None:
    """Runs come out as they end; runs cut at a gap in the block sequence, by (z, y)."""
    vol = np.zeros(SHAPE, np.uint64)
    vol[:, :, 12:] = 5  # reaches the block's X end: waits for the next block
    vol[:, :, 2:4] = 5  # ends inside the block: out at once
    runs = spec_rles(rle.encode_rles([((0, 0, 0), vol), ((5, 0, 0), vol)], [5]))
    first = runs[: 16 * 16]
    assert all(r[3] == 2 for r in first)
    assert first == sorted(first, key=lambda r: (r[2], r[1]))
    assert runs[16 * 16][:4] == (12, 0, 0, 4)


def test_blocks_must_be_sorted() -> None:
    vol = np.full(SHAPE, 1, np.uint64)
    with pytest.raises(InvalidInputError, match="increasing z, y, x"):
        rle.encode_rles([((1, 0, 0), vol), ((0, 0, 0), vol)], [1])
    with pytest.raises(InvalidInputError, match="shape"):
        rle.encode_rles([((0, 0, 0), vol), ((1, 0, 0), np.ones((8, 8, 8), np.uint64))], [1])


def test_no_runs_gives_empty_body() -> None:
    vol = np.full(SHAPE, 1, np.uint64)
    assert rle.encode_rles([((0, 0, 0), vol)], [2]) == b""
    assert rle.encode_rles([((0, 0, 0), vol)], [1], Bounds(minx=100)) == b""
    assert rle.encode_rles([], [1]) == b""


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sets(st.sampled_from([0, 1, 2, 3, 2**64 - 1]), min_size=1))
@example(0, {1})
def test_binary_blocks_against_brute_force(seed: int, svs: set[int]) -> None:
    blocks = make_blocks(seed, (3, 2, 2), 0.9)
    data = b"".join(sparsevol.encode_binary_blocks(blocks, 42, svs))
    assert data == reference.binary_blocks(blocks, 42, svs)
    label, decoded = spec_blocks(data)
    want = brute_voxels(blocks, svs, None)
    got: set[Voxel] = set()
    for (ox, oy, oz), mask in decoded.items():
        assert mask.any(), "blocks without the body are left out"
        got |= {
            (ox + int(x), oy + int(y), oz + int(z))
            for z, y, x in zip(*np.nonzero(mask), strict=True)
        }
    assert got == want
    assert label == (42 if want else 0)


def test_binary_blocks_flags() -> None:
    full = np.full(SHAPE, 3, np.uint64)
    half = full.copy()
    half[:, :, :8] = 0
    half[0, 0, 8] = 0
    data = b"".join(sparsevol.encode_binary_blocks([((0, 0, 0), full), ((1, 0, 0), half)], 9, [3]))
    assert data[:20] == struct.pack("<3IQ", 2, 2, 2, 9)
    assert data[20:33] == struct.pack("<3iB", 0, 0, 0, 1)
    assert data[33:46] == struct.pack("<3iB", 16, 0, 0, 2)
    assert data[46] == 0  # sub-block (0,0,0): x < 8 is background
    assert data[47] == 2  # sub-block (1,0,0): one background voxel
    assert data[48:112] == b"\xfe" + b"\xff" * 63


# --- block lists, coarse spans, bounds ---------------------------------------------------


def test_coarse_spans() -> None:
    coords = [(2, 0, 0), (0, 0, 0), (1, 0, 0), (5, 0, 0), (0, 1, 0), (-1, 1, 0), (0, 0, -2)]
    data = sparsevol.encode_sparsevol_coarse(coords)
    assert spec_rles(data) == [(0, 0, -2, 1), (0, 0, 0, 3), (5, 0, 0, 1), (-1, 1, 0, 2)]
    assert sparsevol.encode_sparsevol_coarse([]) == struct.pack("<4BII", 0, 3, 0, 0, 0, 0)
    entry = sparsevol.encode_sparsevols_coarse_entry(77, coords)
    assert struct.unpack_from("<Qi", entry) == (77, 4)
    assert entry[12:] == data[12:]


@settings(max_examples=50, deadline=None)
@given(st.sets(st.tuples(*(st.integers(-4, 4) for _ in range(3))), max_size=60))
def test_coarse_spans_cover_exactly_the_blocks(coords: set[Voxel]) -> None:
    spans = spec_rles(sparsevol.encode_sparsevol_coarse(sorted(coords)))
    assert voxels_of_runs(spans) == coords
    assert_maximal(spans)
    assert spans == sorted(spans, key=lambda r: (r[2], r[1], r[0]))


def test_scale_blocks_shift_with_floor() -> None:
    coords = [(0, 0, 0), (1, 1, 1), (-1, 0, 0), (-2, 3, 5), (2, 0, 0)]
    got = sparsevol.scale_blocks(coords, 1).tolist()
    assert got == [[-1, 0, 0], [0, 0, 0], [1, 0, 0], [-1, 1, 2]]
    assert sparsevol.scale_blocks(coords, 0).tolist() == sparsevol.sort_blocks(coords).tolist()


def test_bounds_divide_truncates_toward_zero_like_go() -> None:
    b = Bounds(minx=-1, maxx=-65, miny=63, maxy=64, minz=None, maxz=-64)
    assert b.divide((64, 64, 64)) == Bounds(minx=0, maxx=-1, miny=0, maxy=1, minz=None, maxz=-1)
    coords = [(-1, 0, 0), (0, 0, 0), (0, 2, 0)]
    assert sparsevol.fit_blocks(coords, Bounds(minx=-1, maxy=64).divide((64, 64, 64))).tolist() == [
        [0, 0, 0]
    ]


@pytest.mark.parametrize(
    ("params", "want"),
    [
        pytest.param({}, Bounds(), id="none"),
        pytest.param({"minx": "-5", "maxz": "+7", "miny": ""}, Bounds(minx=-5, maxz=7), id="some"),
        pytest.param({"maxx": "2147483647"}, Bounds(maxx=2**31 - 1), id="int32-max"),
    ],
)
def test_parse_bounds(params: dict[str, str], want: Bounds) -> None:
    assert sparsevol.parse_bounds(params) == want


@pytest.mark.parametrize("value", ["2147483648", "1.5", " 3", "0x10", "1_0", "abc"])
def test_parse_bounds_rejects(value: str) -> None:
    with pytest.raises(InvalidInputError, match="minz"):
        sparsevol.parse_bounds({"minz": value})


def test_block_voxel_extent() -> None:
    assert sparsevol.block_voxel_extent([(0, 1, 2), (-1, 3, 2)], (64, 32, 16)) == (
        (-16, 32, 128),
        (15, 127, 191),
    )


# --- parsing POSTed RLEs, partition, masks -------------------------------------------------


def _rle_body(runs: list[tuple[int, int, int, int]], header: bytes | None = None) -> bytes:
    head = header if header is not None else struct.pack("<4BII", 0, 3, 0, 0, 0, len(runs))
    return head + b"".join(struct.pack("<4i", *r) for r in runs)


def test_parse_rles_round_trip() -> None:
    runs = [(0, 1, 2, 5), (-5, -6, -7, 1), (2**31 - 2, 0, 0, 1)]
    got = rle.parse_rles(_rle_body(runs))
    assert got.dtype == np.int32
    assert [tuple(r) for r in got.tolist()] == runs
    assert rle.parse_rles(_rle_body(runs) + b"extra").tolist() == got.tolist()
    ours = rle.encode_rles([((0, 0, 0), np.full(SHAPE, 1, np.uint64))], [1])
    assert [tuple(r) for r in rle.parse_rles(ours).tolist()] == spec_rles(ours)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(b"\x00" * 11, "12-byte header", id="short"),
        pytest.param(
            _rle_body([(0, 0, 0, 1)], struct.pack("<4BII", 1, 3, 0, 0, 0, 1)),
            "not binary",
            id="payload",
        ),
        pytest.param(
            _rle_body([(0, 0, 0, 1)], struct.pack("<4BII", 0, 3, 0, 0, 0, 2)),
            "truncated",
            id="count",
        ),
        pytest.param(_rle_body([(0, 0, 0, -1)]), "negative length", id="negative"),
        pytest.param(_rle_body([(2**31 - 1, 0, 0, 2)]), "int32", id="overflow"),
        pytest.param(struct.pack("<4BII", 0, 3, 0, 0, 0, 2**32 - 1), "truncated", id="huge-count"),
    ],
)
def test_parse_rles_rejects(data: bytes, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        rle.parse_rles(data)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-40, 40), st.integers(-20, 20), st.integers(-20, 20), st.integers(0, 50)
        ),
        max_size=30,
    )
)
def test_partition_and_mask_cover_the_runs(runs: list[tuple[int, int, int, int]]) -> None:
    arr = np.array(runs, np.int32).reshape(-1, 4)
    parts = rle.partition_runs(arr, SHAPE)
    want: set[Voxel] = {(x + i, y, z) for x, y, z, n in runs for i in range(n)}
    got: set[Voxel] = set()
    for (bx, by, bz), pieces in parts.items():
        origin = (bx * 16, by * 16, bz * 16)
        for x, y, z, n in pieces.tolist():
            assert origin[0] <= x
            assert x + n <= origin[0] + 16
            assert (y // 16, z // 16) == (by, bz)
        mask = rle.runs_mask(pieces, origin, SHAPE)
        got |= {
            (origin[0] + int(x), origin[1] + int(y), origin[2] + int(z))
            for z, y, x in zip(*np.nonzero(mask), strict=True)
        }
    assert got == want


def test_blocks_beyond_int32_voxels_are_rejected() -> None:
    far = [((2**27, 0, 0), np.full(SHAPE, 1, np.uint64))]  # first voxel x = 2**31
    with pytest.raises(InvalidInputError, match="int32"):
        rle.encode_rles(far, [1])
    with pytest.raises(InvalidInputError, match="int32"):
        b"".join(sparsevol.encode_binary_blocks(far, 1, [1]))
