"""Faults across processes and networks: racing writers, unreachable and non-conforming S3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import boto3
import pytest

from cas_dvid.backends import LocalBackend, open_backend
from cas_dvid.backends._s3 import S3Backend
from cas_dvid.errors import BackendError, CorruptObjectError
from cas_dvid.objects import Kind, ObjectStore, content_id, to_hex
from cas_dvid.testing.s3server import S3TestServer, free_port


def _run_together(scripts: list[str], delay: float = 1.5) -> list[dict[str, object]]:
    """Start one Python process per script; all act at the same wall-clock instant."""
    start_at = time.time() + delay
    prelude = f"import time, json\nwhile time.time() < {start_at}: pass\n"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", prelude + textwrap.dedent(s)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in scripts
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def test_two_processes_put_same_object(tmp_path: Path) -> None:
    root = tmp_path / "store"
    LocalBackend(root, create=True)
    script = f"""
        from cas_dvid.backends import LocalBackend
        from cas_dvid.objects import Kind, ObjectStore
        store = ObjectStore(LocalBackend({str(root)!r}))
        import random
        # 8 MiB, the same in both processes, incompressible: a file of its own (small
        # objects go to each process's log, tests/test_logs.py)
        data = random.Random(7).randbytes(8 << 20)
        oid = store.put(Kind.BLOB, data)
        print(json.dumps({{"oid": oid.hex()}}))
    """
    results = _run_together([script, script])
    assert results[0]["oid"] == results[1]["oid"]
    files = [p for p in (root / "objects").rglob("*") if p.is_file()]
    assert len(files) == 1, files
    assert not list(root.rglob("*.partial"))
    store = ObjectStore(LocalBackend(root))
    assert len(store.get(bytes.fromhex(str(results[0]["oid"])))) == 8 << 20  # type: ignore[arg-type]


def test_racing_put_if_absent_has_one_creator(tmp_path: Path) -> None:
    root = tmp_path / "store"
    LocalBackend(root, create=True)
    script = f"""
        from cas_dvid.backends import LocalBackend
        b = LocalBackend({str(root)!r})
        won = [b.put_if_absent("%064x" % i, [bytes(200_000)]) for i in range(100)]
        print(json.dumps({{"won": won}}))
    """
    a, b = _run_together([script, script])
    for x, y in zip(a["won"], b["won"], strict=True):  # type: ignore[call-overload]
        assert x != y, "both or neither process claims to have created the object"
    assert not list(root.rglob("*.partial"))


def test_two_processes_swap_same_ref_one_wins(tmp_path: Path) -> None:
    root = tmp_path / "store"
    base = LocalBackend(root, create=True)
    token = base.cas_ref("heads/node/kv", None, b"base")
    script = """
        from cas_dvid.backends import LocalBackend
        from cas_dvid.errors import ConflictError
        b = LocalBackend({root!r})
        try:
            b.cas_ref("heads/node/kv", {token!r}, {value!r})
            print(json.dumps({{"won": True}}))
        except ConflictError as e:
            print(json.dumps({{"won": False, "current": e.current.decode(), "token": e.current_token}}))
    """
    for trial in range(5):
        token = base.get_ref("heads/node/kv").token
        results = _run_together(
            [
                script.format(root=str(root), token=token, value=v)
                for v in (f"left{trial}".encode(), f"right{trial}".encode())
            ],
            delay=1.0,
        )
        winners = [r for r in results if r["won"]]
        losers = [r for r in results if not r["won"]]
        assert len(winners) == 1 and len(losers) == 1
        final = base.get_ref("heads/node/kv")
        assert losers[0]["current"] == final.value.decode()
        assert losers[0]["token"] == final.token


def test_unreachable_s3_names_endpoint_quickly() -> None:
    port = free_port()  # nothing listens here
    t0 = time.monotonic()
    backend = open_backend(f"s3://bucket/p?endpoint_url=http://127.0.0.1:{port}&max_attempts=2")
    with pytest.raises(BackendError, match=f"127.0.0.1:{port}"):
        backend.get("ab" * 32)
    with pytest.raises(BackendError, match="unreachable"):
        backend.put_if_absent("ab" * 32, [b"x"])
    assert time.monotonic() - t0 < 30


def test_s3_server_ignoring_conditions_is_refused(s3_server: S3TestServer, s3_bucket: str) -> None:
    """A real server that never sees the conditions (headers stripped) must be detected."""
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)

    def strip_conditions(request, **_: object) -> None:  # type: ignore[no-untyped-def]
        for name in ("If-None-Match", "If-Match"):
            if name in request.headers:
                del request.headers[name]

    client.meta.events.register("before-sign.s3.PutObject", strip_conditions)
    backend = S3Backend(s3_bucket, "p", client=client)
    with pytest.raises(BackendError, match="does not honour conditional writes"):
        backend.cas_ref("repos/x", None, b"v")
    assert list(backend.list_refs()) == []


def test_s3_flipped_byte_is_detected(s3_server: S3TestServer, s3_bucket: str) -> None:
    store = ObjectStore(open_backend(f"s3://{s3_bucket}/pre?endpoint_url={s3_server.endpoint}"))
    oid = store.put(Kind.BLOB, b"grayscale" * 1000)
    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    key = f"pre/objects/{to_hex(oid)}"
    raw = bytearray(client.get_object(Bucket=s3_bucket, Key=key)["Body"].read())
    raw[-1] ^= 1
    client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(raw))
    with pytest.raises(CorruptObjectError, match=to_hex(oid)):
        store.get(oid)


def test_s3_object_store_batches(s3_server: S3TestServer, s3_bucket: str) -> None:
    store = ObjectStore(open_backend(f"s3://{s3_bucket}?endpoint_url={s3_server.endpoint}"))
    blobs = [bytes([i]) * 70_000 for i in range(24)]
    ids = store.put_many([(Kind.BLOB, b) for b in blobs])
    store.cache.clear()
    assert [bytes(v) for v in store.get_many(ids)] == blobs
    ghost = content_id(Kind.BLOB, b"ghost")
    assert store.missing([*ids, ghost]) == [ghost]
    assert len(list(store.iter_objects())) == 24
