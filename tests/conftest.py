"""Shared fixtures: the S3 test server process, stores on each backend."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest

from cas_dvid.testing.s3server import TEST_CREDENTIALS, S3TestServer

for _k, _v in TEST_CREDENTIALS.items():  # never let a test reach for real credentials
    os.environ[_k] = _v

_bucket_ids = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3TestServer]:
    """One real S3-compatible server process (moto) for the whole session."""
    with S3TestServer() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3TestServer) -> str:
    """A fresh, empty bucket on the test server."""
    return s3_server.make_bucket(f"test-{next(_bucket_ids)}")


@pytest.fixture(autouse=True)
def no_server_process_left() -> Iterator[None]:
    """Every ``cas-dvid serve`` child a test starts is gone when it ends (else: killed, and fail)."""
    from cas_dvid.testing.process import ServerProcess

    yield
    left = [p for p in ServerProcess.started if p.poll() is None]
    for proc in left:
        proc.kill()
        proc.wait(10)
    ServerProcess.started.clear()
    assert not left, f"{len(left)} server process(es) left running: {[p.args for p in left]}"


@pytest.fixture
def loose_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every object this process stores in a file store is a file of its own, none in a log.

    For tests that damage or count object files (tests/test_logs.py covers logs).
    """
    import cas_dvid.backends._local as local

    monkeypatch.setattr(local, "LOG_OBJECT_MAX", -1)
