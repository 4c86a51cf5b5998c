"""Logs: a process appends small objects to one open file in ``packs/``, one write a batch.

PERF: a keyvalue POST stores three small objects (the value and two tree nodes), and
as files of their own each cost a create, a write, a link and an unlink: ~40 us of
directory work apiece on this VM's ext4, most of the POST's kernel time.  Appended
to an open file, a batch is one ``writev`` (tools/bench_table.py row 5).

A log is named ``NAME.log`` (NAME random) and written by one process only, which
holds an ``flock`` on it for as long as it appends: the file is created as a
``.partial``, locked, then renamed into place, so no other process ever sees it
unlocked while its writer lives.  Readers (``_packs.PackSet``) index what they find
in it and scan the tail again when it grew.  When a log reaches ``LOG_MAX_BYTES`` its
writer copies its live members into a pack and removes it; a log whose lock anyone
can take lost its writer (killed), and the next writer to open a log seals it the
same way.  A record torn by a crash ends the log's scan, so what it held is not
there; the objects before it are.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import threading
import time
from collections.abc import Sequence

from cas_dvid.backends._files import fsync_dir, write_all
from cas_dvid.backends._packfile import RECORD_OBJECT, encode_records
from cas_dvid.backends.abc import Parts
from cas_dvid.errors import BackendError

LOG_OBJECT_MAX = 64 << 10
"""Objects up to this size go into the log; bigger ones are files (or packs) of their own."""
LOG_MAX_BYTES = 4 << 20
"""A log this big is sealed into a pack, so logs never grow without bound."""


class LogWriter:
    """The log this process appends to (opened at the first append, in ``folder``)."""

    def __init__(self, folder: str, *, fsync: bool = False) -> None:
        self.folder = folder
        self.fsync = fsync
        self.lock = threading.Lock()
        self.name: str | None = None
        self._fd: int | None = None
        self._size = 0
        self._pid = 0

    def path(self, name: str) -> str:
        """Return the file of the log ``name``."""
        return f"{self.folder}/{name}.log"

    def append(
        self, items: Sequence[tuple[str, Parts]], kind: bytes = RECORD_OBJECT
    ) -> tuple[str, bool, dict[str, tuple[int, int]], int | None]:
        """Append ``items`` as records; return (log name, new log?, their index, fd of a full log).

        The caller holds ``lock`` until it has indexed the records: a log is sealed by
        the append that fills it, and its seal must see every record before it.  A log
        this append filled is detached (later appends start a new one) and its fd, still
        holding the flock, is returned so the caller seals the log and then closes it.
        """
        fresh = False
        if self._fd is None or self._pid != os.getpid():
            # NOTE: a forked child never appends to its parent's log: two processes
            # keeping their own offsets for one file would index wrong bytes.
            self._open()
            fresh = True
        assert self._fd is not None
        assert self.name is not None
        parts, members, nbytes = encode_records(items, self._size, time.time(), kind)
        try:
            write_all(self._fd, parts)
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            name = self.name
            self._detach(close=True)  # torn tail: an orphan to seal, never appended to
            raise BackendError(f"appending to {self.path(name)}: {exc}") from exc
        self._size += nbytes
        name, full = self.name, None
        if self._size >= LOG_MAX_BYTES:
            full = self._fd
            self._detach(close=False)
        return name, fresh, members, full

    def _open(self) -> None:
        name = secrets.token_hex(16)
        tmp = f"{self.folder}/{name}.{secrets.token_hex(6)}.partial"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND
        try:
            try:
                fd = os.open(tmp, flags, 0o644)
            except FileNotFoundError:
                os.makedirs(self.folder, exist_ok=True)
                fd = os.open(tmp, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                os.rename(tmp, self.path(name))
                if self.fsync:
                    fsync_dir(self.folder)
            except BaseException:
                os.close(fd)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise BackendError(f"opening a log in {self.folder}: {exc}") from exc
        self._fd, self.name, self._size, self._pid = fd, name, 0, os.getpid()

    def _detach(self, *, close: bool) -> None:
        if close and self._fd is not None and self._pid == os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self.name, self._size = None, None, 0


def lock_orphan(path: str) -> int | None:
    """Return a locked fd on the log ``path`` if its writer is gone, else None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    if not os.path.exists(path):  # sealed by another process between open and lock
        os.close(fd)
        return None
    return fd
