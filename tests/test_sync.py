"""Push, pull and clone between stores: what is sent, what arrives, what is refused."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from cas_dvid.errors import ConflictError, CorruptObjectError, InvalidInputError
from cas_dvid.objects import ObjectId, ObjectStore, to_hex
from cas_dvid.objects.ids import BytesLike
from cas_dvid.versions.stores import init_store
from cas_dvid.datatypes.geometry import Box3, Point3, parse_box
from cas_dvid.datatypes.partial import Region, partial_region
from cas_dvid.datatypes.partial import require_covered as _require_covered
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.sync import StorePeer, transfer_version
from cas_dvid.testing import sample
from cas_dvid.versions import At, Instance
from cas_dvid.versions.refs import INCOMPLETE_REF
from cas_dvid.sync.clone import clone
from cas_dvid.sync.verify import verify_all, verify_version
from cas_dvid.trees.keys import parse_block_key
from cas_dvid.versions import VersionService

EDGE = 16
GRID = (8, 8, 4)  # 256 blocks of 4 KiB
SPATIAL = Spatial(b"\x17", Point3(EDGE, EDGE, EDGE))


def partial_box(vs: VersionService, at: At, inst: Instance) -> Region | None:
    return partial_region(at.repo, at.uuid, inst, SPATIAL)


def require_covered(
    at: At, inst: Instance, lo: tuple[int, int, int], hi: tuple[int, int, int]
) -> None:
    _require_covered(at, inst, SPATIAL, Box3(Point3(*lo), Point3(*hi)))


def new_store(path: Path) -> ObjectStore:
    backend, _ = init_store(f"file://{path}")
    return ObjectStore(backend, cache_bytes=1 << 20)


@pytest.fixture
def src(tmp_path: Path) -> VersionService:
    return VersionService(new_store(tmp_path / "src"))


@pytest.fixture
def dst_store(tmp_path: Path) -> ObjectStore:
    return new_store(tmp_path / "dst")


def stored_size(store: ObjectStore, ids: Sequence[ObjectId]) -> int:
    return sum(len(store.get_stored(i)) for i in ids)


def tree_nodes(vs: VersionService, uuid: str, name: str) -> set[ObjectId]:
    at = vs.resolve(uuid)
    return set(vs.tree.iter_node_ids(vs.root_at(at, vs.instance(at, name))))


def object_count(store: ObjectStore) -> int:
    return sum(1 for _ in store.iter_objects())


def test_push_then_incremental_push_sends_only_the_change(
    src: VersionService, dst_store: ObjectStore
) -> None:
    s = sample.build(src, grid=GRID, edge=EDGE, kv_keys=300)
    a, b = StorePeer(src.store), StorePeer(dst_store)
    first = transfer_version(a, b, s.root)
    assert first.blobs == 256 and first.commits == 1 and first.refs_moved
    assert verify_version(b, s.root).ok

    changed = list(s.blocks)[10:13]  # ~1 % of the blocks
    child, new_ids = sample.change(src, s.root, changed, edge=EDGE)
    new_nodes = tree_nodes(src, child, "grey") - tree_nodes(src, s.root, "grey")
    commit = ObjectId(bytes.fromhex(src.resolve(child).node.commit or ""))
    second = transfer_version(a, b, child)
    assert (second.blobs, second.nodes, second.commits) == (3, len(new_nodes), 1)
    assert second.versions == [child] and second.skipped == [s.root]
    want = stored_size(src.store, [*new_ids.values(), *new_nodes, commit])
    assert second.bytes == want
    assert second.have_requests <= 6  # negotiation, then one per tree level and one for blobs

    dv = VersionService(dst_store)
    at = dv.resolve(child)
    assert at.node.locked and at.node.parents == [s.root]
    assert dv.resolve(s.root).node.children == [child]
    assert verify_version(b, child).ok


def test_noop_push_is_one_round_trip(src: VersionService, dst_store: ObjectStore) -> None:
    s = sample.build(src, grid=(4, 4, 4), edge=EDGE)
    a, b = StorePeer(src.store), StorePeer(dst_store)
    transfer_version(a, b, s.root)
    again = transfer_version(a, b, s.root)
    assert (again.objects, again.have_requests, again.refs_moved) == (0, 1, False)


def test_flatten_sends_one_version_without_history(
    src: VersionService, dst_store: ObjectStore
) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE)
    child, _ = sample.change(src, s.root, list(s.blocks)[:2], edge=EDGE)
    report = transfer_version(StorePeer(src.store), StorePeer(dst_store), child, flatten=True)
    assert report.versions == [child]
    repo = VersionService(dst_store).resolve(child).repo
    assert list(repo.nodes) == [child] and repo.nodes[child].parents == []
    assert verify_version(StorePeer(dst_store), child).ok


def test_data_filter_sends_only_named_instances(
    src: VersionService, dst_store: ObjectStore
) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE, kv_keys=50)
    report = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, data=["kv"])
    assert report.blobs == 0
    dv = VersionService(dst_store)
    assert list(dv.resolve(s.root).repo.instances) == ["kv"]
    # the commit names grey too, so it stays listed as incomplete: a full push later completes it
    assert dst_store.backend.get_ref(INCOMPLETE_REF)
    full = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root)
    assert full.blobs == 32
    assert set(dv.resolve(s.root).repo.instances) == {"grey", "kv"}
    assert verify_version(StorePeer(dst_store), s.root).ok
    with pytest.raises(InvalidInputError, match="no data instance named 'nope'"):
        transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, data=["nope"])


def block_xyz(key: bytes) -> tuple[int, int, int]:
    _, z, y, x = parse_block_key(key[1:])
    return x, y, z


def test_box_pull_gets_only_blocks_in_the_box(src: VersionService, dst_store: ObjectStore) -> None:
    s = sample.build(src, grid=GRID, edge=EDGE, kv_keys=20)
    box = parse_box("20,0,0,40,17,16")  # blocks x 1..2, y 0..1, z 0
    report = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, box=box)
    inside = {
        k: i
        for k, i in s.blocks.items()
        if 1 <= block_xyz(k)[0] <= 2 and block_xyz(k)[1] <= 1 and block_xyz(k)[2] == 0
    }
    assert report.blobs == len(inside) == 4 and report.partial == (box,)
    have = dst_store.has_many(list(s.blocks.values()))
    assert {i for i, h in zip(s.blocks.values(), have, strict=True) if h} == set(inside.values())

    dv = VersionService(dst_store)
    at = dv.resolve(s.root)
    grey = dv.instance(at, "grey")
    region = partial_box(dv, at, grey)
    assert region is not None and region.boxes == (box,)
    assert region.has_block(1, 0, 0) and not region.has_block(0, 0, 0)
    require_covered(at, grey, (16, 0, 0), (48, 32, 16))
    with pytest.raises(InvalidInputError, match="pulled partially"):
        require_covered(at, grey, (0, 0, 0), (32, 32, 32))
    assert partial_box(dv, at, dv.instance(at, "kv")) is None
    assert verify_version(StorePeer(dst_store), s.root).ok  # checks exactly the region it holds

    # the partial tree nodes are not trusted: a full pull completes the version
    full = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root)
    assert full.blobs == 256 - 4 and full.partial is None
    at = dv.resolve(s.root)
    assert partial_box(dv, at, grey) is None
    assert verify_all(StorePeer(dst_store)).ok
    with pytest.raises(Exception, match="not found"):
        dst_store.backend.get_ref(INCOMPLETE_REF)


def test_partial_store_pushes_back_only_what_changed(
    tmp_path: Path, src: VersionService, dst_store: ObjectStore
) -> None:
    """Pull a region to a laptop, change it offline, push back: only the change travels."""
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE)
    laptop = VersionService(dst_store)
    transfer_version(
        StorePeer(src.store), StorePeer(dst_store), s.root, box=parse_box("0,0,0,32,32,16")
    )
    child, new_ids = sample.change(laptop, s.root, [sample.tree_key(1, 1, 0)], edge=EDGE, seed=3)
    back = transfer_version(StorePeer(dst_store), StorePeer(src.store), child)
    assert back.blobs == 1 and back.partial is None
    assert verify_version(StorePeer(src.store), child).ok
    # to a store that lacks the rest, the laptop sends what it holds and says so
    elsewhere = new_store(tmp_path / "elsewhere")
    onward = transfer_version(StorePeer(dst_store), StorePeer(elsewhere), child)
    assert onward.partial == (parse_box("0,0,0,32,32,16"),) and onward.blobs == 5  # 4 + the new one
    ev = VersionService(elsewhere)
    for uuid in (s.root, child):
        at = ev.resolve(uuid)
        region = partial_box(ev, at, ev.instance(at, "grey"))
        assert region is not None and region.boxes == (parse_box("0,0,0,32,32,16"),)
    assert verify_version(StorePeer(elsewhere), child).ok
    copy = new_store(tmp_path / "copy")  # a clone of a partial store is partial alike
    clone(StorePeer(dst_store), StorePeer(copy))
    cv = VersionService(copy)
    at = cv.resolve(child)
    region = partial_box(cv, at, cv.instance(at, "grey"))
    assert region is not None and region.boxes == (parse_box("0,0,0,32,32,16"),)
    assert verify_all(StorePeer(copy)).ok


def test_version_made_from_a_partial_one_is_partial(
    src: VersionService, dst_store: ObjectStore
) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE)
    box = parse_box("0,0,0,16,16,16")
    transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, box=box)
    dv = VersionService(dst_store)
    child = dv.new_child(s.root)
    at = dv.resolve(child)
    region = partial_box(dv, at, dv.instance(at, "grey"))
    assert region is not None and region.boxes == (box,)


def test_second_box_adds_to_the_region(src: VersionService, dst_store: ObjectStore) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE)
    a, b = StorePeer(src.store), StorePeer(dst_store)
    transfer_version(a, b, s.root, box=parse_box("0,0,0,16,16,16"))
    second = transfer_version(a, b, s.root, box=parse_box("48,48,16,64,64,32"))
    assert second.blobs == 1
    dv = VersionService(dst_store)
    at = dv.resolve(s.root)
    region = partial_box(dv, at, dv.instance(at, "grey"))
    assert region is not None and len(region.boxes) == 2
    assert verify_version(b, s.root).ok


def test_flipped_byte_in_the_source_is_refused(
    tmp_path: Path, src: VersionService, dst_store: ObjectStore, loose_objects: None
) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE)
    victim = to_hex(next(iter(s.blocks.values())))
    path = tmp_path / "src" / "objects" / victim[:2] / victim[2:]
    raw = bytearray(path.read_bytes())
    raw[100] ^= 0x01
    os.chmod(path, 0o644)
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError, match=victim):
        transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root)
    assert not dst_store.has(ObjectId(bytes.fromhex(victim)))
    assert list(dst_store.backend.list_refs("repos/")) == []  # nothing is referenced


class FailingPeer(StorePeer):
    """A receiver whose link drops after ``limit`` objects."""

    def __init__(self, store: ObjectStore, limit: int) -> None:
        super().__init__(store)
        self.limit = limit

    def put_one(self, oid: ObjectId, stored: BytesLike) -> bool:
        if self.limit <= 0:
            raise ConnectionError("link dropped")
        self.limit -= 1
        return super().put_one(oid, stored)

    def put(self, items: Sequence[tuple[ObjectId, BytesLike]]) -> int:
        return sum(self.put_one(o, s) for o, s in items)


def test_interrupted_transfer_resumes_with_what_did_not_arrive(
    src: VersionService, dst_store: ObjectStore
) -> None:
    from cas_dvid.sync import Options

    s = sample.build(src, grid=GRID, edge=EDGE)
    opts = Options(batch_bytes=64 << 10, workers=1)
    with pytest.raises(ConnectionError):
        transfer_version(StorePeer(src.store), FailingPeer(dst_store, 100), s.root, options=opts)
    arrived = object_count(dst_store)
    assert 0 < arrived < 256
    assert list(dst_store.backend.list_refs("repos/")) == []
    again = transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root, options=opts)
    assert again.blobs == 256 - arrived
    assert verify_version(StorePeer(dst_store), s.root).ok


def test_same_version_with_different_commits_conflicts(
    src: VersionService, dst_store: ObjectStore
) -> None:
    s = sample.build(src, grid=(2, 2, 2), edge=EDGE)
    a, b = StorePeer(src.store), StorePeer(dst_store)
    transfer_version(a, b, s.root)
    dv = VersionService(dst_store)
    uuid = "ab" * 16
    for vs, seed in ((src, 1), (dv, 2)):
        vs.new_child(s.root, uuid=uuid)
        at = vs.resolve(uuid)
        vs.write(at, vs.instance(at, "kv"), {b"\xb1x": b"\x00" + bytes([seed])})
        vs.commit(uuid)
    before = object_count(dst_store)
    with pytest.raises(ConflictError, match=f"version {uuid} has commit"):
        transfer_version(a, b, uuid)
    assert object_count(dst_store) == before


def test_unlocked_version_is_refused(src: VersionService, dst_store: ObjectStore) -> None:
    s = sample.build(src, grid=(2, 2, 2), edge=EDGE, commit=False)
    with pytest.raises(InvalidInputError, match="is not locked"):
        transfer_version(StorePeer(src.store), StorePeer(dst_store), s.root)


def test_clone_copies_open_versions_and_heads(tmp_path: Path, src: VersionService) -> None:
    s = sample.build(src, grid=(4, 4, 2), edge=EDGE, kv_keys=10)
    child = src.new_child(s.root)
    at = src.resolve(child)
    src.write(at, src.instance(at, "kv"), {b"\xb1open": b"\x00work in progress"})
    dst = new_store(tmp_path / "clone")
    report = clone(StorePeer(src.store), StorePeer(dst))
    assert report.blobs == 32
    dv = VersionService(dst)
    at = dv.resolve(child)
    assert not at.node.locked
    assert (
        dv.tree.get(dv.root_at(at, dv.instance(at, "kv")), b"\xb1open") == b"\x00work in progress"
    )
    assert verify_all(StorePeer(dst)).ok
    assert clone(StorePeer(src.store), StorePeer(dst)).objects == 0  # run again: nothing to send
