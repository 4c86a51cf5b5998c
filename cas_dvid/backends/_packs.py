"""Packs: a batch of small objects (a tree write's new nodes) in one file of the file store.

PERF: creating a file costs this VM's ext4 30-300 us (more after bulk deletes, while
the journal catches up), and every tree write stores a path of new nodes per changed
leaf: a 512^3 label ingest made ~7,000 node files beside its 512 block files, and
writing them was half its time.  One pack file per batch instead took the ingest
from 0.27-0.37x to 0.65-0.81x of tensorstore's (tools/bench_labelmap.py).

Objects in a pack behave as loose ones do: ``get``, ``has_many``, ``list_prefix``
and ``delete`` see no difference, so gc, verify and sync need not know.  Layout,
under ``packs/``:

- ``NAME.pack``: an index of its members and their bytes (``_packfile``).  NAME is
  random: a pack named by its content could be re-created by one writer while
  another removes it (its members all dead), losing what the first one meant to
  store.  It is written to a ``.partial`` file and renamed into place.
- ``NAME.dead``: keys of members deleted since (gc), a line each, appended.  A pack
  whose members are all dead is removed.

Readers keep an index of every pack in memory (~150 bytes a member), loaded at the
first lookup and refreshed from a listing of ``packs/`` when a key is not found, so
packs another process wrote are found.  A put or ``has_many`` answering "present"
from a pack first re-reads the pack's ``.dead`` file if it grew: another process's
gc may have deleted the member, and a stale "present" would skip a write and lose
the object.

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
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cas_dvid.backends._files import fsync_dir, write_new
from cas_dvid.backends._packfile import HEAD, decode_index, encode_pack
from cas_dvid.backends.abc import ByteRange, BytesLike, ObjectInfo, Parts, check_key
from cas_dvid.errors import BackendError

PACK_MIN = 16
"""Batches of at least this many objects go into a pack.  PERF: smaller ones are faster
as files of their own: a keyvalue POST's three nodes packed cost 200-260 us against
~120 us loose (tools/profile_keyvalue.py, same run), merges copying every member of
the small packs again and again; a tree write of hundreds of nodes gains ~10x."""
MERGE_FANIN = 8
MERGE_MAX_BYTES = 64 << 20
_RELIST = 10


@dataclass(slots=True)
class _Pack:
    name: str
    members: dict[str, tuple[int, int]]  # key -> (offset, length)
    size: int
    dead: set[str] = field(default_factory=set)
    dead_read: int = 0  # bytes of the .dead file already read

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


class PackSet:
    """The packs of one file store folder, as this process last saw them."""

    def __init__(self, folder: str, *, fsync: bool = False) -> None:
        self.folder = folder
        self.fsync = fsync
        self._lock = threading.RLock()
        self._merge_lock = threading.Lock()
        self._packs: dict[str, _Pack] = {}
        self._where: dict[str, str] = {}  # key -> a pack holding it
        self._multi: set[str] = set()  # keys seen in more than one pack (rare)
        self._tiers: Counter[int] = Counter()  # packs small enough to merge, by tier
        self._loaded = False

    def _path(self, name: str, suffix: str = ".pack") -> str:
        return f"{self.folder}/{name}{suffix}"

    # -- the in-memory view ---------------------------------------------------

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
            vanished = False
            with self._lock:
                for gone in set(self._packs) - present:
                    self._drop(gone)
                for name in sorted(present - set(self._packs)):
                    try:
                        self._add(self._load(name))
                    except FileNotFoundError:
                        vanished = True
                for pack in list(self._packs.values()):
                    self._read_dead(pack)
                self._loaded = True
            if not vanished:
                return

    def _ensure(self) -> None:
        if not self._loaded:
            self.refresh()

    def _load(self, name: str) -> _Pack:
        path = self._path(name)
        fd = os.open(path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            data = os.pread(fd, min(size, 1 << 16), 0)
            if len(data) >= HEAD.size:
                need = HEAD.size + HEAD.unpack_from(data)[2]
                if need > len(data):
                    data = os.pread(fd, need, 0)
            return _Pack(name, decode_index(data, path), size)
        finally:
            os.close(fd)

    def _add(self, pack: _Pack, *, new: bool = False) -> None:
        self._packs[pack.name] = pack
        if pack.size <= MERGE_MAX_BYTES:
            self._tiers[pack.tier] += 1
        if not new:  # (a pack this process just made has no .dead file)
            self._read_dead(pack)
        where = self._where
        for key in pack.members:
            if where.setdefault(key, pack.name) != pack.name:
                self._multi.add(key)
                where[key] = pack.name

    def _drop(self, name: str) -> None:
        pack = self._packs.pop(name, None)
        if pack is None:
            return
        if pack.size <= MERGE_MAX_BYTES:
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

    def _read_dead(self, pack: _Pack) -> None:
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

    def _recheck(self, pack: _Pack) -> bool:
        """Re-read a pack's .dead file, then check the pack is still there (dropped if not).

        In that order: a pack is removed after its last member's death is appended.
        """
        self._read_dead(pack)
        if os.path.exists(self._path(pack.name)):
            return True
        self._drop(pack.name)
        return False

    def _holder(self, key: str, *, fresh: bool) -> _Pack | None:
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
                fd = os.open(self._path(pack.name), os.O_RDONLY)
            except FileNotFoundError:
                self.refresh()  # merged or removed since we looked
                continue
            try:
                data = os.pread(fd, end - start, off + start)
            finally:
                os.close(fd)
            if len(data) != end - start:
                raise BackendError(f"{self._path(pack.name)}: member {key} is cut short")
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
            try:
                os.utime(self._path(pack.name))
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
                size = sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts)
                self._add(_Pack(name, members, size), new=True)
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
        sparse: list[_Pack] = []
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
                if pack.live <= 0:
                    self._remove(name)
                elif pack.live * 2 < len(pack.members):
                    sparse.append(pack)
        if sparse:
            with self._merge_lock:
                for pack in sparse:
                    self.merge([pack])

    def _remove(self, name: str) -> None:
        for suffix in (".pack", ".dead"):
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
                mtime = os.stat(self._path(pack.name)).st_mtime
            except FileNotFoundError:
                continue
            for key, (_, length) in pack.members.items():
                if key.startswith(prefix) and key not in pack.dead:
                    yield ObjectInfo(key, length, mtime)

    def partials(self) -> Iterator[str]:
        """Paths of partial pack files (killed writers) and of .dead files left by no pack.

        (A delete racing a merge can append to the .dead file of a pack just removed.)
        """
        try:
            names = set(os.listdir(self.folder))
        except FileNotFoundError:
            return
        for n in names:
            if n.endswith(".partial") or (
                n.endswith(".dead") and n[: -len(".dead")] + ".pack" not in names
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

    def merge(self, packs: Sequence[_Pack]) -> None:
        """Copy the live members of ``packs`` into one pack, then remove them."""
        items: dict[str, Parts] = {}
        merged = []
        name = ""
        for pack in packs:
            try:
                fd = os.open(self._path(pack.name), os.O_RDONLY)
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
