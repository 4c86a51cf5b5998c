"""``file://PATH``: objects fanned out as ``objects/ab/cdef…``, refs as small files.

Batches of objects (a tree write's new nodes) are written as one pack file each
(``_packs``), small objects of smaller writes are appended to this process's log
(``_logs``), and a big lone object (a voxel block) is a file of its own.  Files go to
``NAME.<random>.partial`` and are published with ``os.link``, which fails if the name
exists: a reader never sees a partial object and of two racing writers exactly one
creates the file (two processes may both log a small object: a duplicate, no harm).
Refs are swapped under an ``flock`` on a sibling ``.lock`` file, which the kernel
drops if the holder dies, and replaced with ``os.replace``.  Both are atomic against
a crash of the process.

A ref of at most ``MAX_LINK_VALUE`` bytes (a head, a UUID index entry) is a symlink
whose target spells its value (``cas:`` and base64); bigger ones are files.  PERF:
ext4 flushes a file's data when it is renamed over another one (``auto_da_alloc``),
which made a head swap cost ~300 us there; a short symlink keeps its target in the
inode, so swapping one costs ~30 us, and reading it is one ``readlink``.  Either
form is replaced by the same atomic rename, so a reader sees the old value or the
new one whichever form each has.

fsync is off by default and ``?fsync=1`` turns it on for objects and refs alike
(fsyncing only refs would buy nothing: a ref could still name objects a power cut
lost); with it every ref is a file, since a symlink cannot be fsynced itself.
Without it a power cut may lose the most recent writes; it never leaves a wrong
object readable, since every read re-hashes.  Process-safe on a local
filesystem; flock on NFS is not relied on.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import functools
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from cas_dvid.backends._files import fsync_dir, parts_size, write_all, write_new
from cas_dvid.backends._logs import LOG_OBJECT_MAX
from cas_dvid.backends._memory import check_token, ref_token
from cas_dvid.backends._packs import PACK_MIN, PackSet
from cas_dvid.backends.abc import (
    Backend,
    ByteRange,
    ObjectInfo,
    Parts,
    Ref,
    check_key,
    check_ref_name,
)
from cas_dvid.errors import BackendError, NotFoundError

_PARTIAL = ".partial"
_LOCK_STRIPES = 64
_LINK_PREFIX = "cas:"
MAX_LINK_VALUE = 39
"""Largest ref value kept as a symlink: ``cas:`` and its base64 stay under the 60
bytes ext4 keeps inside the inode (a longer target takes a data block)."""
_SWAP_RETRIES = 100


class LocalBackend(Backend):
    """A directory on a local filesystem."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False, create: bool = False):
        self.root = Path(root).absolute()
        self.url = f"file://{self.root}"
        self.fsync = fsync
        # PERF: plain string paths; pathlib costs ~10 us per join on the hot path.
        self._objects = os.path.join(self.root, "objects")
        self._refs = os.path.join(self.root, "refs")
        self._packs = PackSet(os.path.join(self.root, "packs"), fsync=fsync)
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        if create:
            for d in (self._objects, self._refs):
                os.makedirs(d, exist_ok=True)
        elif not os.path.isdir(self._objects):
            raise BackendError(f"{self.url} is not a cas_dvid store (no objects/ folder); run init")

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self._objects}/{key[:2]}/{key[2:]}"

    def get(self, key: str, byte_range: ByteRange | None = None) -> bytes:
        """Read an object file (or a range of it)."""
        path = self._path(key)
        # PERF: packs known to this process first: a tree node is rarely loose.
        packed = self._packs.read(key, byte_range, look=False)
        if packed is not None:
            return packed
        try:
            if byte_range is None:
                return _read_object(path)
            with open(path, "rb", buffering=0) as f:
                f.seek(byte_range.start)
                if byte_range.end is None:
                    return f.readall()
                return f.read(byte_range.end - byte_range.start) or b""
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise BackendError(f"reading {path}: {exc}") from exc
        data = self._packs.read(key, byte_range)
        if data is None:
            raise NotFoundError(f"object {key} not found in {self.url}")
        return data

    @property
    def pack_min(self) -> int:
        """Batches of this many objects or more are written as one pack (``_packs``)."""
        return PACK_MIN

    def put_batch(self, items: Sequence[tuple[str, Parts]]) -> list[bool]:
        """Write the objects not yet stored as one pack file (a few: to the log, or files)."""
        fresh = [not (_touch(self._path(k)) or self._packs.touch(k)) for k, _ in items]
        new = [item for item, f in zip(items, fresh, strict=True) if f]
        if len(new) >= PACK_MIN:
            self._packs.write(new)
            return fresh
        small: list[tuple[str, Parts]] = []
        files: list[tuple[str, Parts]] = []
        for item in new:
            (small if parts_size(item[1]) <= LOG_OBJECT_MAX else files).append(item)
        if small:
            files += self._packs.append(small)
        for key, parts in files:
            self._put_file(key, parts)
        return fresh

    def put_if_absent(self, key: str, parts: Parts) -> bool:
        """Store a new object: a small one in this process's log, a big one as a file."""
        # PERF: a stat is ~3 us; writing a file that exists costs ~100x that.
        if _touch(self._path(key)) or self._packs.touch(key):
            return False
        if parts_size(parts) <= LOG_OBJECT_MAX and not self._packs.append([(key, parts)]):
            return True
        return self._put_file(key, parts)

    def _put_file(self, key: str, parts: Parts) -> bool:
        """Write to a partial file, then link it into place unless the name exists."""
        final = self._path(key)
        tmp = f"{final}.{secrets.token_hex(6)}{_PARTIAL}"
        try:
            write_new(tmp, parts, fsync=self.fsync)
            for _ in range(3):
                try:
                    os.link(tmp, final)
                    break
                except FileExistsError:
                    if _touch(final):
                        return False  # another writer made it first
            else:
                raise BackendError(f"writing {final}: it keeps appearing and vanishing")
            if self.fsync:
                fsync_dir(os.path.dirname(final))
            return True
        except OSError as exc:
            raise BackendError(f"writing {final}: {exc}") from exc
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def has_many(self, keys: Sequence[str]) -> list[bool]:
        """Stat each object file; look for the others in the packs."""
        out = [os.path.exists(self._path(k)) for k in keys]
        rest = [i for i, o in enumerate(out) if not o]
        if rest:
            for i, live in zip(rest, self._packs.live_many([keys[i] for i in rest]), strict=True):
                out[i] = live
        return out

    def list_prefix(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Packed objects, then the fan-out folders matching ``prefix`` (partial files skipped)."""
        if prefix:
            check_key(prefix.ljust(4, "0"))
        packed = set()
        for info in self._packs.list(prefix):
            if info.key not in packed:
                packed.add(info.key)
                yield info
        try:
            fans = sorted(os.listdir(self._objects))
        except FileNotFoundError:
            return
        for fan in fans:
            if len(fan) != 2 or not (fan.startswith(prefix[:2]) or prefix[:2].startswith(fan)):
                continue
            with os.scandir(os.path.join(self._objects, fan)) as it:
                for entry in it:
                    key = fan + entry.name
                    if entry.name.endswith(_PARTIAL) or not key.startswith(prefix) or key in packed:
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue
                    yield ObjectInfo(key, st.st_size, st.st_mtime)

    def delete(self, key: str) -> None:
        """Unlink an object file, and mark it dead in any pack holding it."""
        self.delete_many([key])

    def delete_many(self, keys: Sequence[str]) -> None:
        """Unlink object files; one append per pack for the packed ones."""
        for key in keys:
            try:
                os.unlink(self._path(key))
            except FileNotFoundError:
                pass
        self._packs.delete(keys)

    def stale_partials(self, older_than: float) -> Iterator[Path]:
        """Partial files left by killed writers, older than ``older_than`` seconds."""
        cutoff = time.time() - older_than
        paths = [*Path(self._objects).glob(f"*/*{_PARTIAL}"), *map(Path, self._packs.partials())]
        for path in paths:
            try:
                if path.stat().st_mtime < cutoff:
                    yield path
            except FileNotFoundError:
                continue

    # -- refs ---------------------------------------------------------------

    def _ref_path(self, name: str) -> str:
        return f"{self._refs}/{_checked_ref(name)}"

    def _lock(self, path: str) -> _RefLock:
        # NOTE: thread locks are striped, not one per ref, so their number stays bounded.
        return _RefLock(path, self._stripes[hash(path) % _LOCK_STRIPES])

    def get_ref(self, name: str) -> Ref:
        """Read a ref file."""
        try:
            value = _read_ref(self._ref_path(name))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"ref {name} not found in {self.url}") from None
        return Ref(value, ref_token(value))

    def cas_ref(self, name: str, expected: str | None, value: bytes) -> str:
        """Swap under an exclusive flock, publishing with os.replace (fsync if configured)."""
        path = self._ref_path(name)
        with self._lock(path):
            self._check(path, name, expected)
            tmp = f"{path}.{secrets.token_hex(6)}{_PARTIAL}"
            if len(value) <= MAX_LINK_VALUE and not self.fsync:
                os.symlink(_LINK_PREFIX + base64.urlsafe_b64encode(value).decode(), tmp)
            else:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    write_all(fd, [value])
                    if self.fsync:
                        os.fsync(fd)
                finally:
                    os.close(fd)
            os.replace(tmp, path)
            if self.fsync:
                fsync_dir(os.path.dirname(path))
        return ref_token(value)

    def delete_ref(self, name: str, expected: str) -> None:
        """Unlink a ref file if it is unchanged."""
        path = self._ref_path(name)
        with self._lock(path):
            self._check(path, name, expected)
            os.unlink(path)

    def _check(self, path: str, name: str, expected: str | None) -> None:
        try:
            current: bytes | None = _read_ref(path)
        except FileNotFoundError:
            current = None
        check_token(name, current, expected)

    def list_refs(self, prefix: str = "") -> Iterator[str]:
        """Ref files under refs/ whose name starts with ``prefix``, sorted.

        PERF: the walk starts in the folder the prefix names (``uuids/`` for
        ``uuids/ab``), so listing one kind of ref never reads the others.
        """
        names = []
        folder = prefix.rpartition("/")[0]
        start = os.path.join(self._refs, folder) if folder and ".." not in folder else self._refs
        for dirpath, _, files in os.walk(start):
            rel = os.path.relpath(dirpath, self._refs)
            for f in files:
                if f.endswith((".lock", _PARTIAL)):
                    continue
                name = f if rel == "." else f"{rel}/{f}".replace(os.sep, "/")
                if name.startswith(prefix):
                    names.append(name)
        yield from sorted(names)


def _touch(path: str) -> bool:
    """Refresh an existing object's mtime; False if there is no such object.

    A writer that stores an object again makes it new for gc's grace period, so gc
    cannot delete it under that writer.  A read-only store still counts as present.
    """
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return os.path.exists(path)


def _read_object(path: str) -> bytes:
    """Read a whole object file: open, fstat, one read, close (PERF: readall makes more calls)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        while len(data) < size:  # NOTE: a short read only on exotic filesystems
            more = os.read(fd, size - len(data))
            if not more:
                break
            data += more
        return data
    finally:
        os.close(fd)


def _read_ref(path: str) -> bytes:
    """Read a ref's value, from a symlink's target or a file (``MAX_LINK_VALUE``).

    The file is opened with ``O_NOFOLLOW``: a swap may have turned it into a
    symlink since the ``readlink``, which is then read again.
    """
    for _ in range(_SWAP_RETRIES):
        try:
            target = os.readlink(path)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        else:
            if not target.startswith(_LINK_PREFIX):
                raise BackendError(f"ref {path} is a symlink to {target[:80]!r}, not a value")
            try:
                return base64.urlsafe_b64decode(target[len(_LINK_PREFIX) :])
            except ValueError as exc:
                raise BackendError(f"ref {path} is a symlink to bad base64: {exc}") from None
        try:
            return _read_file(path, os.O_NOFOLLOW)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
    raise BackendError(f"ref {path} keeps changing between a symlink and a file")


def _read_file(path: str, flags: int = 0) -> bytes:
    """Read a small file's bytes with as few syscalls as possible (PERF: half of open().read())."""
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        chunk = os.read(fd, 65536)
        if len(chunk) < 65536:
            return chunk
        parts = [chunk]
        while chunk:
            chunk = os.read(fd, 1 << 20)
            parts.append(chunk)
        return b"".join(parts)
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=65536)
def _checked_ref(name: str) -> str:
    return check_ref_name(name)


class _RefLock:
    """Exclusive access to one ref: a thread lock, then an flock on ``<ref>.lock``.

    The flock excludes other processes (the kernel drops it if the holder dies); the
    thread lock is needed too, since threads sharing one open file share its flock.
    The lock file is open only while held: a server swaps refs of ever more versions,
    and one descriptor kept per ref ran out of descriptors at ~20,000 versions.
    """

    def __init__(self, path: str, thread_lock: threading.Lock) -> None:
        self.lock_path = path + ".lock"
        self._thread_lock = thread_lock
        self._fd: int | None = None

    def _open(self) -> int:
        for attempt in range(2):
            try:
                return os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                if attempt:
                    raise
                # PERF: only now; makedirs on every swap cost ~10 us (a raised FileExistsError).
                os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
            except OSError as exc:
                if exc.errno == errno.ENOTDIR:
                    raise BackendError(f"ref path {self.lock_path} crosses a ref file") from exc
                raise
        raise AssertionError("unreachable")

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        try:
            self._fd = self._open()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._thread_lock.release()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            if self._fd is not None:
                os.close(self._fd)  # (closing drops the flock)
                self._fd = None
        finally:
            self._thread_lock.release()
