"""A file store keeps small refs as symlinks and bigger ones as files; both swap atomically."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from cas_dvid.backends import LocalBackend
from cas_dvid.backends._local import MAX_LINK_VALUE
from cas_dvid.errors import ConflictError, NotFoundError
from cas_dvid.versions.refs import STORE_REF
from cas_dvid.versions.stores import STORE_FORMAT, init_store, open_store_backend

SMALL = b"W" + bytes(range(32))  # a head's size
BIG = b"x" * (MAX_LINK_VALUE + 1)


def test_small_ref_is_a_link_big_one_a_file_and_each_replaces_the_other(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    path = tmp_path / "refs" / "heads" / "n" / "d"
    token = b.cas_ref("heads/n/d", None, SMALL)
    assert path.is_symlink()
    assert b.get_ref("heads/n/d").value == SMALL
    token = b.cas_ref("heads/n/d", token, BIG)
    assert not path.is_symlink()
    assert path.read_bytes() == BIG
    assert b.get_ref("heads/n/d").value == BIG
    with pytest.raises(ConflictError):
        b.cas_ref("heads/n/d", "stale", SMALL)
    token = b.cas_ref("heads/n/d", token, b"")
    assert path.is_symlink()
    assert b.get_ref("heads/n/d").value == b""
    assert list(b.list_refs("heads/")) == ["heads/n/d"]
    b.delete_ref("heads/n/d", token)
    with pytest.raises(NotFoundError):
        b.get_ref("heads/n/d")


def test_fsync_store_keeps_every_ref_a_file(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True, fsync=True)
    b.cas_ref("heads/n/d", None, SMALL)
    path = tmp_path / "refs" / "heads" / "n" / "d"
    assert path.is_file()
    assert not path.is_symlink()
    assert b.get_ref("heads/n/d").value == SMALL


def test_readers_racing_swaps_between_forms_see_one_value_or_the_other(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    b.cas_ref("r", None, SMALL)
    stop = threading.Event()
    bad: list[object] = []

    def read() -> None:
        while not stop.is_set():
            try:
                v = b.get_ref("r").value
            except Exception as exc:  # noqa: BLE001 - any error is a failure here
                bad.append(exc)
                return
            if v not in (SMALL, BIG):
                bad.append(v)
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for i in range(600):
            cur = b.get_ref("r")
            b.cas_ref("r", cur.token, BIG if i % 2 == 0 else SMALL)
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert bad == []


def test_a_link_that_is_not_a_value_is_an_error_not_a_missing_ref(tmp_path: Path) -> None:
    b = LocalBackend(tmp_path, create=True)
    os.symlink("elsewhere", tmp_path / "refs" / "odd")
    with pytest.raises(Exception, match="not a value"):
        b.get_ref("odd")


@pytest.mark.parametrize("old", [2, 3])
def test_older_store_is_marked_current_on_open(tmp_path: Path, old: int) -> None:
    url = f"file://{tmp_path}/store"
    backend, _ = init_store(url)
    meta = backend.get_ref(STORE_REF)
    backend.cas_ref(STORE_REF, meta.token, json.dumps({"format": old, "created": "x"}).encode())
    reopened = open_store_backend(url)
    doc = json.loads(reopened.get_ref(STORE_REF).value)
    assert doc == {"format": STORE_FORMAT, "created": "x"}
    assert STORE_FORMAT == 5
