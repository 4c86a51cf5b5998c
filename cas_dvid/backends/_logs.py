"""Logs: a process appends small objects to one open file in ``packs/``, one write a batch.

PERF: a keyvalue POST stores three small objects (the value and two tree nodes), and
as files of their own each cost a create, a write, a link and an unlink: ~40 us of
directory work apiece on this VM's ext4, most of the POST's kernel time.  Appended
to an open file, a batch is one ``writev`` (tools/bench_table.py row 5).

A log is named ``NAME.log`` (NAME random) and written by one process only, which
holds an ``flock`` on it for as long as it appends: the file is created as a
``.partial``, locked, then renamed into place, so no other process ever sees it
unlocked while its writer lives.  Readers (``_packview.PackView``) index what they
find in it and scan the tail again when it grew.  At ``LOG_MAX_BYTES`` its writer
ends it with an end record and lets it go; a log whose lock anyone can take has no
writer (closed, or its writer was killed), and only then may gc rewrite it into a
pack of its live members once less than half is live.  A record torn by a crash ends
the log's scan, so what it held is not there; the objects before it are.

PERF: an earlier version copied every full log into a pack, and merges copied those
again: the copies took 20% of a keyvalue POST server's samples (py-spy).  A closed
log is read in place instead; readers do not rescan one whose end they saw.
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
from typing import NamedTuple

from cas_dvid.backends._files import fsync_dir, make_dir, write_all
from cas_dvid.backends._packfile import RECORD, RECORD_END, RECORD_OBJECT, encode_records
from cas_dvid.backends.abc import Parts
from cas_dvid.errors import BackendError

LOG_OBJECT_MAX = 64 << 10
"""Objects up to this size go into the log; bigger ones are files (or packs) of their own."""
LOG_MAX_BYTES = 16 << 20
"""A log this big is closed and a new one started (a closed log is never copied: gc
rewrites it into a pack once less than half of it is live)."""


class Appended(NamedTuple):
    """What one ``LogWriter.append`` did."""

    name: str  # the log
    fresh: bool  # a log this append opened
    members: dict[str, tuple[int, int]]  # key -> (offset, length) of its records
    end: int  # the log's size after them
    when: float  # the time written in the records
    closed: bool  # the append filled the log, which is now closed


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

    def append(self, items: Sequence[tuple[str, Parts]], kind: bytes = RECORD_OBJECT) -> Appended:
        """Append ``items`` as records.

        The caller holds ``lock`` until it has indexed the records.  A log this append
        filled is closed: an end record, then its fd (and flock) let go; later appends
        start a new log.
        """
        fresh = False
        if self._fd is None or self._pid != os.getpid():
            # NOTE: a forked child never appends to its parent's log: two processes
            # keeping their own offsets for one file would index wrong bytes.
            self._open()
            fresh = True
        assert self._fd is not None
        assert self.name is not None
        when = time.time()
        parts, members, nbytes = encode_records(items, self._size, when, kind)
        try:
            write_all(self._fd, parts)
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            name = self.name
            self._detach(close=True)  # a torn tail: the log is never appended to again
            raise BackendError(f"appending to {self.path(name)}: {exc}") from exc
        self._size += nbytes
        done = Appended(self.name, fresh, members, self._size, when, False)
        if self._size >= LOG_MAX_BYTES:
            with contextlib.suppress(OSError):  # NOTE: without it the log reads as orphaned
                os.write(self._fd, RECORD.pack(RECORD_END, 0, 0, time.time()))
            self._detach(close=True)
            done = done._replace(closed=True)
        return done

    def _open(self) -> None:
        name = secrets.token_hex(16)
        tmp = f"{self.folder}/{name}.{secrets.token_hex(6)}.partial"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND
        try:
            try:
                fd = os.open(tmp, flags, 0o644)
            except FileNotFoundError:
                make_dir(self.folder, fsync=self.fsync)
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
        if close and self._fd is not None and self._pid == os.getpid():  # (a fork's is not ours)
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self.name, self._size = None, None, 0


def unwritten(path: str) -> bool:
    """Whether no process appends to the log ``path`` any more (its flock is free)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    finally:
        os.close(fd)
    return True
