"""Concurrent writers: threads, server processes, commit races, and the CAS retry path."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.backends import open_backend
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.errors import LockedError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions.stores import init_store
from cas_dvid.testing.live import LiveServer
from cas_dvid.testing.process import ServerProcess
from cas_dvid.testing.s3server import S3TestServer
from cas_dvid.versions import VersionService


def _post(port: int, path: str, body: bytes, conn: http.client.HTTPConnection | None = None) -> int:
    c = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=body)
    r = c.getresponse()
    r.read()
    return r.status


def _setup_repo(port: int) -> str:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/api/repos", body=b"{}")
    root = json.loads(c.getresponse().read())["root"]
    assert (
        _post(port, f"/api/repo/{root}/instance", b'{"typename":"keyvalue","dataname":"kv"}', c)
        == 200
    )
    return str(root)


def _keys_and_values(port: int, root: str) -> dict[str, str]:
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/api/node/{root}/kv/keyrangevalues/0/z?json=true"
    ) as r:
        return {k: v["v"] for k, v in json.load(r).items()}


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[LiveServer]:
    url = f"file://{tmp_path}/store"
    init_store(url)
    with LiveServer(create_app(ServerConfig(url)), threads=8) as srv:
        yield srv


def test_eight_threads_two_hundred_posts_each(file_server: LiveServer) -> None:
    root = _setup_repo(file_server.port)
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", file_server.port, timeout=60)
        try:
            for i in range(200):
                # each thread rewrites its own keys twice, so "last value" is checkable
                body = json.dumps({"v": f"{t}-{i}"}).encode()
                status = _post(
                    file_server.port, f"/api/node/{root}/kv/key/k{t}-{i % 100:03d}", body, conn
                )
                assert status == 200
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[:3]
    got = _keys_and_values(file_server.port, root)
    want = {f"k{t}-{i:03d}": f"{t}-{i + 100}" for t in range(8) for i in range(100)}
    assert got == want


def test_two_server_processes_on_one_directory(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    init_store(store)
    servers = [ServerProcess(store).start() for _ in range(2)]
    ports = [srv.port for srv in servers]
    try:
        root = _setup_repo(ports[0])
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            port = ports[t % 2]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                for i in range(60):
                    body = json.dumps({"v": f"{t}-{i}"}).encode()
                    assert (
                        _post(port, f"/api/node/{root}/kv/key/k{t}-{i % 30:02d}", body, conn) == 200
                    )
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors[:3]
        want = {f"k{t}-{i:02d}": f"{t}-{i + 30}" for t in range(4) for i in range(30)}
        # both servers see every write at once: heads are always re-read
        assert _keys_and_values(ports[0], root) == want
        assert _keys_and_values(ports[1], root) == want
    finally:
        for srv in servers:
            srv.stop()


def test_commit_racing_writes_loses_nothing_silently(file_server: LiveServer) -> None:
    port = file_server.port
    root = _setup_repo(port)
    acked: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()
    go = threading.Event()

    def writer(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        go.wait()
        for i in range(150):
            key = f"w{t}-{i:03d}"
            status = _post(
                port, f"/api/node/{root}/kv/key/{key}", json.dumps({"v": key}).encode(), conn
            )
            with lock:
                (acked if status == 200 else refused).append(key)
            assert status in (200, 400)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    go.set()
    time.sleep(0.15)
    assert _post(port, f"/api/node/{root}/commit", b"{}") == 200
    for th in threads:
        th.join()
    committed = _keys_and_values(port, root)
    assert set(acked) == set(committed), "an acknowledged write is missing from the commit"
    assert refused, "commit happened after every write; the race was not exercised"
    assert acked, "commit happened before any write; the race was not exercised"


def _lose_one_race(svc: VersionService, rival: VersionService, root: str) -> list[int]:
    """Make ``svc``'s next write lose its head swap to ``rival`` exactly once."""
    inst = svc.instance(svc.resolve(root), "kv")
    original = svc.tree.apply
    fired: list[int] = []
    calls: list[int] = []

    def apply_then_interfere(*a, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        out = original(*a, **kw)
        if not fired:
            fired.append(1)
            KeyValueStore.on(rival).put_many(rival.resolve(root), inst, {"rival": b"r"}, "test")
        return out

    svc.tree.apply = apply_then_interfere  # type: ignore[method-assign]
    return calls


@pytest.mark.parametrize("backend", ["file", "s3"])
def test_lost_swap_is_retried_on_the_winners_root(
    backend: str, tmp_path: Path, s3_server: S3TestServer, s3_bucket: str
) -> None:
    url = (
        f"file://{tmp_path}/store"
        if backend == "file"
        else f"s3://{s3_bucket}/p?endpoint_url={s3_server.endpoint}"
    )
    init_store(url)
    a = VersionService(ObjectStore(open_backend(url)))
    b = VersionService(ObjectStore(open_backend(url)))
    root = a.create_repo()
    a.new_instance(root, "kv", "keyvalue")
    calls = _lose_one_race(a, b, root)
    KeyValueStore.on(a).put_many(
        a.resolve(root), a.instance(a.resolve(root), "kv"), {"mine": b"m"}, "test"
    )
    assert len(calls) == 2, "the first swap should have lost and been retried once"
    kv = KeyValueStore.on(b)
    at = b.resolve(root)
    assert kv.keys(at, b.instance(at, "kv")) == ["mine", "rival"]
    a.commit(root)
    with pytest.raises(LockedError):
        kv.put_many(b.resolve(root), b.instance(at, "kv"), {"late": b"x"}, 'POST on endpoint "key"')
