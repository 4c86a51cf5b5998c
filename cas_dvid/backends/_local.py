"""``file://PATH``: objects fanned out as ``objects/ab/cdef…``, refs as small files.

Writes go to ``NAME.<random>.partial`` and are published with ``os.link``, which
fails if the name exists: a reader never sees a partial object and of two racing
writers exactly one creates the file.  Refs are swapped under an ``flock`` on a
sibling ``.lock`` file, which the kernel drops if the holder dies, and replaced
with ``os.replace`` after an fsync.  Object fsync is off by default (``?fsync=1``
turns it on): a crash may then lose recent objects but never leaves a wrong one
readable, since every read re-hashes.  Process-safe on a local filesystem; flock
on NFS is not relied on.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cas_dvid.backends._memory import ref_token
from cas_dvid.backends.abc import Backend, ByteRange, ObjectInfo, Parts, Ref, check_key, check_ref_name
from cas_dvid.errors import BackendError, ConflictError, NotFoundError

_PARTIAL = ".partial"


def _write_all(fd: int, parts: Parts) -> None:
    views = [memoryview(p).cast("B") for p in parts if len(p)]
    while views:
        n = os.writev(fd, views)
        while views and n >= views[0].nbytes:
            n -= views[0].nbytes
            views.pop(0)
        if views and n:
            views[0] = views[0][n:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBackend(Backend):
    """A directory on a local filesystem."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False, create: bool = False):
        self.root = Path(root).absolute()
        self.url = f"file://{self.root}"
        self.fsync = fsync
        self._objects = self.root / "objects"
        self._refs = self.root / "refs"
        if create:
            for d in (self._objects, self._refs):
                d.mkdir(parents=True, exist_ok=True)
        elif not self._objects.is_dir():
            raise BackendError(f"{self.url} is not a cas_dvid store (no objects/ folder); run init")

    def _path(self, key: str) -> Path:
        check_key(key)
        return self._objects / key[:2] / key[2:]

    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        """Read an object file (or a range of it)."""
        path = self._path(key)
        try:
            with open(path, "rb", buffering=0) as f:
                if byte_range is None:
                    return f.read()
                f.seek(byte_range.start)
                if byte_range.end is None:
                    return f.read()
                return f.read(byte_range.end - byte_range.start)
        except FileNotFoundError:
            raise NotFoundError(f"object {key} not found in {self.url}") from None
        except OSError as exc:
            raise BackendError(f"reading {path}: {exc}") from exc

    def put_if_absent(self, key: str, parts: Parts) -> bool:
        """Write to a partial file, then link it into place unless the name exists."""
        final = self._path(key)
        # PERF: a stat is ~3 us; writing a file that exists costs ~100x that.
        if os.path.exists(final):
            return False
        tmp = final.with_name(f"{final.name}.{secrets.token_hex(6)}{_PARTIAL}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            final.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                _write_all(fd, parts)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            if self.fsync:
                _fsync_dir(final.parent)
            return True
        except OSError as exc:
            raise BackendError(f"writing {final}: {exc}") from exc
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def has_many(self, keys: Sequence[str]) -> list[bool]:
        """Stat each object file."""
        return [os.path.exists(self._path(k)) for k in keys]

    def list_prefix(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Walk the fan-out folders matching ``prefix``; partial files are skipped."""
        if prefix:
            check_key(prefix.ljust(4, "0"))
        try:
            fans = sorted(os.listdir(self._objects))
        except FileNotFoundError:
            return
        for fan in fans:
            if len(fan) != 2 or not (fan.startswith(prefix[:2]) or prefix[:2].startswith(fan)):
                continue
            with os.scandir(self._objects / fan) as it:
                for entry in it:
                    key = fan + entry.name
                    if entry.name.endswith(_PARTIAL) or not key.startswith(prefix):
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield ObjectInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        """Unlink an object file."""
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            pass

    def stale_partials(self, older_than: float) -> Iterator[Path]:
        """Partial files left by killed writers, older than ``older_than`` seconds."""
        cutoff = time.time() - older_than
        for path in self._objects.glob(f"*/*{_PARTIAL}"):
            try:
                if path.stat().st_mtime < cutoff:
                    yield path
            except FileNotFoundError:
                continue

    # -- refs ---------------------------------------------------------------

    def _ref_path(self, name: str) -> Path:
        return self._refs / check_ref_name(name)

    def get_ref(self, name: str) -> Ref:
        """Read a ref file."""
        try:
            value = self._ref_path(name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"ref {name} not found in {self.url}") from None
        return Ref(value, ref_token(value))

    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Swap under an exclusive flock, publishing with fsync + os.replace."""
        path = self._ref_path(name)
        with _RefLock(path):
            self._check(path, name, expected)
            tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}{_PARTIAL}")
            with open(tmp, "wb") as f:
                f.write(value)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        return ref_token(value)

    def delete_ref(self, name: str, expected: str) -> None:
        """Unlink a ref file if it is unchanged."""
        path = self._ref_path(name)
        with _RefLock(path):
            self._check(path, name, expected)
            os.unlink(path)

    def _check(self, path: Path, name: str, expected: str | None) -> None:
        try:
            current: bytes | None = path.read_bytes()
        except FileNotFoundError:
            current = None
        token = None if current is None else ref_token(current)
        if token != expected:
            raise ConflictError(
                f"ref {name} changed: expected {expected or 'absent'}, found {token or 'absent'}",
                current,
                token,
            )

    def list_refs(self, prefix: str = "") -> Iterator[str]:
        """Ref files under refs/ whose name starts with ``prefix``, sorted."""
        names = []
        for dirpath, _, files in os.walk(self._refs):
            rel = os.path.relpath(dirpath, self._refs)
            for f in files:
                if f.endswith((".lock", _PARTIAL)):
                    continue
                name = f if rel == "." else f"{rel}/{f}".replace(os.sep, "/")
                if name.startswith(prefix):
                    names.append(name)
        yield from sorted(names)


class _RefLock:
    """An exclusive flock on ``<ref>.lock``, released by the kernel if we die."""

    def __init__(self, path: Path) -> None:
        self.lock_path = path.with_name(path.name + ".lock")

    def __enter__(self) -> None:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                raise BackendError(f"ref path {self.lock_path} crosses a ref file") from exc
            raise
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
