"""push/pull ``--roi NAME``: only blocks inside the ROI travel, checked against brute force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.partial import partial_region, require_covered
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.datatypes.roi.spans import merge_spans
from cas_dvid.datatypes.roi.store import RoiStore, roi_boxes
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore
from cas_dvid.sync import StorePeer, transfer_version
from cas_dvid.sync.verify import verify_version
from cas_dvid.testing import sample
from cas_dvid.testing.live import LiveServer
from cas_dvid.trees.keys import parse_block_key
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

EDGE = 16
GRID = (6, 5, 4)  # grey: 120 blocks of 16^3
SPATIAL = Spatial(b"\x17", Point3(EDGE, EDGE, EDGE))


def new_store(path: Path) -> ObjectStore:
    backend, _ = init_store(f"file://{path}")
    return ObjectStore(backend, cache_bytes=1 << 20)


def with_roi(vs: VersionService, spans: list[list[int]], roi_block: int) -> sample.Sample:
    s = sample.build(vs, grid=GRID, edge=EDGE, kv_keys=5, commit=False)
    inst = vs.new_instance(
        s.root, "r", "roi", settings={"blocksize": f"{roi_block}," * 2 + f"{roi_block}"}
    )
    RoiStore.on(vs).put(vs.resolve(s.root), inst, json.dumps(spans).encode())
    vs.commit(s.root, "with a roi")
    return s


def brute_force(spans: list[list[int]], roi_block: int) -> set[tuple[int, int, int]]:
    """Grey blocks whose voxels meet any ROI block (ROI blocks may be bigger or smaller)."""
    out = set()
    for z, y, x0, x1 in spans:
        for x in range(x0, x1 + 1):
            lo = np.array([x, y, z]) * roi_block
            hi = lo + roi_block - 1
            for bz in range(lo[2] // EDGE, hi[2] // EDGE + 1):
                for by in range(lo[1] // EDGE, hi[1] // EDGE + 1):
                    for bx in range(lo[0] // EDGE, hi[0] // EDGE + 1):
                        if 0 <= bx < GRID[0] and 0 <= by < GRID[1] and 0 <= bz < GRID[2]:
                            out.add((bx, by, bz))
    return out


def xyz(key: bytes) -> tuple[int, int, int]:
    _, z, y, x = parse_block_key(key[1:])
    return x, y, z


SPANS = st.lists(
    st.tuples(st.integers(-1, 4), st.integers(-1, 5), st.integers(-1, 6), st.integers(0, 3)),
    min_size=1,
    max_size=10,
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(raw=SPANS, roi_block=st.sampled_from([8, 16, 32]))
def test_roi_pull_moves_exactly_the_blocks_inside(
    tmp_path_factory: pytest.TempPathFactory, raw: list[tuple[int, int, int, int]], roi_block: int
) -> None:
    tmp = tmp_path_factory.mktemp("roi")
    src = VersionService(new_store(tmp / "src"))
    spans = [[z, y, x0, x0 + n] for z, y, x0, n in raw]
    s = with_roi(src, spans, roi_block)
    dst_store = new_store(tmp / "dst")
    report = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, roi="r")
    want = brute_force(spans, roi_block)
    inside = {k: i for k, i in s.blocks.items() if xyz(k) in want}
    have = dst_store.has_many(list(s.blocks.values()))
    got = {i for i, h in zip(s.blocks.values(), have, strict=True) if h}
    assert got == set(inside.values())
    assert report.blobs == len(inside)  # roi spans and kv values are inline: no blobs
    dv = VersionService(dst_store)
    at = dv.resolve(s.root)
    grey = dv.instance(at, "grey")
    region = partial_region(at.repo, at.uuid, grey, SPATIAL)
    if len(want) < GRID[0] * GRID[1] * GRID[2]:
        assert region is not None
        held = {
            (x, y, z)
            for z in range(GRID[2])
            for y in range(GRID[1])
            for x in range(GRID[0])
            if region.has_block(x, y, z)
        }
        assert held == want
    assert verify_version(StorePeer(dst_store), s.root).ok
    # The ROI instance itself travels whole.
    stored = RoiStore.on(dv).spans(at, dv.instance(at, "r")).tolist()
    assert stored == [list(t) for t in sorted({tuple(sp) for sp in spans})]


def test_roi_boxes_cover_exactly_the_roi() -> None:
    rng = np.random.default_rng(4)
    spans = [[int(z), int(y), int(x), int(x + n)] for z, y, x, n in rng.integers(0, 6, (60, 4))]
    boxes = roi_boxes(merge_spans(spans), (32, 16, 8))
    covered = set()
    for b in boxes:
        for z in range(b.start.z // 8, b.stop.z // 8):
            for y in range(b.start.y // 16, b.stop.y // 16):
                for x in range(b.start.x // 32, b.stop.x // 32):
                    assert (x, y, z) not in covered  # boxes do not overlap
                    covered.add((x, y, z))
    want = {(x, y, z) for z, y, x0, x1 in spans for x in range(x0, x1 + 1)}
    assert covered == want
    assert len(boxes) <= len(merge_spans(spans))
    cube = [[z, y, 2, 5] for z in range(4) for y in range(6)]
    assert len(roi_boxes(merge_spans(cube), (8, 8, 8))) == 4  # one box per z plane


def test_roi_pull_reads_inside_and_refuses_outside(tmp_path: Path) -> None:
    src = VersionService(new_store(tmp_path / "src"))
    s = with_roi(src, [[0, 0, 0, 1], [0, 1, 0, 1]], EDGE)
    dst_store = new_store(tmp_path / "dst")
    report = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, roi="r")
    assert report.blobs == 4 and report.partial == (Box3(Point3(0, 0, 0), Point3(32, 32, 16)),)
    dv = VersionService(dst_store)
    at = dv.resolve(s.root)
    grey = dv.instance(at, "grey")
    require_covered(at, grey, SPATIAL, Box3(Point3(0, 0, 0), Point3(32, 32, 16)))
    with pytest.raises(InvalidInputError, match="pulled partially"):
        require_covered(at, grey, SPATIAL, Box3(Point3(0, 0, 0), Point3(48, 32, 16)))
    full = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root)
    assert full.blobs == 120 - 4 and full.partial is None


@pytest.mark.parametrize(
    ("roi", "box", "message"),
    [
        ("nope", None, "no roi instance"),
        ("grey", None, "no roi instance"),
        ("empty", None, "is empty"),
        ("r", Box3(Point3(0, 0, 0), Point3(8, 8, 8)), "not both"),
    ],
)
def test_bad_roi_is_refused_before_sending(
    tmp_path: Path, roi: str, box: Box3 | None, message: str
) -> None:
    src = VersionService(new_store(tmp_path / "src"))
    s = sample.build(src, grid=GRID, edge=EDGE, kv_keys=5, commit=False)
    for name, spans in (("r", [[0, 0, 0, 0]]), ("empty", [])):
        inst = src.new_instance(s.root, name, "roi")
        RoiStore.on(src).put(src.resolve(s.root), inst, json.dumps(spans).encode())
    src.commit(s.root, "x")
    dst_store = new_store(tmp_path / "dst")
    with pytest.raises(InvalidInputError, match=message):
        transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, roi=roi, box=box)
    assert sum(1 for _ in dst_store.iter_objects()) == 0


def test_cli_push_and_pull_with_roi_over_waitress(tmp_path: Path) -> None:
    src_dir = tmp_path / "src"
    src = VersionService(new_store(src_dir))
    s = with_roi(src, [[0, 0, 0, 2], [1, 2, 3, 5]], EDGE)
    want = brute_force([[0, 0, 0, 2], [1, 2, 3, 5]], EDGE)
    new_store(tmp_path / "srv").close()
    app = create_app(ServerConfig(f"file://{tmp_path / 'srv'}"))
    with LiveServer(app) as srv:
        r = subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "push", srv.url, s.root, "--roi", "r"]
            + ["--store", str(src_dir), "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert f"{len(want)} blobs" in r.stdout, r.stdout
        out_dir = tmp_path / "out"
        r = subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "pull", srv.url, s.root, "--roi", "r"]
            + ["--store", str(out_dir), "--init", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert f"{len(want)} blobs" in r.stdout, r.stdout
    out = new_store(out_dir)
    have = out.has_many(list(s.blocks.values()))
    got = {xyz(k) for k, h in zip(s.blocks, have, strict=True) if h}
    assert got == want


def two_version_roi_store(path: Path) -> tuple[VersionService, sample.Sample, str, dict]:
    """Root (locked): grey + roi ``r`` = SPANS_A; child (open): 3 blocks rewritten, r = SPANS_B."""
    src = VersionService(new_store(path))
    s = with_roi(src, SPANS_A, EDGE)
    keys = [sample.tree_key(0, 0, 0), sample.tree_key(5, 4, 3), sample.tree_key(1, 1, 0)]
    child, changed = sample.change(src, s.root, keys, edge=EDGE, commit=False)
    at = src.resolve(child)
    RoiStore.on(src).put(at, src.instance(at, "r"), json.dumps(SPANS_B).encode())
    return src, s, child, changed


SPANS_A = [[0, 0, 0, 1], [0, 1, 0, 1]]
SPANS_B = [[3, 4, 4, 5], [0, 0, 0, 0]]


def held_blocks(vs: VersionService, uuid: str) -> set[tuple[int, int, int]]:
    at = vs.resolve(uuid)
    region = partial_region(at.repo, at.uuid, vs.instance(at, "grey"), SPATIAL)
    assert region is not None
    return {
        (x, y, z)
        for z in range(GRID[2])
        for y in range(GRID[1])
        for x in range(GRID[0])
        if region.has_block(x, y, z)
    }


def test_clone_roi_moves_each_versions_roi_blocks(tmp_path: Path) -> None:
    from cas_dvid.sync.clone import clone
    from cas_dvid.sync.verify import verify_all

    src, s, child, changed = two_version_roi_store(tmp_path / "src")
    dst_store = new_store(tmp_path / "dst")
    report = clone(StorePeer(src.store), StorePeer(dst_store), roi="r")
    want_root = brute_force(SPANS_A, EDGE)
    want_child = brute_force(SPANS_B, EDGE)
    at_child = {**s.blocks, **changed}
    wanted = {s.blocks[k] for k in s.blocks if xyz(k) in want_root}
    wanted |= {at_child[k] for k in at_child if xyz(k) in want_child}
    every = set(s.blocks.values()) | set(changed.values())
    have = dst_store.has_many(sorted(every))
    assert {i for i, h in zip(sorted(every), have, strict=True) if h} == wanted
    assert report.blobs == len(wanted) and report.partial is not None
    dv = VersionService(dst_store)
    assert held_blocks(dv, s.root) == want_root
    assert held_blocks(dv, child) == want_child
    at = dv.resolve(child)
    assert not at.node.locked
    require_covered(at, dv.instance(at, "grey"), SPATIAL, Box3(Point3(0, 0, 0), Point3(16, 16, 16)))
    with pytest.raises(InvalidInputError, match="pulled partially"):
        require_covered(
            at, dv.instance(at, "grey"), SPATIAL, Box3(Point3(16, 0, 0), Point3(32, 16, 16))
        )
    # Keyvalue and the ROI itself travel whole, at both versions.
    assert RoiStore.on(dv).spans(at, dv.instance(at, "r")).tolist() == sorted(SPANS_B)
    kv = dv.instance(at, "kv")
    assert list(dv.tree.range(dv.root_at(at, kv))) == list(
        src.tree.range(src.root_at(src.resolve(child), src.instance(src.resolve(child), "kv")))
    )
    assert verify_all(StorePeer(dst_store)).ok
    # A second ROI clone sends nothing; a whole clone then fills in the rest.
    assert clone(StorePeer(src.store), StorePeer(dst_store), roi="r").blobs == 0
    full = clone(StorePeer(src.store), StorePeer(dst_store))
    assert full.blobs == len(every) - len(wanted)
    assert all(dst_store.has_many(sorted(every)))


def test_clone_roi_of_a_version_without_the_roi_sends_no_blocks(tmp_path: Path) -> None:
    from cas_dvid.sync.clone import clone

    src = VersionService(new_store(tmp_path / "src"))
    s = sample.build(src, grid=GRID, edge=EDGE, kv_keys=5, commit=True)
    child = src.new_child(s.root)
    at = src.resolve(child)
    inst = src.new_instance(child, "r", "roi")  # DVID's default ROI block: 32^3
    RoiStore.on(src).put(src.resolve(child), inst, json.dumps(SPANS_A).encode())
    dst_store = new_store(tmp_path / "dst")
    report = clone(StorePeer(src.store), StorePeer(dst_store), roi="r")
    assert report.blobs == len(brute_force(SPANS_A, 32))  # the child's ROI blocks only
    dv = VersionService(dst_store)
    assert held_blocks(dv, s.root) == set()  # the ROI is absent there: no blocks
    assert held_blocks(dv, child) == brute_force(SPANS_A, 32)
    root_at = dv.resolve(s.root)
    assert len(list(dv.tree.range(dv.root_at(root_at, dv.instance(root_at, "kv"))))) == 5
    del at


def test_clone_roi_refuses_a_repo_without_it(tmp_path: Path) -> None:
    from cas_dvid.sync.clone import clone

    src = VersionService(new_store(tmp_path / "src"))
    sample.build(src, grid=GRID, edge=EDGE, kv_keys=5)
    dst_store = new_store(tmp_path / "dst")
    with pytest.raises(InvalidInputError, match="no roi instance"):
        clone(StorePeer(src.store), StorePeer(dst_store), roi="r")
    assert sum(1 for _ in dst_store.iter_objects()) == 0


def test_cli_clone_with_roi_from_waitress(tmp_path: Path) -> None:
    src_dir = tmp_path / "src"
    src, s, child, _ = two_version_roi_store(src_dir)
    src.store.close()
    app = create_app(ServerConfig(f"file://{src_dir}"))
    with LiveServer(app) as srv:
        r = subprocess.run(
            [sys.executable, "-m", "cas_dvid.cli", "clone", srv.url, str(tmp_path / "out")]
            + ["--roi", "r", "--quiet"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 0, r.stderr
    assert "partial to" in r.stdout, r.stdout
    dv = VersionService(new_store(tmp_path / "out"))
    assert held_blocks(dv, s.root) == brute_force(SPANS_A, EDGE)
    assert held_blocks(dv, child) == brute_force(SPANS_B, EDGE)
