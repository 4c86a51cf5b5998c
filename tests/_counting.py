"""A memory backend that counts object reads, for tests that bound what a read loads."""

from __future__ import annotations

from cas_dvid.backends import MemoryBackend
from cas_dvid.backends.abc import ByteRange


class CountingBackend(MemoryBackend):
    """Counts object reads."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        self.gets += 1
        return super().get(key, byte_range)
