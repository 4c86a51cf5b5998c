"""Sync between real server processes on 127.0.0.1, through /api/cas/sync/ and the CLI."""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cas_dvid.backends import LocalBackend
from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects import Kind, ObjectId, ObjectStore, content_id, to_hex
from cas_dvid.objects.codec import encode
from cas_dvid.sync import HttpPeer, StorePeer, transfer_version
from cas_dvid.sync.verify import verify_version
from cas_dvid.testing import sample
from cas_dvid.testing.s3server import free_port
from cas_dvid.versions import VersionService
from cas_dvid.versions.stores import init_store

EDGE = 32


class ServerProcess:
    """``cas-dvid serve DIR`` in a child process."""

    def __init__(self, store: Path, *extra: str) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable,
            "-m",
            "cas_dvid.cli",
            "serve",
            str(store),
            "--port",
            str(self.port),
            *extra,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    self.proc.stderr.read().decode() if self.proc.stderr else "server died"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/heartbeat", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"server on {self.url} did not start")

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def make_store(path: Path) -> ObjectStore:
    backend, _ = init_store(f"file://{path}")
    return ObjectStore(backend, cache_bytes=1 << 20)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    base = tmp_path_factory.mktemp("servers")
    for name in ("a", "b"):
        make_store(base / name).close()
    a, b = ServerProcess(base / "a"), ServerProcess(base / "b")
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args], capture_output=True, text=True, timeout=120
    )
    if ok:
        assert r.returncode == 0, r.stderr + r.stdout
    return r


