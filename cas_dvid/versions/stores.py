"""Create and recognise a store: a ``store`` ref naming the format, written by ``init``."""

from __future__ import annotations

import json
import time

from cas_dvid.backends import Backend, open_backend
from cas_dvid.errors import BackendError, ConflictError, NotFoundError
from cas_dvid.versions.refs import STORE_REF, UUID_PREFIX, read_ref, uuid_ref

STORE_FORMAT = 5
"""5: a file store may keep small objects in logs (``backends._logs``), which format 4
code would take for missing objects; 4: a file store may keep objects in packs
(``backends._packs``), which format 3 code
would take for missing objects; 3: a file store may keep small refs as symlinks
(``backends._local``), which format 2 code would read as missing; 2: the UUID index
sharded by the first two characters (1: ``uuids/<uuid>``)."""


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
    if meta.get("format") == 1:
        meta = _upgrade_from_1(backend, meta)
    if meta.get("format") in (2, 3, 4):
        meta = _mark_format(backend, int(str(meta["format"])))
    if meta.get("format") != STORE_FORMAT:
        raise BackendError(
            f"{backend.url} has store format {meta.get('format')}, expected {STORE_FORMAT}"
        )
    return dict(meta)


def _upgrade_from_1(backend: Backend, meta: dict[str, object]) -> dict[str, object]:
    """Move a format 1 store's UUID index into shards, then mark the store's format current.

    Idempotent and safe to race: each entry is created in its shard before the flat
    one goes, and the store ref moves last.
    """
    for name in list(backend.list_refs(UUID_PREFIX)):
        uuid = name[len(UUID_PREFIX) :]
        if "/" in uuid:
            continue
        ref = read_ref(backend, name)
        if ref is None:
            continue
        try:
            backend.cas_ref(uuid_ref(uuid), None, ref.value)
        except ConflictError:
            pass
        try:
            backend.delete_ref(name, ref.token)
        except (ConflictError, NotFoundError):
            pass
    return _mark_format(backend, 1)


def _mark_format(backend: Backend, old: int) -> dict[str, object]:
    """Move the store ref from format ``old`` to ``STORE_FORMAT`` (once, safe to race).

    Formats 2 to 4 change nothing stored: they only keep older code, which would take
    a symlinked ref or a packed object for a missing one, off the store from then on.  A store this
    process cannot write (a read-only mount) is read as it is: nothing here will add
    a symlink to it either.
    """
    current = read_ref(backend, STORE_REF)
    meta = {} if current is None else json.loads(current.value)
    upgraded = {**meta, "format": STORE_FORMAT}
    if current is not None and meta.get("format") == old:
        try:
            backend.cas_ref(STORE_REF, current.token, json.dumps(upgraded).encode())
        except (ConflictError, BackendError, OSError):
            pass
    return upgraded


def open_store_backend(url: str) -> Backend:
    """Open an existing store (memory:// needs no init)."""
    if url.startswith("memory://"):
        return open_backend(url)
    backend = open_backend(url)
    check_store(backend)
    return backend
