"""Storage backends: ``file://``, ``s3://`` and ``memory://``, behind one contract."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cas_dvid.backends._local import LocalBackend
from cas_dvid.backends._memory import MemoryBackend
from cas_dvid.backends.abc import Backend, ByteRange, ObjectInfo, Ref
from cas_dvid.errors import InvalidInputError

__all__ = [
    "Backend",
    "ByteRange",
    "LocalBackend",
    "MemoryBackend",
    "ObjectInfo",
    "Ref",
    "S3Backend",
    "open_backend",
]

_TRUE = {"1", "true", "yes", "on"}


def _opts(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}


def open_backend(url: str, *, create: bool = False) -> Backend:
    """Open a backend from a URL: ``file://PATH`` (or a bare path), ``s3://b/p``, ``memory://``.

    ``create`` makes a new local store's folders; S3 buckets must already exist.
    """
    if "://" not in url:
        return LocalBackend(Path(url), create=create)
    parts = urlsplit(url)
    opts = _opts(parts.query)
    scheme = parts.scheme.lower()
    if scheme == "file":
        path = (parts.netloc + parts.path) or "."
        return LocalBackend(
            Path(path), fsync=opts.get("fsync", "0").lower() in _TRUE, create=create
        )
    if scheme == "memory":
        name = parts.netloc + parts.path
        return MemoryBackend.named(name) if name else MemoryBackend()
    if scheme == "s3":
        from cas_dvid.backends._s3 import S3Backend

        if not parts.netloc:
            raise InvalidInputError(f"s3 URL needs a bucket: {url!r}")
        return S3Backend(
            parts.netloc,
            parts.path,
            endpoint_url=opts.get("endpoint_url") or opts.get("endpoint"),
            region=opts.get("region"),
            connect_timeout=float(opts.get("connect_timeout", 5)),
            read_timeout=float(opts.get("read_timeout", 60)),
            max_attempts=int(opts.get("max_attempts", 3)),
        )
    raise InvalidInputError(
        f"unknown store URL scheme {parts.scheme!r}: use file://, s3:// or memory://"
    )


def __getattr__(name: str) -> object:
    if name == "S3Backend":  # NOTE: boto3 takes ~0.3 s to import; only pay for it when used.
        from cas_dvid.backends._s3 import S3Backend

        return S3Backend
    raise AttributeError(name)