def test_push_to_a_server_then_incremental_then_noop(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    _, b = servers
    vs = VersionService(make_store(tmp_path / "local"))
    s = sample.build(vs, grid=(8, 4, 4), edge=EDGE, kv_keys=200)
    remote = HttpPeer(b.url)
    first = transfer_version(StorePeer(vs.store), remote, s.root)
    assert first.blobs == 128 and first.refs_moved

    changed = list(s.blocks)[5:7]
    child, new_ids = sample.change(vs, s.root, changed, edge=EDGE)
    at_p, at_c = vs.resolve(s.root), vs.resolve(child)
    grey = vs.instance(at_c, "grey")
    new_nodes = set(vs.tree.iter_node_ids(vs.root_at(at_c, grey))) - set(
        vs.tree.iter_node_ids(vs.root_at(at_p, grey))
    )
    commit = ObjectId(bytes.fromhex(at_c.node.commit or ""))
    sent_before = remote.stats.wire_bytes_sent
    second = transfer_version(StorePeer(vs.store), remote, child)
    assert (second.blobs, second.nodes, second.commits) == (2, len(new_nodes), 1)
    changed_bytes = sum(
        len(vs.store.get_stored(i)) for i in [*new_ids.values(), *new_nodes, commit]
    )
    assert second.bytes == changed_bytes
    wire = remote.stats.wire_bytes_sent - sent_before
    assert wire <= 1.1 * changed_bytes + 4096  # have-checks and the repo record on top

    requests = remote.stats.requests
    noop = transfer_version(StorePeer(vs.store), remote, child)
    assert (noop.objects, noop.have_requests) == (0, 1)
    assert remote.stats.requests - requests == 1  # one negotiation round trip, nothing else

    assert verify_version(remote, child).ok
    status, _, body = b.request("GET", f"/api/node/{child}/kv/key/key000001")
    assert status == 200 and len(body) == 100


def test_server_to_server_with_cli(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    a, b = servers
    vs = VersionService(ObjectStore(init_store(f"file://{a.store}")[0], cache_bytes=0))
    s = sample.build(vs, grid=(4, 4, 2), edge=EDGE, kv_keys=10, alias="s2s", seed=5)
    out = cli("push", b.url, s.root[:10], "--server", a.url, "--quiet").stdout
    assert "1 version(s) sent" in out and "32 blobs" in out
    assert "0 objects" in cli("push", b.url, s.root, "--server", a.url, "--quiet").stdout
    assert "OK" in cli("verify", s.root, "--server", b.url, "--quiet").stdout
    local = tmp_path / "pulled"
    args = ("pull", b.url, s.root, "--store", str(local), "--box", "0,0,0,32,32,32", "--quiet")
    r = subprocess.run(
        [sys.executable, "-m", "cas_dvid.cli", *args], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1 and "is not a cas_dvid store" in r.stderr  # no silent new store
    out = cli(*args, "--init").stdout
    assert "1 blobs" in out and "partial to box 0,0,0,32,32,32" in out


def test_killed_push_resumes_and_verifies(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    _, b = servers
    local = tmp_path / "local"
    vs = VersionService(make_store(local))
    s = sample.build(
        vs, grid=(8, 8, 4), edge=EDGE, kv_keys=10, alias="killed", seed=7
    )  # 256 x 32 KiB

    def stored() -> int:  # objects, loose or in packs and logs
        return sum(1 for _ in LocalBackend(b.store).list_prefix(""))

    before = stored()
    cmd = [
        sys.executable,
        "-m",
        "cas_dvid.cli",
        "push",
        b.url,
        s.root,
        "--store",
        str(local),
        "--quiet",
        "--batch-mb",
        "0.1",
        "--limit-rate",
        "2M",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if stored() - before >= 60:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the push finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    arrived = stored() - before
    status, _, _ = b.request("GET", f"/api/repo/{s.root}/info")
    assert status == 400  # refs move last: the repo is not there
    out = cli("push", b.url, s.root, "--store", str(local), "--quiet").stdout
    sent = int(out.split(" objects")[0].split()[-1])
    assert sent < 256 + 20 and sent <= 256 + 20 - arrived + 5
    assert "OK" in cli("verify", s.root, "--server", b.url, "--quiet").stdout


def test_bad_upload_is_refused_naming_the_id(servers: tuple[ServerProcess, ServerProcess]) -> None:
    _, b = servers
    good = b"some block bytes" * 100
    oid = content_id(Kind.BLOB, good)
    stored = bytearray(b"".join(bytes(p) for p in encode(Kind.BLOB, good)))
    stored[-1] ^= 0xFF
    with pytest.raises(CorruptObjectError, match=to_hex(oid)):
        HttpPeer(b.url).put([(oid, bytes(stored))])
    assert HttpPeer(b.url).has([oid]) == [False]


def test_object_endpoint_is_cacheable_and_read_only_server_serves_pulls(
    tmp_path: Path, servers: tuple[ServerProcess, ServerProcess]
) -> None:
    _, b = servers
    vs = VersionService(make_store(tmp_path / "l"))
    s = sample.build(vs, grid=(2, 2, 2), edge=EDGE, kv_keys=5, alias="ro", seed=9)
    transfer_version(StorePeer(vs.store), HttpPeer(b.url), s.root)
    oid = to_hex(next(iter(s.blocks.values())))
    ro = ServerProcess(b.store, "--read-only")
    try:
        status, headers, body = ro.request("GET", f"/api/cas/sync/object/{oid}")
        assert status == 200 and headers["etag"] == f'"{oid}"'
        assert (
            "immutable" in headers["cache-control"]
            and "max-age=31536000" in headers["cache-control"]
        )
        assert body == vs.store.get_stored(ObjectId(bytes.fromhex(oid)))
        status, _, _ = ro.request(
            "GET", f"/api/cas/sync/object/{oid}", headers={"If-None-Match": f'"{oid}"'}
        )
        assert status == 304
        status, _, _ = ro.request("PUT", "/api/cas/sync/ref/x", b"v", {"If-None-Match": "*"})
        assert status == 405
        status, _, _ = ro.request("POST", "/api/cas/sync/objects", b"")
        assert status == 405
        pulled = VersionService(make_store(tmp_path / "pulled"))
        report = transfer_version(HttpPeer(ro.url), StorePeer(pulled.store), s.root)
        assert report.blobs == 8
        assert verify_version(StorePeer(pulled.store), s.root).ok
    finally:
        ro.stop()
