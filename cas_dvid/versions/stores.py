"""Create and recognise a store: a ``store`` ref naming the format, written by ``init``."""

from __future__ import annotations

import json
import time

from cas_dvid.backends import Backend, open_backend
from cas_dvid.errors import BackendError, ConflictError, NotFoundError
from cas_dvid.versions.refs import STORE_REF

STORE_FORMAT = 1


def init_store(url: str) -> tuple[Backend, bool]:
    """Create a store at ``url`` if there is none; return it and whether it was new."""
    backend = open_backend(url, create=True)
    meta = {"format": STORE_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        backend.cas_ref(STORE_REF, None, json.dumps(meta).encode())
        return backend, True
    except ConflictError:
        check_store(backend)
        return backend, False


def check_store(backend: Backend) -> dict[str, object]:
    """Return the store's metadata; BackendError if it is not a cas_dvid store we can read."""
    try:
        meta = json.loads(backend.get_ref(STORE_REF).value)
    except NotFoundError:
        raise BackendError(
            f"{backend.url} is not an initialised cas_dvid store; run init"
        ) from None
    if meta.get("format") != STORE_FORMAT:
        raise BackendError(
            f"{backend.url} has store format {meta.get('format')}, expected {STORE_FORMAT}"
        )
    return dict(meta)


def open_store_backend(url: str) -> Backend:
    """Open an existing store (memory:// needs no init)."""
    if url.startswith("memory://"):
        return open_backend(url)
    backend = open_backend(url)
    check_store(backend)
    return backend
