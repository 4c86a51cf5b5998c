"""Server configuration: one frozen value built from CLI flags or tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """How a server is set up.

    Attributes:
        store_url: where objects and refs live (``file://``, ``s3://``, ``memory://``).
        read_only: refuse every write (GET/HEAD only), as DVID's read-only mode.
        max_body_bytes: data request bodies over this get a 413 with a message
            (default 1 GiB; ``serve --max-body-mb``).
        max_json_bytes: the same for JSON and protobuf request bodies (64 MiB).
        max_voxel_bytes: voxel requests (reads or writes) over this many bytes get a
            400 naming the limit before anything is allocated (DVID's is 3 GB;
            ``serve --max-voxel-mb``).
        memory_budget_bytes: bytes all requests together may hold in bodies and
            answers (default 4 GiB; ``serve --memory-budget-mb``); see ``api.budget``.
        budget_wait: seconds a request waits for room in the budget before a 503 with
            ``Retry-After`` (default 2; ``serve --budget-wait``).
        stream_bytes: uncompressed raw reads over this are answered slab by slab
            (default 64 MiB; smaller ones are one body, which is faster).
        metadata_ttl: seconds a repo record may be served from memory (0: always
            re-read; heads, and so data, are always re-read).
        cache_bytes: budget of the decoded-object cache.
        note: free text shown in /api/server/info.
        write_token: when set, every write needs it (``Authorization: Bearer <token>``
            or ``?admintoken=<token>``); ``serve --write-token-file``.
        read_token: when set, reads need it (or the write token) too, except of
            published versions and ``/api/help``, ``/api/server/*``, ``heartbeat``
            (``serve --read-token-file``); see ``api.access``.
        allow_split: serve labelmap ``split/{label}`` (DVID's AllowLabelmapSplit;
            off by default, as in DVID).

    """

    store_url: str = "memory://"
    read_only: bool = False
    max_body_bytes: int = 1 << 30
    max_json_bytes: int = 64 << 20
    max_voxel_bytes: int = 3 << 30
    memory_budget_bytes: int = 4 << 30
    budget_wait: float = 2.0
    stream_bytes: int = 64 << 20
    metadata_ttl: float = 0.0
    cache_bytes: int = 512 << 20
    note: str = ""
    allow_split: bool = False
    write_token: str = ""
    read_token: str = ""
