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
