"""Logs in the file store (backends/_logs.py): small objects appended, sealed, orphaned, torn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import cas_dvid.backends._logs as logs
from cas_dvid.backends import LocalBackend
from cas_dvid.backends._packfile import RECORD_TOUCH, encode_records, scan_records
from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import Kind, ObjectStore


def keys(tag: int, n: int) -> list[str]:
    return [f"{tag:04x}{i:04x}" + "0" * 56 for i in range(n)]


def files(root: Path, suffix: str) -> list[str]:
    folder = root / "packs"
    return sorted(p for p in os.listdir(folder) if p.endswith(suffix)) if folder.exists() else []


def test_records_round_trip_and_a_cut_record_is_not_there_yet() -> None:
    items = [("ab" * 32, [b"x" * 5, b"yz"]), ("cd" * 32, [b""]), ("ef01", [memoryview(b"q")])]
    parts, members, n = encode_records(items, 100, 12.5)
    data = b"".join(bytes(p) for p in parts)
    assert len(data) == n
    found = scan_records(data, 100)
    assert found.members == members and found.used == n
    assert found.times == dict.fromkeys(members, 12.5)
    assert {k: data[o - 100 : o - 100 + s] for k, (o, s) in members.items()} == {
        "ab" * 32: b"xxxxxyz",
        "cd" * 32: b"",
        "ef01": b"q",
    }
    for cut in range(1, len(data)):  # every prefix parses to its whole records only
        part = scan_records(data[:cut], 100)
        assert set(part.members) <= set(members) and part.used <= cut
    ab_end = members["ab" * 32][0] + 7 - 100
    junk = scan_records(data[:ab_end] + b"garbage!" * 4, 100)
    assert list(junk.members) == ["ab" * 32]
    touch, _, _ = encode_records([("ab" * 32, [])], 0, 99.0, RECORD_TOUCH)
    assert scan_records(b"".join(bytes(p) for p in touch), 0).touches == {"ab" * 32: 99.0}


def test_small_objects_go_to_one_log_that_other_views_read(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    b = LocalBackend(tmp_path)
    ks = keys(1, 40)
    assert b.has_many(ks[:1]) == [False]
    for k in ks[:30]:
        assert a.put_if_absent(k, [k.encode(), b"!"])
    assert not a.put_if_absent(ks[0], [b"again"])
    a.put_batch([(k, [k.encode(), b"!"]) for k in ks[30:]])  # under PACK_MIN: the log too
    big = "ff" * 32
    a.put_if_absent(big, [b"z" * (logs.LOG_OBJECT_MAX + 1)])
    assert len(files(tmp_path, ".log")) == 1 and files(tmp_path, ".pack") == []
    assert [p.name for p in (tmp_path / "objects").rglob("*") if p.is_file()] == [big[2:]]
    assert b.get(ks[5]) == ks[5].encode() + b"!"  # found after a scan on the miss
    assert b.has_many(ks) == [True] * 40
    assert a.get(ks[7], _range(2, 5)) == ks[7].encode()[2:5]
    assert {i.key for i in b.list_prefix("0001")} == set(ks)
    # more appended after b's first scan: b scans the tail only
    more = keys(2, 5)
    a.put_batch([(k, [b"m"]) for k in more])
    assert b.get(more[4]) == b"m"


def _range(start: int, end: int):  # type: ignore[no-untyped-def]
    from cas_dvid.backends import ByteRange

    return ByteRange(start, end)


def test_a_full_log_is_closed_then_gc_rewrites_it_once_sparse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "LOG_MAX_BYTES", 4096)
    a = LocalBackend(tmp_path, create=True)
    reader = LocalBackend(tmp_path)
    ks = keys(3, 60)
    for k in ks[:10]:
        a.put_if_absent(k, [b"v" * 100])
    assert reader.get(ks[0]) == b"v" * 100  # the reader indexes the open log
    a.delete_many(ks[:3])  # in the open log: marked dead, the log stays
    assert reader.has_many(ks[:4]) == [False] * 3 + [True]
    for k in ks[10:]:
        a.put_if_absent(k, [b"v" * 100])
    closed = len(files(tmp_path, ".log"))
    assert closed > 1 and files(tmp_path, ".pack") == []  # full logs closed, not copied
    assert reader.has_many(ks) == [False] * 3 + [True] * 57
    a.delete_many(ks[3:30])  # most of the closed logs' members: rewritten or removed
    assert len(files(tmp_path, ".log")) < closed
    assert reader.has_many(ks) == [False] * 30 + [True] * 30
    assert reader.get(ks[35]) == b"v" * 100
    with pytest.raises(NotFoundError):
        reader.get(ks[10])


def test_threads_appending_while_logs_fill_lose_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "LOG_MAX_BYTES", 16 << 10)
    a = LocalBackend(tmp_path, create=True)
    errors: list[BaseException] = []

    def write(tag: int) -> None:
        try:
            for k in keys(tag, 300):
                a.put_if_absent(k, [k.encode() * 3])
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    fresh = LocalBackend(tmp_path)
    for tag in range(4):
        for k in keys(tag, 300):
            assert fresh.get(k) == k.encode() * 3


def test_gc_deletes_in_a_log_and_a_re_put_is_kept(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path, create=True))
    oid = store.put(Kind.BLOB, b"small")
    key = oid.hex()
    store.backend.delete_many([key])
    assert not store.has(oid)
    other = LocalBackend(tmp_path)  # another process's view agrees
    assert other.has_many([key]) == [False]
    store.cache.clear()
    assert store.put(Kind.BLOB, b"small") == oid  # the log's dead mark must not hide it
    assert store.has(oid) and other.has_many([key]) == [True]
    assert bytes(store.get(oid)) == b"small"


def test_members_list_with_their_own_times_and_touches(tmp_path: Path) -> None:
    a = LocalBackend(tmp_path, create=True)
    old, new = keys(4, 2)
    a.put_if_absent(old, [b"o"])
    time.sleep(0.05)
    t_mid = time.time()
    time.sleep(0.05)
    a.put_if_absent(new, [b"n"])
    seen = {i.key: i.mtime for i in LocalBackend(tmp_path).list_prefix("0004")}
    assert seen[old] < t_mid < seen[new]
    assert not a.put_if_absent(old, [b"o"])  # put again: a touch record, young again
    seen = {i.key: i.mtime for i in LocalBackend(tmp_path).list_prefix("0004")}
    assert seen[old] > t_mid


def test_a_flipped_byte_in_a_log_is_detected(tmp_path: Path) -> None:
    store = ObjectStore(LocalBackend(tmp_path, create=True), cache_bytes=0)
    oid = store.put(Kind.BLOB, b"payload bytes" * 10)
    (log,) = files(tmp_path, ".log")
    path = tmp_path / "packs" / log
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptObjectError):
        ObjectStore(LocalBackend(tmp_path), cache_bytes=0).get(oid)


_WRITER = """
import sys, time
from cas_dvid.backends import LocalBackend
b = LocalBackend(sys.argv[1])
for i in range(600):
    k = f"{i:08x}" + "0" * 56
    b.put_if_absent(k, [k.encode() * 20])
    print(k, flush=True)
