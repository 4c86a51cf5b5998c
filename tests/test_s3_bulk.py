"""S3 bulk deletes: DeleteObjects in batches (1,000 keys at most), on the moto server."""

from __future__ import annotations

import time

import pytest

from cas_dvid.backends import _s3, open_backend
from cas_dvid.objects import Kind, ObjectStore, content_id
from cas_dvid.testing.s3server import S3TestServer


def test_delete_many_spans_batches_and_keeps_the_rest(
    s3_server: S3TestServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _s3.DELETE_BATCH == 1000  # S3's limit; smaller here so three calls cover the test
    monkeypatch.setattr(_s3, "DELETE_BATCH", 100)
    backend = open_backend(f"s3://{s3_bucket}/bulk?endpoint_url={s3_server.endpoint}")
    store = ObjectStore(backend)
    ids = store.put_many([(Kind.BLOB, i.to_bytes(4, "little")) for i in range(260)])
    doomed, kept = ids[:210], ids[210:]
    t0 = time.perf_counter()
    store.delete_many([*doomed, doomed[0]])  # an absent or repeated key is fine
    bulk = time.perf_counter() - t0
    left = {info.key for info in backend.list_prefix()}
    assert left == {oid.hex() for oid in kept}
    t0 = time.perf_counter()
    for oid in kept:
        store.delete(oid)
    each = (time.perf_counter() - t0) / len(kept) * len(doomed)
    assert list(backend.list_prefix()) == []
    assert bulk < each  # 3 requests against 210


def _count_calls(backend: object, op: str) -> list[int]:
    seen = [0]
    client = backend._client  # type: ignore[attr-defined]
    client.meta.events.register(
        f"before-call.s3.{op}", lambda **_: seen.__setitem__(0, seen[0] + 1)
    )
    return seen


def test_has_many_answers_dense_asks_from_listings(s3_server: S3TestServer, s3_bucket: str) -> None:
    backend = open_backend(f"s3://{s3_bucket}/has?endpoint_url={s3_server.endpoint}")
    store = ObjectStore(backend)
    ids = store.put_many([(Kind.BLOB, i.to_bytes(4, "little")) for i in range(1200)])
    absent = [content_id(Kind.BLOB, b"no %d" % i) for i in range(400)]
    asked = [*ids[::2], *absent, *ids[1::2][:100]]
    heads, lists = _count_calls(backend, "HeadObject"), _count_calls(backend, "ListObjectsV2")
    got = store.has_many(asked)
    assert got == [True] * 600 + [False] * 400 + [True] * 100
    assert heads[0] == 0 and lists[0] <= 256 + 20  # one page per fan-out prefix (and a few)
    assert store.has_many(asked[:10]) == got[:10]  # few keys: HEADs
    assert heads[0] == 10


def test_has_many_falls_back_to_heads_for_sparse_asks(
    s3_server: S3TestServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_s3, "LIST_FROM", 2)
    monkeypatch.setattr(_s3, "FANOUT", 0)  # one group, so pages are truncated
    backend = open_backend(f"s3://{s3_bucket}/sparse?endpoint_url={s3_server.endpoint}")
    store = ObjectStore(backend)
    ids = store.put_many([(Kind.BLOB, i.to_bytes(4, "little")) for i in range(1500)])
    asked = sorted(ids)[::100]  # 15 keys spread over 1,500: the first page answers 10
    heads, lists = _count_calls(backend, "HeadObject"), _count_calls(backend, "ListObjectsV2")
    assert store.has_many(asked) == [True] * len(asked)
    assert lists[0] == 1 and heads[0] == 5
