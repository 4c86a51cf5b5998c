"""S3 bulk deletes: DeleteObjects in batches (1,000 keys at most), on the moto server."""

from __future__ import annotations

import time

import pytest

from cas_dvid.backends import _s3, open_backend
from cas_dvid.objects import Kind, ObjectStore
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
