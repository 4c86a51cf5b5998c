"""Server configuration: one frozen value built from CLI flags or tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a server is set up.

    Attributes:
        store_url: where objects and refs live (``file://``, ``s3://``, ``memory://``).
        read_only: refuse every write (GET/HEAD only), as DVID's read-only mode.
        max_body_bytes: request bodies over this get a 413 with a message.
        cache_bytes: budget of the decoded-object cache.
        note: free text shown in /api/server/info.
    """

    store_url: str = "memory://"
    read_only: bool = False
    max_body_bytes: int = 1 << 30
    cache_bytes: int = 512 << 20
    note: str = ""