print("end", flush=True)
time.sleep(600)  # alive, holding its log, until killed
"""


def test_a_killed_writers_log_is_read_and_gc_may_rewrite_it(tmp_path: Path) -> None:
    LocalBackend(tmp_path, create=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.stdout is not None
    done = [proc.stdout.readline().split()[0] for _ in range(500)]
    reader = LocalBackend(tmp_path)
    assert reader.get(done[-1]) == done[-1].encode() * 20  # read while it appends
    while (line := proc.stdout.readline().strip()) != "end":
        done.append(line)  # all 600 written, the writer alive
    reader.delete_many(done[:400])  # its writer lives: marked dead, the log stays
    assert len(files(tmp_path, ".log")) == 1
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done += [line for line in proc.stdout.read().split() if line != "end"]
    assert len(done) == 600
    fresh = LocalBackend(tmp_path)
    assert fresh.has_many(done) == [False] * 400 + [True] * 200
    gc = LocalBackend(tmp_path)
    gc.delete_many(done[400:450])  # now unwritten, and less than half live: rewritten
    assert files(tmp_path, ".log") == []
    assert len(files(tmp_path, ".pack")) == 1
    fresh = LocalBackend(tmp_path)
    assert fresh.has_many(done) == [False] * 450 + [True] * 150
    assert fresh.get(done[-1]) == done[-1].encode() * 20


def test_gc_rewriting_a_closed_log_keeps_records_its_view_had_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "LOG_MAX_BYTES", 3000)
    a = LocalBackend(tmp_path, create=True)
    gc = LocalBackend(tmp_path)
    ks = keys(5, 30)
    for k in ks[:10]:
        a.put_if_absent(k, [b"w" * 100])
    assert gc.get(ks[0]) == b"w" * 100  # gc's view: the first ten records
    for k in ks[10:]:
        a.put_if_absent(k, [b"w" * 100])  # the log fills and is closed on the way
    gc.delete_many(ks[:9])  # sparse in gc's stale view: it must read the rest first
    fresh = LocalBackend(tmp_path)
    assert fresh.has_many(ks) == [False] * 9 + [True] * 21
    assert all(fresh.get(k) == b"w" * 100 for k in ks[9:])
