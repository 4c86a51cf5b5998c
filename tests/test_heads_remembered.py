"""A writer that alone moves a head swaps from the head it left, without reading the ref.

Several servers share a store: whatever one of them remembers, a head moved or
sealed by another must fail the swap and be re-read, so no write is lost and a
committed node stays locked.
"""

from __future__ import annotations

import pytest

from cas_dvid.backends import MemoryBackend, Ref
from cas_dvid.errors import LockedError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.refs import HEAD_PREFIX


class CountingBackend(MemoryBackend):
    """A memory store that counts the head refs read from it."""

    def __init__(self) -> None:
        super().__init__()
        self.head_reads = 0

    def get_ref(self, name: str) -> Ref:
        if name.startswith(HEAD_PREFIX):
            self.head_reads += 1
        return super().get_ref(name)


def _kv(vs: VersionService, root: str) -> dict[bytes, bytes]:
    at = vs.resolve(root)
    return dict(vs.tree.range(vs.root_at(at, at.instance("kv"))))


def _put(vs: VersionService, root: str, key: bytes) -> None:
    at = vs.resolve(root)
    vs.write(at, at.instance("kv"), {key: b"\x00" + key})


def test_a_head_only_this_process_writes_is_not_read_again() -> None:
    backend = CountingBackend()
    vs = VersionService(ObjectStore(backend))
    root = vs.create_repo()
    vs.new_instance(root, "kv", "keyvalue")
    for i in range(3):  # the second read finds the head the first write left
        _put(vs, root, b"k%d" % i)
    before = backend.head_reads
    for i in range(3, 20):
        _put(vs, root, b"k%d" % i)
    assert backend.head_reads == before
    assert sorted(_kv(vs, root)) == [b"k%d" % i for i in sorted(range(20), key=str)]


def test_servers_taking_turns_lose_no_write() -> None:
    backend = MemoryBackend()
    a = VersionService(ObjectStore(backend))
    b = VersionService(ObjectStore(backend))  # another server on the same store
    root = a.create_repo()
    a.new_instance(root, "kv", "keyvalue")
    written = []
    for i in range(40):
        # runs of writes on one server, then the other moves the head under it
        vs = a if (i // 3) % 2 == 0 else b
        key = b"w%02d" % i
        _put(vs, root, key)
        written.append(key)
        assert set(_kv(a, root)) == set(written) == set(_kv(b, root))


def test_a_commit_elsewhere_locks_out_the_remembered_head() -> None:
    backend = MemoryBackend()
    a = VersionService(ObjectStore(backend))
    b = VersionService(ObjectStore(backend))
    root = a.create_repo()
    a.new_instance(root, "kv", "keyvalue")
    for i in range(3):
        _put(a, root, b"k%d" % i)
    stale = a.resolve(root)  # resolved before the commit: only the head can refuse
    b.commit(root)
    with pytest.raises(LockedError):
        a.write(stale, stale.instance("kv"), {b"late": b"\x00late"})
    assert b"late" not in _kv(b, root)
