"""Sparse volumes of bodies: every format decoded independently and compared with brute force.

Also: bounds (exact and not), scale, compression, the coarse forms, by point, HEAD,
bad options, and a count of object loads showing a body's sparse volume reads that
body's index and blocks, not the volume's.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass

import falcon.testing
import lz4.block
import numpy as np
import pytest
from _bodies import (
    apply_mapping,
    coarse_blocks,
    new_labelmap,
    paint_blocks,
    paint_runs,
    post_mappings,
    post_volume,
    runs_of_rles,
    runs_of_srles,
    voronoi,
)
from _counting import CountingBackend
from numpy.typing import NDArray

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.bodyvol import SparseQuery
from cas_dvid.datatypes.labelmap.labelindex import make_label_index
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService

SHAPE = (128, 128, 128)
BS = 64


@dataclass
class Vol:
    c: falcon.testing.TestClient
    base: str
    svs: NDArray[np.uint64]  # scale 0 supervoxels
    bodies: NDArray[np.uint64]  # scale 0 bodies
    bodies1: NDArray[np.uint64]  # scale 1 bodies, as GET raw?scale=1 shows them
    mapping: dict[int, int]

    def get(self, path: str) -> falcon.testing.Result:
        return self.c.simulate_get(f"{self.base}/{path}")


@pytest.fixture(scope="module")
def vol() -> Vol:
    rng = np.random.default_rng(21)
    svs = voronoi(SHAPE, 50, 21)
    ids = [int(s) for s in rng.permutation(np.unique(svs))]
    svs[svs == ids[0]] = 0  # some background
    mapping = {sv: ids[1] for sv in ids[2:6]} | {sv: ids[6] for sv in ids[7:9]}
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    _, base = new_labelmap(c, MaxDownresLevel="1")
    post_volume(c, base, svs)
    assert c.simulate_post(f"{base}/downres").status_code == 200
    post_mappings(c, base, mapping)
    r = c.simulate_get(f"{base}/raw/0_1_2/64_64_64/0_0_0?scale=1")
    bodies1 = np.frombuffer(r.content, "<u8").reshape(64, 64, 64)
    return Vol(c, base, svs, apply_mapping(svs, mapping), bodies1, mapping)


def labels_of(v: Vol) -> list[int]:
    return sorted(int(b) for b in np.unique(v.bodies) if b)


def assert_maximal(runs: NDArray[np.int32]) -> None:
    """No run starts where another on its row ends (DVID merges runs across blocks)."""
    ends = {(x + n, y, z) for x, y, z, n in runs.tolist()}
    assert not any((x, y, z) in ends for x, y, z, _ in runs.tolist())


def test_every_format_of_every_body(vol: Vol) -> None:
    for body in labels_of(vol):
        want = vol.bodies == body
        r = vol.get(f"sparsevol/{body}")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/octet-stream"
        runs = runs_of_rles(r.content)
        assert np.array_equal(paint_runs(runs, SHAPE), want)
        assert_maximal(runs)
        srles = runs_of_srles(vol.get(f"sparsevol/{body}?format=srles").content)
        assert np.array_equal(paint_runs(srles, SHAPE), want)
        label, mask = paint_blocks(vol.get(f"sparsevol/{body}?format=blocks").content, SHAPE)
        assert label == body
        assert np.array_equal(mask, want)


def test_supervoxels_true_is_one_supervoxel(vol: Vol) -> None:
    for sv in list(vol.mapping)[:3]:
        want = vol.svs == sv
        r = vol.get(f"sparsevol/{sv}?supervoxels=true")
        assert np.array_equal(paint_runs(runs_of_rles(r.content), SHAPE), want)
        label, mask = paint_blocks(
            vol.get(f"sparsevol/{sv}?supervoxels=true&format=blocks").content, SHAPE
        )
        assert label == sv
        assert np.array_equal(mask, want)
    assert vol.get(f"sparsevol/{next(iter(vol.mapping))}").status_code == 404  # merged away


def screened(block_bounds: list[tuple[int, int]]) -> NDArray[np.bool_]:
    """Voxels of the blocks inside block bounds (x, y, z) as (lo, hi) inclusive."""
    keep = np.zeros(SHAPE, bool)
    (x0, x1), (y0, y1), (z0, z1) = block_bounds
    for bz in range(max(z0, 0), min(z1, 1) + 1):
        for by in range(max(y0, 0), min(y1, 1) + 1):
            for bx in range(max(x0, 0), min(x1, 1) + 1):
                keep[bz * BS : (bz + 1) * BS, by * BS : (by + 1) * BS, bx * BS : (bx + 1) * BS] = 1
    return keep


@pytest.mark.parametrize(
    "box",
    [
        pytest.param((10, 100, 0, 127, 5, 60), id="inner"),
        pytest.param((70, 127, 64, 127, 64, 127), id="one-block"),
        pytest.param((-5, 30, -1, 200, 0, 63), id="negative-lower"),
    ],
)
def test_bounds_exact_and_not(vol: Vol, box: tuple[int, ...]) -> None:
    minx, maxx, miny, maxy, minz, maxz = box
    q = f"minx={minx}&maxx={maxx}&miny={miny}&maxy={maxy}&minz={minz}&maxz={maxz}"
    inbox = np.zeros(SHAPE, bool)
    inbox[max(minz, 0) : maxz + 1, max(miny, 0) : maxy + 1, max(minx, 0) : maxx + 1] = True
    # Go's integer division truncates toward zero: -5 // 64 is block 0
    blocks = screened(
        [(int(lo / BS), int(hi / BS)) for lo, hi in zip(box[::2], box[1::2], strict=True)]
    )
    for body in labels_of(vol)[:6]:
        mask = vol.bodies == body
        r = vol.get(f"sparsevol/{body}?{q}")
        if not (mask & blocks).any():
            assert r.status_code == 404
            assert vol.c.simulate_head(f"{vol.base}/sparsevol/{body}?{q}").status_code == 204
            continue
        assert vol.c.simulate_head(f"{vol.base}/sparsevol/{body}?{q}").status_code == 200
        exact = mask & inbox & blocks
        if not exact.any():
            assert r.content == b""  # DVID: blocks in bounds, but no voxel: 200, no bytes
        else:
            assert np.array_equal(paint_runs(runs_of_rles(r.content), SHAPE), exact)
        r = vol.get(f"sparsevol/{body}?{q}&exact=false")
        assert np.array_equal(paint_runs(runs_of_rles(r.content), SHAPE), mask & blocks)
        _, got = paint_blocks(vol.get(f"sparsevol/{body}?{q}&format=blocks").content, SHAPE)
        assert np.array_equal(got, mask & blocks)  # DVID clips no voxel in this format


def test_scale_one(vol: Vol) -> None:
    shape1 = (64, 64, 64)
    for body in labels_of(vol):
        want = vol.bodies1 == body
        r = vol.get(f"sparsevol/{body}?scale=1")
        assert r.status_code == 200
        if not want.any():
            assert r.content == b""  # DVID: exists, but no voxel at this scale
            continue
        assert np.array_equal(paint_runs(runs_of_rles(r.content), shape1), want)
    body = labels_of(vol)[0]
    assert vol.get(f"sparsevol/{body}?scale=2").content == b""  # no such scale stored


def test_compression_of_rles_only(vol: Vol) -> None:
    body = labels_of(vol)[1]
    plain = vol.get(f"sparsevol/{body}").content
    lz = vol.get(f"sparsevol/{body}?compression=lz4").content
    assert lz4.block.decompress(lz, uncompressed_size=len(plain)) == plain
    assert gzip.decompress(vol.get(f"sparsevol/{body}?compression=gzip").content) == plain
    srles = vol.get(f"sparsevol/{body}?format=srles").content
    assert vol.get(f"sparsevol/{body}?format=srles&compression=gzip").content == srles


def brute_blocks(mask: NDArray[np.bool_]) -> set[tuple[int, int, int]]:
    z, y, x = np.nonzero(mask)
    return {(int(a), int(b), int(c)) for a, b, c in zip(x // BS, y // BS, z // BS, strict=True)}


def test_coarse_and_coarse_many(vol: Vol) -> None:
    bodies = labels_of(vol)
    for body in bodies:
        r = vol.get(f"sparsevol-coarse/{body}")
        assert np.array_equal(np.frombuffer(r.content[:4], np.uint8), [0, 3, 0, 0])
        assert coarse_blocks(runs_of_rles(r.content)) == brute_blocks(vol.bodies == body)
    r = vol.get(f"sparsevol-coarse/{bodies[0]}?minz=64")
    assert coarse_blocks(runs_of_rles(r.content)) == {
        b for b in brute_blocks(vol.bodies == bodies[0]) if b[2] >= 1
    }
    r = vol.get(f"sparsevol-coarse/{bodies[0]}?minz=100000")
    assert r.status_code == 200
    assert r.content == b"\x00\x03\x00\x00" + bytes(8)  # no span left, still 200
    first, last = bodies[2], bodies[-3]
    data = vol.get(f"sparsevols-coarse/{first}/{last}").content
    pos, seen = 0, []
    while pos < len(data):
        label, n = struct.unpack_from("<Qi", data, pos)
        spans = np.frombuffer(data, "<i4", 4 * n, pos + 12).reshape(n, 4)
        pos += 12 + 16 * n
        assert coarse_blocks(spans) == brute_blocks(vol.bodies == label)
        seen.append(label)
    assert seen == [b for b in bodies if first <= b <= last]
    assert vol.get(f"sparsevols-coarse/{last}/{first}").content == b""


def test_by_point(vol: Vol) -> None:
    rng = np.random.default_rng(4)
    for _ in range(4):
        z, y, x = (int(v) for v in rng.integers(0, 128, 3))
        body, sv = int(vol.bodies[z, y, x]), int(vol.svs[z, y, x])
        r = vol.get(f"sparsevol-by-point/{x}_{y}_{z}")
        if body == 0:
            assert r.status_code == 400
            continue
        assert np.array_equal(paint_runs(runs_of_rles(r.content), SHAPE), vol.bodies == body)
        r = vol.get(f"sparsevol-by-point/{x}_{y}_{z}?supervoxels=true&format=srles")
        assert np.array_equal(paint_runs(runs_of_srles(r.content), SHAPE), vol.svs == sv)
    z, y, x = (int(v) for v in np.argwhere(vol.bodies == 0)[0])
    r = vol.get(f"sparsevol-by-point/{x}_{y}_{z}")
    assert r.status_code == 400
    assert "Label 0 is protected" in r.text


def test_head(vol: Vol) -> None:
    body = labels_of(vol)[0]
    r = vol.c.simulate_head(f"{vol.base}/sparsevol/{body}")
    assert r.status_code == 200
    assert vol.c.simulate_head(f"{vol.base}/sparsevol/{2**50}").status_code == 204
    assert vol.c.simulate_head(f"{vol.base}/sparsevol/0").status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "minx=abc",
        "maxz=1.5",
        "miny=99999999999",
        "format=rle",
        "compression=zip",
        "scale=abc",
        "scale=-1",
    ],
)
def test_bad_sparsevol_options_are_400(vol: Vol, query: str) -> None:
    r = vol.get(f"sparsevol/{labels_of(vol)[0]}?{query}")
    assert r.status_code == 400, r.text


def test_missing_block_named_by_a_posted_index_is_skipped() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    _, base = new_labelmap(c)
    block = np.zeros((64, 64, 64), np.uint64)
    block[5, 6, 7:10] = 9
    post_volume(c, base, block)
    idx = make_label_index(9, {(0, 0, 0): {9: 3}, (5, 5, 5): {9: 100}})
    assert c.simulate_post(f"{base}/index/9", body=idx.SerializeToString()).status_code == 200
    r = c.simulate_get(f"{base}/sparsevol/9")
    assert runs_of_rles(r.content).tolist() == [[7, 6, 5, 3]]


# -- reads follow the body, not the volume -----------------------------------------------


def test_sparsevol_and_size_read_only_the_body() -> None:
    backend = CountingBackend()
    store = ObjectStore(backend, cache_bytes=0)
    versions = VersionService(store)
    labels = LabelStore.on(versions)
    uuid = versions.create_repo()
    versions.new_instance(uuid, "seg", "labelmap", settings={"blocksize": "16,16,16"})
    at = versions.resolve(uuid)
    inst = at.instance("seg")
    # every 8^3 cube its own body (4096 bodies), then a rod and a slab across them
    cubes = np.arange(1, 16**3 + 1, dtype=np.uint64).reshape(16, 16, 16)
    vol = np.repeat(np.repeat(np.repeat(cubes, 8, 0), 8, 1), 8, 2)
    vol[40:44, 40:44, :] = 10_001  # 8 blocks along x
    vol[:64, 64:96, :] = 10_002  # 4 x 2 x 8 = 64 blocks
    arrays = {
        (bx, by, bz): vol[bz * 16 : bz * 16 + 16, by * 16 : by * 16 + 16, bx * 16 : bx * 16 + 16]
        for bz in range(8)
        for by in range(8)
        for bx in range(8)
    }
    labels.writer.write_arrays(at, inst, arrays, "test")
    root = labels.root(at, inst)
    height = labels.tree.height(root)
    total = sum(1 for _ in backend.list_prefix())

    def loads(fn: object) -> int:
        labels.tree.clear_cache()
        store.cache.clear()
        before = backend.gets
        fn()  # type: ignore[operator]
        return backend.gets - before

    for body, nblocks in ((10_001, 8), (10_002, 64)):

        def sparsevol(b: int = body) -> bytes:
            vol = labels.index.volumes.sparsevol(at, inst, b, SparseQuery())
            assert vol is not None
            return b"".join(vol.chunks)

        got = loads(sparsevol)
        data = sparsevol()
        assert np.array_equal(paint_runs(runs_of_rles(data), vol.shape), vol == body)
        # its blocks, its index entries and the tree nodes above them; never the volume
        assert nblocks <= got <= nblocks + 3 * height, (body, got, nblocks, height)
        assert got < total * nblocks / 512 + 3 * height  # the body's share of the volume
        assert loads(lambda b=body: labels.index.size(at, inst, b, False)) <= height
    assert labels.index.size(at, inst, 10_002, False) == 64 * 32 * 128
