"""View kernels (downsampling, arbitrary slices, tile geometry) match DVID and their plain twins."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.kernels import _reference
from cas_dvid.datatypes.kernels.arb import (
    arb_points,
    arb_size,
    parse_arb_request,
    plan_arb,
    sample_blocks,
    sample_volume,
)
from cas_dvid.datatypes.kernels.downsample import (
    box_weights,
    downres_2d,
    downres_tile_2x,
    mean_2x2x2,
    mean_octants,
)
from cas_dvid.datatypes.kernels.tiles import (
    dvid_tiled_extent,
    level_magnifications,
    num_tile_scales,
    parse_plane,
    plane_axes,
    tile_for_voxel,
    tile_pixel_shape,
    tile_voxel_box,
    tiles_for_box,
)
from cas_dvid.errors import InvalidInputError, TooLargeError

DTYPES = st.sampled_from([np.uint8, np.uint16])


def _rand(seed: int, shape: tuple[int, ...], dtype: type[np.integer[Any]]) -> np.ndarray:
    hi = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, hi, size=shape, endpoint=True).astype(dtype)


# --- 3-D means ---------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.tuples(*[st.integers(1, 7)] * 3), DTYPES, st.integers(0, 2**32))
@example((2, 2, 2), np.uint8, 0)
@example((1, 1, 1), np.uint16, 1)
def test_mean_2x2x2_matches_loop_twin(shape: tuple[int, int, int], dtype: type, seed: int) -> None:
    vol = _rand(seed, shape, dtype)
    got = mean_2x2x2(vol)
    assert got.dtype == vol.dtype
    assert got.shape == tuple((n + 1) // 2 for n in shape)
    assert (got == _reference.mean_2x2x2(vol)).all()


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        pytest.param(3, 0, id="below-half"),
        pytest.param(4, 1, id="half-up"),
        pytest.param(11, 1, id="1.375"),
    ],
)
def test_mean_2x2x2_rounds_half_up(total: int, expected: int) -> None:
    cell = np.zeros(8, dtype=np.uint8)
    cell[0] = total
    assert mean_2x2x2(cell.reshape(2, 2, 2)).item() == expected


def test_mean_2x2x2_partial_edge_cells_average_only_real_voxels() -> None:
    vol = np.full((3, 3, 3), 200, dtype=np.uint8)
    assert (mean_2x2x2(vol) == 200).all()  # a zero pad would have pulled the edge down
    assert (mean_2x2x2(np.full((4, 4, 4), 65535, dtype=np.uint16)) == 65535).all()


def test_mean_octants_is_mean_of_assembled_children() -> None:
    children = [_rand(i, (4, 6, 8), np.uint8) for i in range(8)]
    children[5] = None  # type: ignore[call-overload]
    whole = np.zeros((8, 12, 16), dtype=np.uint8)
    for i, c in enumerate(children):
        if c is not None:
            dz, dy, dx = i >> 2 & 1, i >> 1 & 1, i & 1
            whole[dz * 4 : dz * 4 + 4, dy * 6 : dy * 6 + 6, dx * 8 : dx * 8 + 8] = c
    got = mean_octants(children, (4, 6, 8))
    assert got.shape == (4, 6, 8)
    assert (got == mean_2x2x2(whole)).all()


@pytest.mark.parametrize(
    ("octants", "shape"),
    [
        pytest.param([None] * 7, (2, 2, 2), id="seven"),
        pytest.param([None] * 8, (3, 2, 2), id="odd-block"),
        pytest.param([np.zeros((2, 2, 2), np.uint8)] + [None] * 7, (4, 4, 4), id="wrong-shape"),
    ],
)
def test_mean_octants_rejects(
    octants: list[np.ndarray | None], shape: tuple[int, int, int]
) -> None:
    with pytest.raises(InvalidInputError):
        mean_octants(octants, shape)


def test_mean_rejects_other_dtypes() -> None:
    with pytest.raises(InvalidInputError, match="uint8 or uint16"):
        mean_2x2x2(np.zeros((2, 2, 2), dtype=np.uint64))


# --- 2-D box filter (imagetile DownRes) -----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data(), DTYPES, st.integers(0, 2**32))
@example(5, 3, None, np.uint8, 0)
def test_downres_2d_matches_go_interpolate(
    src_w: int, src_h: int, data: st.DataObject | None, dtype: type, seed: int
) -> None:
    dst_w = data.draw(st.integers(1, src_w)) if data else 2
    dst_h = data.draw(st.integers(1, src_h)) if data else 1
    img = _rand(seed, (src_h, src_w), dtype)
    got = downres_2d(img, dst_w, dst_h)
    assert got.dtype == img.dtype
    assert (got == _reference.interpolate_gray(img, dst_w, dst_h)).all()


def test_downres_2d_exact_halving_truncates() -> None:
    img = np.array([[1, 2], [2, 2]], dtype=np.uint8)  # mean 1.75
    assert downres_2d(img, 1, 1).item() == 1
    assert downres_2d(img, 2, 2) is img  # DVID returns the source unchanged


def test_box_weights_rows_sum_to_source_width() -> None:
    w = box_weights(5, 2)
    assert w.tolist() == [[2, 2, 1, 0, 0], [0, 0, 1, 2, 2]]
    assert (w.sum(axis=1) == 5).all()


@pytest.mark.parametrize(("w", "h"), [pytest.param(0, 1, id="w0"), pytest.param(3, -1, id="h-neg")])
def test_downres_2d_rejects_empty_target(w: int, h: int) -> None:
    with pytest.raises(InvalidInputError, match=f"Attempted to interpolate to {w} x {h} pixels"):
        downres_2d(np.zeros((4, 4), dtype=np.uint8), w, h)


def test_tile_from_children_equals_whole_slice_downres() -> None:
    slice_ = _rand(7, (64, 96), np.uint8)  # 2 x 3 tiles of 32 at scale s
    half = downres_2d(slice_, 48, 32)
    for ty in range(1):
        for tx in range(2):
            kids = [[_tile(slice_, 2 * ty + r, 2 * tx + c, 32) for c in range(2)] for r in range(2)]
            got = downres_tile_2x(kids, (32, 32))
            want = half[ty * 32 : ty * 32 + 32, tx * 32 : tx * 32 + 32]
            assert (got[: want.shape[0], : want.shape[1]] == want).all()
            assert not got[:, want.shape[1] :].any()  # a missing child is zeros, full size


def _tile(img: np.ndarray, ty: int, tx: int, t: int) -> np.ndarray | None:
    tile = img[ty * t : ty * t + t, tx * t : tx * t + t]
    return tile if tile.size else None


def test_tile_from_children_with_missing_and_clipped_tiles() -> None:
    left = np.full((8, 8), 100, dtype=np.uint8)
    clipped = np.full((8, 2), 50, dtype=np.uint8)  # an edge tile only 2 pixels wide
    got = downres_tile_2x([[left, clipped], [None, None]], (8, 8))
    assert got.shape == (8, 5)
    assert (got[:4, :4] == 100).all()
    assert (got[:4, 4] == 50).all()
    assert (got[4:] == 0).all()


def test_pyramid_floors_compound_per_level() -> None:
    # 4x4 of values whose 2x2 means are 1.75 each: two truncating steps give 1, one 4x4 mean 1.75.
    img = np.tile(np.array([[1, 2], [2, 2]], dtype=np.uint8), (2, 2))
    assert downres_2d(downres_2d(img, 2, 2), 1, 1).item() == 1
    img2 = np.array([[3, 3, 0, 0], [3, 2, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=np.uint8)
    assert downres_2d(downres_2d(img2, 2, 2), 1, 1).item() == 0  # floor(floor(11/4)/4)
    assert downres_2d(img2, 1, 1).item() == 0


# --- arbitrary slices --------------------------------------------------------------------

FLOAT = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
PT = st.tuples(FLOAT, FLOAT, FLOAT)


@settings(max_examples=200, deadline=None)
@given(PT, PT, PT, st.floats(0.3, 7))
@example((0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (0.0, 10.0, 0.0), 1.0)
@example((0.1, 0.2, 0.3), (3.7, 1.1, 0.3), (0.1, 0.2, 9.9), 0.7)
def test_arb_points_are_dvids_running_sums(
    tl: tuple[float, ...], tr: tuple[float, ...], bl: tuple[float, ...], res: float
) -> None:
    try:
        w, h = arb_size(tl, tr, bl, res)
    except InvalidInputError:
        return  # degenerate, covered below
    if w * h > 20_000:
        return
    rw, rh, rows = _reference.arb_points(tl, tr, bl, res)
    pts = arb_points(tl, tr, bl, res)
    assert (w, h) == (rw, rh) == (pts.shape[1], pts.shape[0])
    assert pts.tolist() == [[list(p) for p in row] for row in rows]  # bit for bit


VOL = _rand(3, (12, 13, 14), np.uint8)
VOL_OFF = (-4, -3, -2)


def _read(x: int, y: int, z: int) -> int:
    rz, ry, rx = z - VOL_OFF[2], y - VOL_OFF[1], x - VOL_OFF[0]
    inside = 0 <= rz < VOL.shape[0] and 0 <= ry < VOL.shape[1] and 0 <= rx < VOL.shape[2]
    return int(VOL[rz, ry, rx]) if inside else 7


SMALL = st.floats(-6, 11, allow_nan=False, allow_infinity=False)


@settings(max_examples=120, deadline=None)
@given(
    st.tuples(SMALL, SMALL, SMALL),
    st.tuples(SMALL, SMALL, SMALL),
    st.tuples(SMALL, SMALL, SMALL),
    st.floats(0.4, 3),
    st.sampled_from([(1.0, 1.0, 1.0), (8.0, 8.0, 8.0), (1.5, 2.0, 3.1)]),
    st.booleans(),
)
@example((0.5, 0.5, 0.5), (5.5, 0.5, 0.5), (0.5, 5.5, 0.5), 0.5, (1.0, 1.0, 1.0), False)
def test_sample_volume_matches_go_neighbourhood(
    tl: tuple[float, float, float],
    tr: tuple[float, float, float],
    bl: tuple[float, float, float],
    res: float,
    vsize: tuple[float, float, float],
    interpolate: bool,
) -> None:
    scale = np.array(vsize)
    tl, tr, bl = (tuple((np.array(p) * scale).tolist()) for p in (tl, tr, bl))
    try:
        plan = plan_arb(tl, tr, bl, res * min(vsize), vsize, max_pixels=900)
    except (InvalidInputError, TooLargeError):
        return
    got = sample_volume(plan, VOL, VOL_OFF, interpolate=interpolate, background=7)
    _, _, rows = _reference.arb_points(tl, tr, bl, res * min(vsize))
    want = [[_reference.arb_value(p, vsize, _read, interpolate) for p in row] for row in rows]
    assert got.tolist() == want
    # The same image from only the blocks the plane touches.
    bs = (4, 5, 3)
    coords = plan.blocks(bs)
    blocks = np.stack([_block(c, bs) for c in coords])
    assert (
        sample_blocks(plan, coords[::-1], blocks[::-1], bs, interpolate=interpolate, background=7)
        == got
    ).all()


def _block(zyx: np.ndarray, bs: tuple[int, int, int]) -> np.ndarray:
    z0, y0, x0 = zyx[0] * bs[2], zyx[1] * bs[1], zyx[2] * bs[0]
    return np.array(
        [
            [[_read(x0 + x, y0 + y, z0 + z) for x in range(bs[0])] for y in range(bs[1])]
            for z in range(bs[2])
        ],
        dtype=np.uint8,
    )


def test_arb_axis_aligned_plane_is_the_xy_slice() -> None:
    vol = _rand(4, (8, 10, 12), np.uint8)
    plan = plan_arb((0, 0, 5), (11, 0, 5), (0, 9, 5), 1.0)
    assert (plan.width, plan.height) == (12, 10)
    for interp in (True, False):
        assert (sample_volume(plan, vol, (0, 0, 0), interpolate=interp) == vol[5]).all()
    assert plan.box == ((0, 0, 5), (11, 9, 5))
    assert plan.blocks((4, 4, 4)).tolist() == [[1, y, x] for y in range(3) for x in range(3)]


def test_arb_in_world_units_of_the_voxel_size() -> None:
    vol = _rand(5, (4, 4, 4), np.uint8)
    plan = plan_arb((0, 0, 16), (24, 0, 16), (0, 24, 16), 8.0, (8, 8, 8))  # DVID default 8 nm
    assert (sample_volume(plan, vol, (0, 0, 0)) == vol[2]).all()


def test_arb_trilinear_midpoint_rounds_half_up_and_nearest_ties_go_low() -> None:
    vol = np.zeros((1, 1, 2), dtype=np.uint8)
    vol[0, 0, 1] = 1
    plan = plan_arb((0.5, 0, 0), (0.5, 0, 0.0001), (0.5, 0.0001, 0), 1.0)  # 1 pixel at x = 0.5
    assert sample_volume(plan, vol, (0, 0, 0)).item() == 1  # floor(0.5 + 0.5)
    assert sample_volume(plan, vol, (0, 0, 0), interpolate=False).item() == 0


def test_arb_rgba_channels_interpolate_independently() -> None:
    vol = np.zeros((1, 1, 2, 4), dtype=np.uint8)
    vol[0, 0, 1] = [10, 20, 255, 3]
    plan = plan_arb((0.25, 0, 0), (1.0, 0, 0), (0.25, 1e-4, 0), 0.75)
    got = sample_volume(plan, vol, (0, 0, 0))
    assert got.shape == (1, 2, 4)
    assert got[0, 0].tolist() == [math.floor(v * 0.25 + 0.5) for v in (10, 20, 255, 3)]
    assert got[0, 1].tolist() == [10, 20, 255, 3]


@pytest.mark.parametrize(
    ("tl", "tr", "bl", "res", "message"),
    [
        pytest.param((0, 0, 0), (1, 1, 1), (2, 2, 2), 1.0, "collinear", id="collinear"),
        pytest.param((0, 0, 0), (0, 0, 0), (0, 5, 0), 1.0, "collinear", id="tl==tr"),
        pytest.param((0, 0, 0), (5, 0, 0), (0, 5, 0), 0.0, "resolution > 0", id="res0"),
        pytest.param((0, 0, 0), (5, 0, 0), (0, 5, 0), -1.0, "resolution > 0", id="res<0"),
        pytest.param((0, 0, 0), (5, 0, 0), (0, 5, 0), math.inf, "resolution > 0", id="res-inf"),
        pytest.param((0, math.nan, 0), (5, 0, 0), (0, 5, 0), 1.0, "finite", id="nan"),
    ],
)
def test_arb_rejects_degenerate_planes(
    tl: tuple[float, ...], tr: tuple[float, ...], bl: tuple[float, ...], res: float, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        plan_arb(tl, tr, bl, res)


def test_arb_limits_and_dtypes() -> None:
    with pytest.raises(TooLargeError):
        plan_arb((0, 0, 0), (999, 0, 0), (0, 999, 0), 1.0, max_pixels=10_000)
    with pytest.raises(InvalidInputError, match="Bad arbitrary image size"):
        arb_size((0, 0, 0), (1e6, 0, 0), (0, 1e6, 0), 1.0)
    plan = plan_arb((0, 0, 0), (3, 0, 0), (0, 3, 0), 1.0)
    with pytest.raises(InvalidInputError, match="1 channels and 2 bytes/channel"):
        sample_volume(plan, np.zeros((1, 4, 4), dtype=np.uint16), (0, 0, 0))
    empty = sample_blocks(
        plan, np.zeros((0, 3)), np.zeros((0, 2, 2, 2), np.uint8), (2, 2, 2), background=9
    )
    assert (empty == 9).all()


def test_arb_narrower_than_one_step_is_one_pixel_wide_as_dvid() -> None:
    w, h = arb_size((0, 0, 0), (0.5, 0, 0), (0, 3, 0), 1.0)
    assert (w, h) == (1, 4)


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        pytest.param(
            ("1_2", "0_0_0", "0_0_0", "1"),
            "can't convert string '1_2' (length 2) to Vector3d",
            id="len",
        ),
        pytest.param(
            ("1_2_x", "0_0_0", "0_0_0", "1"),
            'strconv.ParseFloat: parsing "x": invalid syntax',
            id="syntax",
        ),
        pytest.param(
            ("1_2_3", "0_0_0", "0_0_0", "1e999"), 'parsing "1e999": value out of range', id="range"
        ),
        pytest.param(
            ("1_2_3", "0_0_0", "0_0_0", "1_0"), 'parsing "1_0": invalid syntax', id="underscore"
        ),
    ],
)
def test_parse_arb_request_go_errors(parts: tuple[str, str, str, str], message: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_arb_request(*parts)
    assert message in str(err.value)


def test_parse_arb_request_accepts_go_floats() -> None:
    assert parse_arb_request("1.5_ -2_3e1", "0_0_.5", "+1_0_0", "4.") == (
        (1.5, -2.0, 30.0),
        (0.0, 0.0, 0.5),
        (1.0, 0.0, 0.0),
        4.0,
    )


# --- tile geometry -----------------------------------------------------------------------

SRC_MIN = (100, 100, 2600)


@pytest.mark.parametrize(
    ("scale", "tile", "origin", "box"),
    [
        pytest.param(
            0, (0, 0, 0), SRC_MIN, ((100, 100, 2600), (227, 227, 2600)), id="rel-0-upper-left"
        ),
        pytest.param(
            0, (1, 0, 0), SRC_MIN, ((228, 100, 2600), (355, 227, 2600)), id="rel-0-upper-right"
        ),
        pytest.param(
            1, (0, 0, 0), SRC_MIN, ((100, 100, 2600), (355, 355, 2600)), id="rel-1-whole-slice"
        ),
        pytest.param(0, (0, 0, 2600), None, ((0, 0, 2600), (127, 127, 2600)), id="abs-0"),
        pytest.param(1, (1, 0, 2649), None, ((256, 0, 2649), (511, 255, 2649)), id="abs-1"),
    ],
)
def test_multiscale2d_and_dvid_addressing_examples(
    scale: int, tile: tuple[int, int, int], origin: tuple[int, int, int] | None, box: object
) -> None:
    assert tile_voxel_box("xy", scale, tile, (128, 128, 128), origin_xyz=origin) == box


def test_whole_source_fits_one_tile_at_scale_one_in_relative_addressing() -> None:
    lo, hi = SRC_MIN, (349, 349, 2849)
    assert num_tile_scales((250, 250, 250), (128, 128, 128)) == 2
    assert tiles_for_box("xy", 1, lo, hi, (128,) * 3, origin_xyz=lo) == ((0, 0, 0), (0, 0, 249))
    assert tiles_for_box("xy", 1, lo, hi, (128,) * 3) == ((0, 0, 2600), (1, 1, 2849))
    # DVID's default spec grows the box to 512-voxel tiles first: one scale only.
    assert dvid_tiled_extent(lo, hi) == (512, 512, 512)
    assert num_tile_scales(dvid_tiled_extent(lo, hi), (512, 512, 512)) == 1


@pytest.mark.parametrize(
    ("plane", "tile", "box"),
    [
        pytest.param("xz", (1, 7, 2), ((32, 7, 128), (63, 7, 191)), id="xz"),
        pytest.param("yz", (7, 1, 2), ((7, 32, 128), (7, 63, 191)), id="yz"),
    ],
)
def test_xz_yz_tile_coordinates(plane: str, tile: tuple[int, int, int], box: object) -> None:
    p = parse_plane(plane)
    assert tile_voxel_box(p, 1, tile, (16, 16, 32)) == box
    assert tile_pixel_shape(p, (16, 24, 32)) == (32, 24 if plane == "yz" else 16)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["xy", "xz", "yz"]),
    st.integers(0, 6),
    st.tuples(*[st.integers(-5000, 5000)] * 3),
    st.tuples(*[st.integers(1, 600)] * 3),
    st.one_of(st.none(), st.tuples(*[st.integers(-300, 300)] * 3)),
)
def test_tile_for_voxel_inverts_tile_voxel_box(
    plane: str,
    scale: int,
    voxel: tuple[int, int, int],
    tsize: tuple[int, int, int],
    origin: tuple[int, int, int] | None,
) -> None:
    p = parse_plane(plane)
    tile = tile_for_voxel(p, scale, voxel, tsize, origin_xyz=origin)
    lo, hi = tile_voxel_box(p, scale, tile, tsize, origin_xyz=origin)
    assert all(lo[i] <= voxel[i] <= hi[i] for i in range(3))
    a, b, fixed = plane_axes(p)
    assert lo[fixed] == hi[fixed] == voxel[fixed]
    assert hi[a] - lo[a] + 1 == tsize[a] << scale


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**7), st.integers(1, 4096))
@example(512, 512)
@example(513, 512)
@example(1024, 512)
def test_num_tile_scales_is_dvids_log2_formula(size: int, tile: int) -> None:
    want = 1 if size <= tile else int(math.ceil(math.log2(size / tile))) + 1
    assert num_tile_scales((size, 1, 1), (tile, tile, tile)) == want


@pytest.mark.parametrize(
    ("text", "plane"),
    [
        pytest.param("xy", "xy", id="xy"),
        pytest.param("XZ", "xz", id="case"),
        pytest.param("1_2", "yz", id="axes"),
        pytest.param("0,1", "xy", id="comma"),
    ],
)
def test_parse_plane_accepts_dvid_shapes(text: str, plane: str) -> None:
    assert parse_plane(text) == plane


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("zz", r"Unknown data shape specification \(zz\)", id="unknown"),
        pytest.param("0_1_2", "unknown tile shape", id="volume"),
    ],
)
def test_parse_plane_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_plane(text)


def test_level_magnifications_follow_parse_tile_spec() -> None:
    res = [[10.0] * 3, [20.0] * 3, [40.0] * 3, [80.0] * 3]  # imagetile_test.go's spec
    assert level_magnifications(res) == [(2, 2, 2)] * 3
    assert level_magnifications([[10.0] * 3, [29.0, 10.0, 40.0]]) == [(3, 1, 4)]
    with pytest.raises(InvalidInputError, match="aren't integral magnifications"):
        level_magnifications([[10.0] * 3, [25.0, 10.0, 10.0]])
    with pytest.raises(InvalidInputError, match="actually increases"):
        level_magnifications([[10.0] * 3, [6.0, 10.0, 10.0]])  # remainder -4 passes


def test_tile_geometry_rejects_bad_sizes() -> None:
    with pytest.raises(InvalidInputError):
        tile_voxel_box("xy", 0, (0, 0, 0), (0, 512, 512))
    with pytest.raises(InvalidInputError):
        tile_voxel_box("xy", 256, (0, 0, 0), (512, 512, 512))
