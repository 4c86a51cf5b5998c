"""Repo-wide mutation ids: unique across versions and servers, increasing at every version.

One ref per repo (``mutations/<root>``) holds the next id not yet handed out; a
server reserves ids from it in ranges by compare-and-swap, so a busy server does not
swap once per edit.  Ranges never overlap, so ids are unique repo-wide.  Every
mutation also records its id in the instance tree at its version, and takes an id
above the last one recorded there (reserving a new range when its own is behind),
so at any one version ids strictly increase in the order the edits were applied,
whichever servers made them: a client polling "mutations since id N" misses none.
Across versions (and servers) ids are only roughly in time order.  Ids start at
1,000,000,000, as DVID's do; a restart may skip part of a range, as DVID's does.
"""

from __future__ import annotations

import threading

from cas_dvid.backends import Backend
from cas_dvid.errors import ConflictError
from cas_dvid.versions.model import FIRST_MUTATION_ID
from cas_dvid.versions.refs import mutations_ref, read_ref

RANGE = 100
MAX_ATTEMPTS = 200


class MutationIds:
    """Hands out the mutation ids of one repo in this process."""

    def __init__(self, backend: Backend, repo_root: str, batch: int = RANGE) -> None:
        self.backend = backend
        self.name = mutations_ref(repo_root)
        self.batch = batch
        self._next = 0
        self._end = 0  # exclusive end of the reserved range
        self._lock = threading.Lock()

    def next_above(self, floor: int) -> int:
        """Return a fresh id greater than ``floor`` (the last id used at the version)."""
        with self._lock:
            if self._next <= floor or self._next >= self._end:
                self._reserve(floor)
            mid = self._next
            self._next += 1
            return mid

    def peek(self) -> int:
        """Return the next id the repo would hand out (DVID's repo MutationID)."""
        ref = read_ref(self.backend, self.name)
        return FIRST_MUTATION_ID if ref is None else int(ref.value)

    def _reserve(self, floor: int) -> None:
        for _ in range(MAX_ATTEMPTS):
            ref = read_ref(self.backend, self.name)
            start = max(FIRST_MUTATION_ID if ref is None else int(ref.value), floor + 1)
            end = start + self.batch
            try:
                self.backend.cas_ref(
                    self.name, None if ref is None else ref.token, str(end).encode()
                )
            except ConflictError:
                continue
            self._next, self._end = start, end
            return
        raise ConflictError(f"mutation ids of {self.name} kept changing; try again")


class MutationIdPool:
    """One ``MutationIds`` per repo, shared by a server's request threads."""

    def __init__(self, backend: Backend, batch: int = RANGE) -> None:
        self.backend = backend
        self.batch = batch
        self._repos: dict[str, MutationIds] = {}
        self._lock = threading.Lock()

    def of(self, repo_root: str) -> MutationIds:
        """Return the allocator of ``repo_root``."""
        with self._lock:
            ids = self._repos.get(repo_root)
            if ids is None:
                ids = self._repos[repo_root] = MutationIds(self.backend, repo_root, self.batch)
            return ids
