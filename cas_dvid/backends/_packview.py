"""What a process knows of a file store's packs and logs: which holds each key, what died.

Readers keep an index of every pack and log in memory (~150 bytes a packed member,
~340 a logged one, with its write time), loaded at the first lookup and refreshed
from a listing of ``packs/`` when a key is not found, so packs and logs another
process wrote are found (a log's tail is scanned again when it grew).  A "present"
answer from a pack first re-reads the pack's ``.dead`` file if it grew: another
process's gc may have deleted the member, and a stale "present" would skip a write
and lose the object.  NOTE: a plain read does not re-read it (a syscall per block
read): a member another process's gc just deleted may still be read from a pack or
log that holds it, valid bytes of that id, until the file is rewritten.
``_packs.PackSet`` adds the writes.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field

from cas_dvid.backends._packfile import HEAD, decode_index, scan_records

MERGE_FANIN = 8
MERGE_MAX_BYTES = 64 << 20
_RELIST = 10


@dataclass(slots=True)
class Pack:
    name: str
    members: dict[str, tuple[int, int]]  # key -> (offset, length)
    size: int
    dead: set[str] = field(default_factory=set)
    dead_read: int = 0  # bytes of the .dead file already read
    log: bool = False  # a log (``_logs``): size is the bytes scanned so far
    times: dict[str, float] = field(default_factory=dict)  # a log's: when each was written
    closed: bool = False  # a log whose end record was read: nothing more to scan

    @property
    def live(self) -> int:
        return len(self.members) - len(self.dead)

    @property
    def tier(self) -> int:
        n, t = max(1, len(self.members)), 0
        while n >= MERGE_FANIN:
            n //= MERGE_FANIN
            t += 1
        return t


class PackView:
    """The packs and logs of one file store folder, as this process last saw them."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self._lock = threading.RLock()
        self._packs: dict[str, Pack] = {}
        self._where: dict[str, str] = {}  # key -> a pack holding it
        self._multi: set[str] = set()  # keys seen in more than one pack (rare)
        self._tiers: Counter[int] = Counter()  # packs small enough to merge, by tier
        self._loaded = False
        self._touched: dict[str, float] = {}  # touch records of logs: key -> when

    def _own_log(self) -> str | None:
        """Return the log this process appends to (its records are indexed as written)."""
        return None

    def _path(self, name: str, suffix: str = ".pack") -> str:
        return f"{self.folder}/{name}{suffix}"

    def _file(self, pack: Pack) -> str:
        return self._path(pack.name, ".log" if pack.log else ".pack")

    def refresh(self) -> None:
        """Read the packs other processes made, forget removed ones, re-read grown .dead files.

        A pack listed but gone before it is read was merged: the merged pack exists
        before its sources go, so listing again finds it.
        """
        for _ in range(_RELIST):
            try:
                names = os.listdir(self.folder)
            except FileNotFoundError:
                names = []
            present = {n[: -len(".pack")] for n in names if n.endswith(".pack")}
            logs = {n[: -len(".log")] for n in names if n.endswith(".log")}
            vanished = False
            with self._lock:
                for gone in set(self._packs) - present - logs:
                    # NOTE: the listing was taken unlocked: a pack or log this process
                    # made since is missing from it, so only a file really gone goes
                    if not os.path.exists(self._file(self._packs[gone])):
                        self._drop(gone)
                for name in sorted((present | logs) - set(self._packs)):
                    try:
                        self._add(self._load(name) if name in present else self._scan(name))
                    except FileNotFoundError:
                        vanished = True
                for pack in list(self._packs.values()):
                    if pack.log and not pack.closed and pack.name != self._own_log():
                        self._scan(pack.name, pack)  # another process appended since
                    self._read_dead(pack)
                self._loaded = True
            if not vanished:
                return

    def _ensure(self) -> None:
        if not self._loaded:
            self.refresh()

    def _load(self, name: str) -> Pack:
        path = self._path(name)
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, min(size, 1 << 16), 0)
            if len(data) >= HEAD.size:
                need = HEAD.size + HEAD.unpack_from(data)[2]
                if need > len(data):
                    data = os.pread(fd, need, 0)
            return Pack(name, decode_index(data, path), size)
        finally:
            os.close(fd)

    def _scan(self, name: str, pack: Pack | None = None) -> Pack:
        """Index a log, or (``pack``) the records appended to it since it was last scanned."""
        fd = os.open(self._path(name, ".log"), os.O_RDONLY)
        try:
            start = 0 if pack is None else pack.size
            size = os.fstat(fd).st_size
            data = os.pread(fd, size - start, start) if size > start else b""
        finally:
            os.close(fd)
        found = scan_records(data, start)
        for key, when in found.touches.items():
            self._touched[key] = max(when, self._touched.get(key, when))
        if pack is None:
            pack = Pack(name, found.members, found.used, log=True, times=found.times)
            pack.closed = found.closed
            return pack
        pack.size += found.used
        pack.closed = found.closed
        pack.times.update(found.times)
        self._index(pack, found.members)
        return pack

    def _add(self, pack: Pack, *, new: bool = False) -> None:
        self._packs[pack.name] = pack
        if pack.size <= MERGE_MAX_BYTES and not pack.log:
            self._tiers[pack.tier] += 1
        if not new:  # (a pack this process just made has no .dead file)
            self._read_dead(pack)
        self._index(pack, pack.members)

    def _index(self, pack: Pack, members: dict[str, tuple[int, int]]) -> None:
        where = self._where
        if members is not pack.members:
            pack.members.update(members)
        for key in members:
            if where.setdefault(key, pack.name) != pack.name:
                self._multi.add(key)
                where[key] = pack.name

    def _drop(self, name: str) -> None:
        pack = self._packs.pop(name, None)
        if pack is None:
            return
        if pack.size <= MERGE_MAX_BYTES and not pack.log:
            self._tiers[pack.tier] -= 1
        for key in pack.members:
            if self._where.get(key) == name:
                other = self._other_holder(key)
                if other is None:
                    del self._where[key]
                else:
                    self._where[key] = other

    def _other_holder(self, key: str) -> str | None:
        # PERF: a scan of every pack, so only for keys known to be in more than one.
        if key not in self._multi:
            return None
        for p in self._packs.values():
            if key in p.members and key not in p.dead:
                return p.name
        return None

    def _read_dead(self, pack: Pack) -> None:
        """Take in keys appended to the pack's .dead file since it was last read."""
        try:
            fd = os.open(self._path(pack.name, ".dead"), os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            if size <= pack.dead_read:
                return
            data = os.pread(fd, size - pack.dead_read, pack.dead_read)
        finally:
            os.close(fd)
        end = data.rfind(b"\n") + 1  # NOTE: a line still being appended is read next time
        pack.dead.update(k.decode() for k in data[:end].split())
        pack.dead_read += end

    def _recheck(self, pack: Pack) -> bool:
        """Re-read a pack's .dead file, then check the pack is still there (dropped if not).

        In that order: a pack is removed after its last member's death is appended.
        """
        self._read_dead(pack)
        if os.path.exists(self._file(pack)):
            return True
        self._drop(pack.name)
        return False

    def _holder(self, key: str, *, fresh: bool) -> Pack | None:
        """Return the pack holding ``key`` live (re-checked on disk if ``fresh``), or None."""
        with self._lock:
            for _ in range(len(self._packs) + 1):
                name = self._where.get(key)
                if name is None:
                    return None
                pack = self._packs[name]
                if fresh and not self._recheck(pack):
                    continue  # dropped: the key may still be in another pack
                if key not in pack.dead:
                    return pack
                other = self._other_holder(key)
                return None if other is None else self._packs[other]
            return None
