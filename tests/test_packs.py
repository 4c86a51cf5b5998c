"""Packs in the file store (backends/_packs.py): many processes, deletes, merges, damage."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from cas_dvid.backends import LocalBackend
from cas_dvid.backends._packfile import decode_index, encode_pack
from cas_dvid.backends._packs import MERGE_FANIN, PACK_MIN
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import ObjectStore
from cas_dvid.sync.gc import collect
from cas_dvid.trees import Tree
from cas_dvid.versions import VersionService
from cas_dvid.versions.nodestore import ObjectNodeStore
from cas_dvid.versions.stores import init_store


def keys(tag: int, n: int) -> list[str]:
    return [f"{tag:04x}{i:04x}" + "0" * 56 for i in range(n)]


def packs(root: Path, suffix: str = ".pack") -> list[str]:
    folder = root / "packs"
    return sorted(p for p in os.listdir(folder) if p.endswith(suffix)) if folder.exists() else []


def test_pack_format_round_trips() -> None:
    items = [("ab" * 32, [b"x" * 5, b"yz"]), ("cd" * 32, [b""]), ("ef01", [b"q"])]
    parts, members = encode_pack(items)
    data = b"".join(bytes(p) for p in parts)
    index = decode_index(data, "t")
    assert index == members
    assert {k: data[o : o + n] for k, (o, n) in index.items()} == {
        "ab" * 32: b"xxxxxyz",
        "cd" * 32: b"",
        "ef01": b"q",
    }
    with pytest.raises(Exception, match="not a pack"):
        decode_index(b"NOTAPACK" + data[8:], "t")


def test_a_batch_is_one_file_and_small_ones_go_to_the_log(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    b.put_batch([(k, [b"v"]) for k in keys(1, 100)])
    assert len(packs(tmp_path)) == 1
    assert not any((tmp_path / "objects").iterdir())
    b.put_batch([(k, [b"v"]) for k in keys(2, PACK_MIN - 1)])
    assert len(packs(tmp_path)) == 1
    assert len(packs(tmp_path, ".log")) == 1
    assert not any((tmp_path / "objects").iterdir())
    assert b.has_many(keys(2, PACK_MIN - 1)) == [True] * (PACK_MIN - 1)


def test_another_process_sees_new_packs_and_deletes(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    b = LocalBackend(tmp_path)
    ks = keys(1, 50)
    assert b.has_many(ks[:1]) == [False]  # b loads its (empty) view first
    a.put_batch([(k, [k.encode()]) for k in ks])
    assert b.get(ks[10]) == ks[10].encode()  # found after a refresh on the miss
    a.delete_many(ks[:5])
    # b still has the member in its view: "present" must re-read the .dead file, or b's
    # put would skip a write and the object would be gone.
    assert b.has_many(ks[:6]) == [False] * 5 + [True]
    assert b.put_if_absent(ks[0], [b"rewritten"])
    assert a.get(ks[0]) == b"rewritten"
    a.delete_many(ks)
    assert packs(tmp_path) == []
    # the rewritten one went to b's log, which keeps its dead marks until it is sealed
    assert packs(tmp_path, ".dead") == [
        n[: -len(".log")] + ".dead" for n in packs(tmp_path, ".log")
    ]
    assert b.has_many(ks[5:7]) == [False, False]
    with pytest.raises(NotFoundError):
        b.get(ks[7])


def test_packs_merge_by_tier_and_stale_readers_follow(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    reader = LocalBackend(tmp_path)
    batches = [keys(t, PACK_MIN) for t in range(MERGE_FANIN * MERGE_FANIN)]
    for i, ks in enumerate(batches):
        a.put_batch([(k, [k.encode()]) for k in ks])
        if i == 0:
            assert reader.get(ks[0]) == ks[0].encode()  # the reader's view: one pack
    # 64 packs of one tier merged 8 by 8, then those 8 into one.
    assert len(packs(tmp_path)) < MERGE_FANIN
    everything = [k for ks in batches for k in ks]
    assert reader.has_many(everything) == [True] * len(everything)
    assert all(reader.get(k) == k.encode() for k in everything)
    assert sorted(i.key for i in reader.list_prefix()) == sorted(everything)


def test_merge_drops_dead_members(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    first = keys(0, PACK_MIN)
    a.put_batch([(k, [b"v"]) for k in first])
    a.delete_many(first[:2])
    for t in range(1, MERGE_FANIN):
        a.put_batch([(k, [b"v"]) for k in keys(t, PACK_MIN)])
    assert len(packs(tmp_path)) == 1
    (name,) = packs(tmp_path)
    index = decode_index((tmp_path / "packs" / name).read_bytes(), name)
    assert first[0] not in index
    assert first[2] in index
    assert packs(tmp_path, ".dead") == []


def test_a_mostly_dead_pack_is_rewritten_with_its_live_members(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    reader = LocalBackend(tmp_path)
    ks = keys(0, 2 * PACK_MIN)
    a.put_batch([(k, [k.encode()]) for k in ks])
    assert reader.get(ks[-1]) == ks[-1].encode()
    (first,) = packs(tmp_path)
    a.delete_many(ks[:PACK_MIN])
    assert packs(tmp_path) == [first]  # half live: kept as it is
    a.delete_many(ks[PACK_MIN : PACK_MIN + 1])
    (second,) = packs(tmp_path)
    assert second != first
    assert packs(tmp_path, ".dead") == []
    index = decode_index((tmp_path / "packs" / second).read_bytes(), second)
    live = ks[PACK_MIN + 1 :]
    assert sorted(index) == live
    assert [reader.get(k) for k in live] == [k.encode() for k in live]
    assert reader.has_many(ks) == [False] * (PACK_MIN + 1) + [True] * len(live)


def test_corrupt_packed_object_is_detected(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path, create=True), cache_bytes=0)
    tree = Tree(ObjectNodeStore(store))
    root = tree.build([(f"k{i:05d}".encode(), b"v" * 200) for i in range(2000)])
    (name,) = packs(tmp_path)
    path = tmp_path / "packs" / name
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    fresh = ObjectStore(LocalBackend(tmp_path), cache_bytes=0)
    with pytest.raises(CorruptObjectError):
        list(Tree(ObjectNodeStore(fresh)).range(root))


def test_gc_collects_packed_garbage_and_keeps_the_live(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/s"
    backend, _ = init_store(url)
    versions = VersionService(ObjectStore(backend))
    uuid = versions.create_repo()
    versions.new_instance(uuid, "kv", "keyvalue")
    at = versions.resolve(uuid)
    inst = versions.instance(at, "kv")
    kv = KeyValueStore.on(versions)
    for i in range(6):
        vals = {f"key{j:04d}": f"v{i}-{j}".encode() * 50 for j in range(3000)}
        kv.put_many(at, inst, vals, "test")
    assert packs(tmp_path / "s"), "the writes were too small to be packed: nothing tested"
    before = {i.key for i in backend.list_prefix()}
    report = collect(versions.store, grace=0, slack=0)
    assert report.deleted > 0
    after = {i.key for i in LocalBackend(tmp_path / "s").list_prefix()}
    assert len(after - before) <= 1  # gc's own state object
    assert before - after == set(report.garbage)
    reopened = VersionService(ObjectStore(LocalBackend(tmp_path / "s"), cache_bytes=0))
    at = reopened.resolve(uuid)
    got = KeyValueStore.on(reopened).get_many(
        at, reopened.instance(at, "kv"), ["key0000", "key0299"]
    )
    assert got == {"key0000": b"v5-0" * 50, "key0299": b"v5-299" * 50}


WRITER = """
import sys
from cas_dvid.backends import LocalBackend
from cas_dvid.backends._packs import PACK_MIN
b = LocalBackend(sys.argv[1])
tag = int(sys.argv[2])
for t in range(40):
    ks = [f"{tag:02x}{t:02x}{i:04x}" + "0" * 56 for i in range(PACK_MIN + t % 5)]
    b.put_batch([(k, [k.encode()]) for k in ks])
    assert b.has_many(ks) == [True] * len(ks)
