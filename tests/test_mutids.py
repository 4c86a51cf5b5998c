"""Mutation ids: unique across servers sharing a store, increasing at a version."""

from __future__ import annotations

import threading
from pathlib import Path

from cas_dvid.backends import open_backend
from cas_dvid.versions.model import FIRST_MUTATION_ID
from cas_dvid.versions.mutids import MutationIds
from cas_dvid.versions.stores import init_store


def test_ids_from_two_servers_never_repeat(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    init_store(url)
    servers = [MutationIds(open_backend(url), "r" * 32, batch=7) for _ in range(2)]
    got: list[int] = []
    lock = threading.Lock()

    def work(ids: MutationIds) -> None:
        for _ in range(200):
            mid = ids.next_above(0)
            with lock:
                got.append(mid)

    threads = [threading.Thread(target=work, args=(s,)) for s in servers for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == len(set(got)) == 1200
    assert min(got) >= FIRST_MUTATION_ID


def test_an_id_comes_above_the_last_at_its_version(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    init_store(url)
    a = MutationIds(open_backend(url), "r" * 32)
    b = MutationIds(open_backend(url), "r" * 32)
    first = a.next_above(0)  # a holds first .. first + 99
    later = b.next_above(first)  # b's range starts after a's
    assert later > first + 50
    # back on a: the version's last id is b's, so a must not hand out its older range
    assert a.next_above(later) > later
    assert a.peek() > later
