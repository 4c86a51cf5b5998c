"""Each backend runs the shared conformance suite; S3 against a real server process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cas_dvid.backends import Backend, LocalBackend, MemoryBackend, open_backend
from cas_dvid.testing.backend_suite import BackendSuite
from cas_dvid.testing.s3server import S3TestServer


class TestMemoryBackend(BackendSuite):
    @pytest.fixture
    def backend(self) -> Backend:
        return MemoryBackend()


class TestLocalBackend(BackendSuite):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return LocalBackend(tmp_path / "store", create=True)


class TestLocalBackendFsync(BackendSuite):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> Backend:
        return open_backend(f"file://{tmp_path}/store?fsync=1", create=True)


class TestS3Backend(BackendSuite):
    racy_refs = False  # moto checks conditions and stores in separate steps

    @pytest.fixture
    def backend(self, s3_server: S3TestServer, s3_bucket: str) -> Iterator[Backend]:
        b = open_backend(f"s3://{s3_bucket}/some/prefix?endpoint_url={s3_server.endpoint}")
        yield b
        b.close()
