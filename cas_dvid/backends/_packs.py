"""Packs and logs: many small objects in one file of the file store.

PERF: creating a file costs this VM's ext4 30-300 us (more after bulk deletes, while
the journal catches up), and every tree write stores a path of new nodes per changed
leaf: a 512^3 label ingest made ~7,000 node files beside its 512 block files, and
writing them was half its time.  One pack file per batch instead took the ingest
from 0.27-0.37x to 0.65-0.81x of tensorstore's (tools/bench_labelmap.py).

Objects in a pack or a log behave as loose ones do: ``get``, ``has_many``,
``list_prefix`` and ``delete`` see no difference, so gc, verify and sync need not
know.  Layout, under ``packs/``:

- ``NAME.pack``: an index of its members and their bytes (``_packfile``).  NAME is
  random: a pack named by its content could be re-created by one writer while
  another removes it (its members all dead), losing what the first one meant to
  store.  It is written to a ``.partial`` file and renamed into place.
- ``NAME.log``: small objects one process appended (``_logs``), closed when full.
  Its members list with the time of their own record (gc's grace period and
  incremental runs stay per object); a put of one that exists appends a touch
  record, as a loose object's mtime is refreshed.
- ``NAME.dead``: keys of members deleted since (gc), a line each, appended.  A pack
  whose members are all dead is removed; a log is removed or rewritten the same way
  only once no process appends to it, and a key dead in this process's log is stored
  again apart (the mark would hide a new record of it too).

What a process knows of them is ``_packview.PackView``.

Packs merge: when ``MERGE_FANIN`` packs of one tier (member count, in powers of
``MERGE_FANIN``) exist, the writer that made the last one copies their live members
into one pack and removes them, so the number of packs grows with the log of the
writes, not with the writes (packs over ``MERGE_MAX_BYTES`` stay as they are).  Each
process merges the packs it knows of: with several writing, each keeps its own few
unmerged ones.  A
reader that loses a pack to a merge refreshes and finds the member in the new one.
A delete that leaves a pack less than half live rewrites it with the live members
only (a merge of one), so gc frees the space of packs too big to merge as well.
NOTE: a member gc deletes while a merge copies it survives in the new pack: garbage
kept for another gc, never a live object lost (merges only copy).  Merged members
are young again for gc's grace period.  A merge runs in the write that fills a tier:
that write takes longer, at most the time to copy ``MERGE_FANIN`` packs of the tier
below ``MERGE_MAX_BYTES``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Sequence

from cas_dvid.backends._files import fsync_dir, parts_size, write_new
from cas_dvid.backends._logs import LogWriter, unwritten
from cas_dvid.backends._packfile import RECORD_OBJECT, RECORD_TOUCH, encode_pack
from cas_dvid.backends._packview import MERGE_FANIN, MERGE_MAX_BYTES, Pack, PackView
from cas_dvid.backends.abc import ByteRange, BytesLike, ObjectInfo, Parts, check_key
from cas_dvid.errors import BackendError

PACK_MIN = 16
"""Batches of at least this many objects go into a pack.  PERF: smaller ones are cheaper
in the log (``_logs``): a keyvalue POST's three nodes packed cost 200-260 us against
~120 us as files (tools/profile_keyvalue.py, same run), merges copying every member of
the small packs again and again; a tree write of hundreds of nodes gains ~10x."""

__all__ = ["MERGE_FANIN", "MERGE_MAX_BYTES", "PACK_MIN", "PackSet"]


class PackSet(PackView):
    """The packs and log of one file store folder: reads (``PackView``) and writes."""

    def __init__(self, folder: str, *, fsync: bool = False) -> None:
        super().__init__(folder)
        self.fsync = fsync
        self._merge_lock = threading.Lock()
        self._log = LogWriter(folder, fsync=fsync)

    def _own_log(self) -> str | None:
        return self._log.name

    # -- objects --------------------------------------------------------------

    def read(self, key: str, byte_range: ByteRange | None, *, look: bool = True) -> bytes | None:
        """Return a member's bytes (or a range of them); None if no pack holds it.

        ``look``: refresh the view when the key is not in it (``False``: only what this
        process knows, for a caller that tries loose objects next).
        """
        self._ensure()
        if not look and key not in self._where:
            return None  # PERF: every loose block read asks first; no lock for a miss
        for attempt in range(3):
            pack = self._holder(key, fresh=False)
            if pack is None:
                if attempt or not look:
                    return None
                self.refresh()
                continue
            off, length = pack.members[key]
            start, end = 0, length
            if byte_range is not None:
                start = min(byte_range.start, length)
                end = length if byte_range.end is None else min(byte_range.end, length)
            try:
                fd = os.open(self._file(pack), os.O_RDONLY)
            except FileNotFoundError:
                self.refresh()  # merged or removed since we looked
                continue
            try:
                data = os.pread(fd, end - start, off + start)
            finally:
                os.close(fd)
            if len(data) != end - start:
                raise BackendError(f"{self._file(pack)}: member {key} is cut short")
            return data
        return None

    def live_many(self, keys: Sequence[str]) -> list[bool]:
        """Whether a pack holds each key live; .dead files re-read, a refresh if any is missing."""
        self._ensure()
        with self._lock:
            for name in {self._where[k] for k in keys if k in self._where}:
                if name in self._packs:
                    self._recheck(self._packs[name])
            out = [self._holder(k, fresh=False) is not None for k in keys]
            if not all(out):
                self.refresh()
                out = [
                    o or self._holder(k, fresh=False) is not None
                    for k, o in zip(keys, out, strict=True)
                ]
        return out

    def touch(self, key: str) -> bool:
        """Refresh the mtime of the pack holding ``key`` live (gc's grace); False if none does.

        Only packs this process knows of: a key another process packed since is written
        again, loose (a duplicate, never a loss).
        """
        self._ensure()
        if key not in self._where:
            return False  # PERF: every loose put asks first; no lock for a miss
        for _ in range(3):
            pack = self._holder(key, fresh=True)
            if pack is None:
                return False
            if pack.log:  # NOTE: its members keep their own times: a touch is a record
                with self._log.lock, self._lock:
                    self._append([(key, [])], RECORD_TOUCH)
                return True
            try:
                os.utime(self._file(pack))
                return True
            except FileNotFoundError:
                self.refresh()  # merged or removed since we looked
            except OSError:
                return True  # a read-only store still has it
        return False

    def write(self, items: Sequence[tuple[str, Parts]]) -> None:
        """Store ``items`` as one pack, then merge a full tier."""
        for key, _ in items:
            check_key(key)
        self._publish(*encode_pack(items))
        if self._full_tier() is not None:
            self._maybe_merge()

    def append(self, items: Sequence[tuple[str, Parts]]) -> list[tuple[str, Parts]]:
        """Append small objects to this process's log (one write).

        Returns the items it left out: keys marked dead in this log (gc deleted them
        there), whose new record the mark would hide too.  The caller stores them apart.
        """
        for key, _ in items:
            check_key(key)
        self._ensure()
        with self._log.lock, self._lock:
            own = self._packs.get(self._log.name or "")
            refused = []
            if own is not None and any(k in own.members for k, _ in items):
                self._read_dead(own)  # (gc marks only keys it saw in the log)
                refused = [item for item in items if item[0] in own.dead]
                items = [item for item in items if item[0] not in own.dead]
            if items:
                self._append(items, RECORD_OBJECT)
        return refused

    def _append(self, items: Sequence[tuple[str, Parts]], kind: bytes) -> None:
        """Append records (the caller holds the log's lock and ``_lock``)."""
        done = self._log.append(items, kind)
        pack = self._packs.get(done.name)
        if pack is None:
            pack = Pack(done.name, {}, 0, log=True) if done.fresh else self._scan(done.name)
            self._add(pack, new=done.fresh)
        pack.size = max(pack.size, done.end)
        if kind == RECORD_TOUCH:
            self._touched.update(dict.fromkeys(done.members, done.when))
        else:
            pack.times.update(dict.fromkeys(done.members, done.when))
            self._index(pack, done.members)
        pack.closed = pack.closed or done.closed

    def _publish(self, parts: list[BytesLike], members: dict[str, tuple[int, int]]) -> str:
        # NOTE: a random name is never taken, so a rename publishes the file (PERF: one
        # directory operation fewer than link and unlink; ext4 flushes a rename only
        # when it replaces a file).
        name = secrets.token_hex(16)
        final = self._path(name)
        tmp = self._path(f"{name}.{secrets.token_hex(6)}", ".partial")
        try:
            write_new(tmp, parts, fsync=self.fsync)
            os.rename(tmp, final)
            if self.fsync:
                fsync_dir(self.folder)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise BackendError(f"writing {final}: {exc}") from exc
        self._ensure()
        with self._lock:
            if name not in self._packs:
                size = parts_size(parts)
                self._add(Pack(name, members, size), new=True)
        return name

    def delete(self, keys: Sequence[str]) -> None:
        """Mark packed keys dead (one append per pack); remove or rewrite emptied packs.

        A pack left with no live member is removed; one left with less than half is
        rewritten with its live members only, so garbage in packs too big to merge
        does not stay on disk.
        """
        self._ensure()
        by_pack: dict[str, list[str]] = {}
        with self._lock:
            for key in keys:
                pack = self._holder(key, fresh=False)
                while pack is not None:
                    by_pack.setdefault(pack.name, []).append(key)
                    pack.dead.add(key)  # NOTE: so a duplicate in another pack is found too
                    pack = self._holder(key, fresh=False)
        sparse: list[Pack] = []
        for name, dead in by_pack.items():
            line = "".join(k + "\n" for k in dead).encode()
            fd = os.open(self._path(name, ".dead"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            with self._lock:
                pack = self._packs.get(name)
                if pack is None:
                    continue
                self._read_dead(pack)
                if pack.log:
                    if not (pack.closed or unwritten(self._file(pack))):
                        continue  # NOTE: its writer appends still: the marks wait for a gc
                    try:  # NOTE: its last records may be unread here: a rewrite would drop them
                        self._scan(name, pack)
                    except FileNotFoundError:
                        self._drop(name)  # rewritten or removed by another process
                        continue
                    self._read_dead(pack)
                if pack.live <= 0:
                    self._remove(name)
                elif pack.live * 2 < len(pack.members):
                    sparse.append(pack)
        if sparse:
            with self._merge_lock:
                for pack in sparse:
                    self.merge([pack])

    def _remove(self, name: str) -> None:
        for suffix in (".pack", ".log", ".dead"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path(name, suffix))
        with self._lock:
            self._drop(name)

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Live members whose key starts with ``prefix``, with their pack's mtime."""
        self.refresh()
        with self._lock:
            packs = list(self._packs.values())
        for pack in packs:
            try:
                mtime = os.stat(self._file(pack)).st_mtime
            except FileNotFoundError:
                continue
            touched = self._touched
            for key, (_, length) in pack.members.items():
                if key.startswith(prefix) and key not in pack.dead:
                    # NOTE: a log's member is as old as its record, not the file: the
                    # file's mtime moves with every append (and comes from a coarser clock)
                    t = pack.times.get(key, mtime) if pack.log else mtime
                    yield ObjectInfo(key, length, max(t, touched.get(key, t)))

    def partials(self) -> Iterator[str]:
        """Paths of partial pack files (killed writers) and of .dead files left by no pack.

        (A delete racing a merge can append to the .dead file of a pack just removed.)
        """
        try:
            names = set(os.listdir(self.folder))
        except FileNotFoundError:
            return
        for n in names:
            stem = n[: -len(".dead")]
            if n.endswith(".partial") or (
                n.endswith(".dead") and stem + ".pack" not in names and stem + ".log" not in names
            ):
                yield self._path(n, "")

    # -- merging --------------------------------------------------------------

    def _maybe_merge(self) -> None:
        if not self._merge_lock.acquire(blocking=False):
            return  # another thread of this process is merging
        try:
            while (tier := self._full_tier()) is not None:
                with self._lock:
                    group = [
                        p
                        for p in self._packs.values()
                        if p.size <= MERGE_MAX_BYTES and p.tier == tier
                    ][:MERGE_FANIN]
                before = len(self._packs)
                self.merge(group)
                if len(self._packs) >= before:
                    return  # NOTE: nothing merged (a racing process did it): never spin
        finally:
            self._merge_lock.release()

    def _full_tier(self) -> int | None:
        """Return the lowest tier holding ``MERGE_FANIN`` packs or more, if any."""
        with self._lock:
            full = [t for t, n in self._tiers.items() if n >= MERGE_FANIN]
        return min(full) if full else None

    def merge(self, packs: Sequence[Pack]) -> None:
        """Copy the live members of ``packs`` into one pack, then remove them."""
        items: dict[str, Parts] = {}
        merged = []
        name = ""
        for pack in packs:
            try:
                fd = os.open(self._file(pack), os.O_RDONLY)
            except FileNotFoundError:
                with self._lock:
                    self._drop(pack.name)  # another process merged or removed it
                continue
            try:
                data = memoryview(os.pread(fd, pack.size, 0))
            finally:
                os.close(fd)
            with self._lock:
                self._read_dead(pack)
                dead = set(pack.dead)
            for key, (off, length) in pack.members.items():
                if key not in dead and key not in items:
                    items[key] = [data[off : off + length]]
            merged.append(pack.name)
        if items:
            name = self._publish(*encode_pack(list(items.items())))
        for old in merged:
            if old != name:
                self._remove(old)
