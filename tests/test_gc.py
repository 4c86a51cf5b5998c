"""gc: frees what only deleted repos and instances used, keeps what anything else reaches."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.backends._packfile import RECORD
from cas_dvid.objects import Kind, ObjectId, ObjectStore
from cas_dvid.sync import StorePeer
from cas_dvid.sync.gc import collect
from cas_dvid.sync.publish import publish, unpublish
from cas_dvid.sync.verify import verify_all
from cas_dvid.testing import sample
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

EDGE = 16


def open_store(path: Path) -> ObjectStore:
    return ObjectStore(init_store(f"file://{path}")[0], cache_bytes=0)


def cli(*args: str) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def two_repos(vs: VersionService) -> tuple[sample.Sample, sample.Sample, set[ObjectId]]:
    """Repos A and B of 16 blocks each; 4 block contents appear in both."""
    shared = sample.em_like(4, EDGE, seed=100)
    a = sample.build(
        vs,
        grid=(4, 2, 2),
        edge=EDGE,
        kv_keys=5,
        alias="A",
        blocks=lambda n, e: shared + sample.em_like(n - 4, e, seed=1),
    )
    b = sample.build(
        vs,
        grid=(4, 2, 2),
        edge=EDGE,
        kv_keys=5,
        alias="B",
        blocks=lambda n, e: shared + sample.em_like(n - 4, e, seed=2),
    )
    common = set(a.blocks.values()) & set(b.blocks.values())
    assert len(common) == 4
    return a, b, common


def backdate(path: Path, seconds: float) -> None:
    """Make every object (loose, packed or in a log) look ``seconds`` old.

    A log's members list with the times in their records: those are rewritten too.
    """
    t = time.time() - seconds
    for log in (path / "packs").glob("*.log"):
        data = bytearray(log.read_bytes())
        pos = 0
        while pos + RECORD.size <= len(data):
            kind, n, size, _ = RECORD.unpack_from(data, pos)
            RECORD.pack_into(data, pos, kind, n, size, t)
            pos += RECORD.size + n + size
        log.write_bytes(bytes(data))
    for folder in ("objects", "packs"):
        for f in (path / folder).rglob("*"):
            if f.is_file():
                os.utime(f, (t, t))


def present(store: ObjectStore, ids: set[ObjectId]) -> set[ObjectId]:
    ids_l = list(ids)
    return {i for i, h in zip(ids_l, store.has_many(ids_l), strict=True) if h}


def test_gc_after_repo_delete_keeps_shared_blocks(tmp_path: Path) -> None:
    path = tmp_path / "store"
    vs = VersionService(open_store(path))
    a, b, common = two_repos(vs)
    only_a = set(a.blocks.values()) - common
    assert "Deleted repo" in cli("repos", "delete", a.root, "--store", str(path))
    dry = cli("gc", "--store", str(path), "--grace", "0", "--dry-run")
    assert "would remove" in dry
    assert present(vs.store, only_a) == only_a  # a dry run removes nothing
    out = cli("gc", "--store", str(path), "--grace", "0")
    assert "removed" in out
    assert present(vs.store, only_a) == set()
    assert present(vs.store, set(b.blocks.values())) == set(b.blocks.values())
    assert verify_all(StorePeer(vs.store)).ok


def test_gc_after_instance_delete_frees_only_its_blocks(tmp_path: Path) -> None:
    path = tmp_path / "store"
    vs = VersionService(open_store(path))
    a, b, common = two_repos(vs)
    assert "Deleted data instance 'grey'" in cli(
        "repo", a.root, "delete", "grey", "--store", str(path)
    )
    collect(vs.store, grace=0)
    assert present(vs.store, set(a.blocks.values())) == common  # B still uses the shared four
    at = vs.resolve(a.root)
    kv = vs.instance(at, "kv")
    assert vs.tree.count(vs.root_at(at, kv)) == 5
    assert verify_all(StorePeer(vs.store)).ok


def test_deletes_through_the_server(tmp_path: Path) -> None:
    path = tmp_path / "store"
    vs = VersionService(open_store(path))
    a, b, common = two_repos(vs)
    with LiveServer(create_app(ServerConfig(f"file://{path}"))) as srv:
        assert "Deleted data instance" in cli("repo", b.root, "delete", "grey", "--server", srv.url)
        assert "Deleted repo" in cli("repos", "delete", a.root, "--server", srv.url)
        status, _, _ = srv.request("DELETE", f"/api/cas/repo/{b.root}")
        assert status == 400  # needs imsurethiscanbedeleted=true
    report = collect(vs.store, grace=0)
    assert present(vs.store, set(a.blocks.values()) | set(b.blocks.values())) == set()
    assert report.deleted >= 28


def test_grace_period_keeps_young_garbage(tmp_path: Path) -> None:
    vs = VersionService(open_store(tmp_path / "store"))
    sample.build(vs, grid=(2, 2, 2), edge=EDGE)
    orphan = vs.store.put(Kind.BLOB, b"nobody points at this" * 50)
    report = collect(vs.store, grace=3600)
    assert report.deleted == 0 and vs.store.has(orphan)
    report = collect(vs.store, grace=0)
    assert report.deleted == 1 and not vs.store.has(orphan)


def test_young_tree_nodes_keep_their_subtrees(tmp_path: Path) -> None:
    """A writer's new (young) tree still references older nodes: they must survive."""
    vs = VersionService(open_store(tmp_path / "store"))
    s = sample.build(vs, grid=(4, 4, 2), edge=EDGE)
    at = vs.resolve(s.root)
    old_root = vs.root_at(at, vs.instance(at, "grey"))
    vs.delete_instance(s.root, "grey")
    backdate(tmp_path / "store", 7200)
    # a tree built on the old one and named by no ref yet, as a write in flight
    young = vs.tree.apply(old_root, {sample.tree_key(9, 9, 9): b"\x00x"})
    # gc in another process (this one's view keeps the times it wrote, not the backdated)
    report = collect(open_store(tmp_path / "store"), grace=3600)
    assert report.young == 2 and report.deleted == 2  # the old root and leaf the new path replaced
    assert not vs.store.has(old_root)
    vs.tree.clear_cache()
    assert len(list(vs.tree.range(young))) == 33  # every node the young tree shares survived
    assert present(vs.store, set(s.blocks.values())) == set(s.blocks.values())