"""


def test_two_processes_write_and_merge_at_once(tmp_path: Path) -> None:
    LocalBackend(tmp_path, create=True)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(tag)]) for tag in (1, 2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    want = [
        f"{tag:02x}{t:02x}{i:04x}" + "0" * 56
        for tag in (1, 2)
        for t in range(40)
        for i in range(PACK_MIN + t % 5)
    ]
    b = LocalBackend(tmp_path)
    assert b.has_many(want) == [True] * len(want)
    assert all(b.get(k) == k.encode() for k in want)
    assert sorted(i.key for i in b.list_prefix()) == sorted(want)
    # merged as they went: each writer merges the packs it knows of, so each leaves at
    # most MERGE_FANIN - 1 in each of the two tiers 40 batches reach
    assert len(packs(tmp_path)) <= 2 * 2 * (MERGE_FANIN - 1)


def test_killed_pack_writer_leaves_a_partial_gc_removes(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    b.put_batch([(k, [b"v"]) for k in keys(1, PACK_MIN)])
    stray = tmp_path / "packs" / "0123abcd.0a0b0c.partial"
    stray.write_bytes(b"CASPACK1 half")
    os.utime(stray, (1, 1))
    orphan = tmp_path / "packs" / "4567cdef.dead"  # a delete that raced a merge
    orphan.write_text(keys(1, 1)[0] + "\n")
    os.utime(orphan, (1, 1))
    assert sorted(b.stale_partials(60)) == sorted([stray, orphan])
    assert b.has_many(keys(1, 1)) == [True]


STREAMER = """
import sys
from cas_dvid.backends import LocalBackend
from cas_dvid.backends._packs import PACK_MIN
b = LocalBackend(sys.argv[1])
for t in range(300):
    b.put_batch([(f"{t:04x}{i:04x}" + "0" * 56, [b"%d-%d" % (t, i)]) for i in range(PACK_MIN)])
    print(t, flush=True)
"""


def test_reads_during_another_process_merges_never_miss(tmp_path: Path) -> None:
    LocalBackend(tmp_path, create=True)
    reader = LocalBackend(tmp_path)
    rng = random.Random(0)
    proc = subprocess.Popen(
        [sys.executable, "-c", STREAMER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    done = -1
    for line in proc.stdout:
        done = int(line)
        for t in (done, rng.randint(0, done)):
            for i in range(PACK_MIN):
                assert reader.get(f"{t:04x}{i:04x}" + "0" * 56) == b"%d-%d" % (t, i)
    assert proc.wait(timeout=60) == 0
    assert done == 299
    assert len(packs(tmp_path)) < 3 * MERGE_FANIN