def test_incremental_gc_reads_only_new_objects(tmp_path: Path) -> None:
    vs = VersionService(open_store(tmp_path / "store"))
    s = sample.build(vs, grid=(8, 8, 2), edge=EDGE, kv_keys=500)
    first = collect(vs.store, grace=0, slack=0)
    assert first.mode == "full" and first.nodes_read > 5
    child, _ = sample.change(vs, s.root, list(s.blocks)[:2], edge=EDGE)
    orphan = vs.store.put(Kind.BLOB, b"aborted upload" * 100)
    second = collect(vs.store, grace=0, slack=0)
    assert second.mode == "incremental"
    assert second.deleted == 1 and not vs.store.has(orphan)
    assert second.examined < 20 and second.nodes_read < first.nodes_read
    assert verify_all(StorePeer(vs.store)).ok
    vs.delete_instance(child, "kv")  # a root dropped: back to a full mark
    third = collect(vs.store, grace=0, slack=0)
    assert third.mode == "full" and third.deleted > 0
    assert verify_all(StorePeer(vs.store)).ok


def test_overwrites_at_an_open_version_become_garbage(tmp_path: Path) -> None:
    vs = VersionService(open_store(tmp_path / "store"))
    s = sample.build(vs, grid=(4, 4, 2), edge=EDGE)
    child = vs.new_child(s.root)
    at = vs.resolve(child)
    kv = vs.instance(at, "kv")
    big = [vs.store.put(Kind.BLOB, bytes([i]) * 5000) for i in range(3)]
    for i, blob in enumerate(big):
        vs.write(at, kv, {b"\xb1big": b"\x01" + blob, b"\xb1n": b"\x00" + bytes([i])})
    collect(vs.store, grace=0)
    assert present(vs.store, set(big)) == {big[-1]}
    assert verify_all(StorePeer(vs.store)).ok


def test_published_pin_keeps_a_deleted_repo_until_unpublished(tmp_path: Path) -> None:
    vs = VersionService(open_store(tmp_path / "store"))
    s = sample.build(vs, grid=(2, 2, 2), edge=EDGE)
    dest = open_store(tmp_path / "pub")
    manifest, _ = publish(StorePeer(vs.store), StorePeer(dest), s.root)
    vs.delete_repo(s.root)
    collect(vs.store, grace=0)
    assert present(vs.store, set(s.blocks.values())) == set(s.blocks.values())
    unpublish(StorePeer(vs.store), manifest.commit.hex())
    collect(vs.store, grace=0)
    assert present(vs.store, set(s.blocks.values())) == set()
    with pytest.raises(KeyError):
        unpublish(StorePeer(vs.store), manifest.commit.hex())
