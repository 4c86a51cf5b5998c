"""Repo-wide label counters of a label instance: the largest label, the next one to hand out.

They live in one small ref per instance (``labels/<data uuid>``), swapped by
compare-and-swap, so label reservations from several servers on one store never
overlap and the repo-wide maximum never goes down.  Semantics follow DVID's
labelmap (``newLabels``, ``SetNextLabelStart``): with no NextLabel set, new labels
come after MaxRepoLabel; once set, they come after NextLabel, under an optional
ceiling.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from cas_dvid.backends import Backend
from cas_dvid.errors import ConflictError, InvalidInputError
from cas_dvid.versions.refs import labels_ref, read_ref

MAX_LABEL = (1 << 64) - 1
MAX_ATTEMPTS = 200


@dataclass(slots=True)
class Counters:
    """The counters' values: MaxRepoLabel, NextLabel (0: unset), NextLabelCeiling (0: none)."""

    max_repo: int = 0
    next: int = 0
    ceiling: int = 0

    def to_json(self) -> bytes:
        """Return the ref's value."""
        doc = {"max_repo": self.max_repo, "next": self.next, "ceiling": self.ceiling}
        return json.dumps(doc, sort_keys=True).encode()


class LabelCounters:
    """The counters of one instance on a backend."""

    def __init__(self, backend: Backend, data_uuid: str) -> None:
        self.backend = backend
        self.name = labels_ref(data_uuid)

    def read(self) -> Counters:
        """Return the counters as stored (zeros if never written)."""
        ref = read_ref(self.backend, self.name)
        return Counters() if ref is None else Counters(**json.loads(ref.value))

    def _swap(self, change: Callable[[Counters], int | tuple[int, int] | None]) -> object:
        for _ in range(MAX_ATTEMPTS):
            ref = read_ref(self.backend, self.name)
            counters = Counters() if ref is None else Counters(**json.loads(ref.value))
            before = counters.to_json()
            out = change(counters)
            if counters.to_json() == before:
                return out
            try:
                self.backend.cas_ref(
                    self.name, None if ref is None else ref.token, counters.to_json()
                )
                return out
            except ConflictError:
                continue
        raise ConflictError(f"label counters {self.name} kept changing; try again")

    def raise_max(self, label: int) -> None:
        """Make MaxRepoLabel at least ``label`` (writes call it with their largest label)."""

        def change(c: Counters) -> None:
            c.max_repo = max(c.max_repo, label)

        self._swap(change)

    def reserve(self, count: int) -> tuple[int, int]:
        """POST nextlabel/{count}: labels ``start``..``end`` (inclusive), never handed out twice."""
        if count <= 0:
            raise InvalidInputError(f"cannot request {count} new labels, must be 1 or more")

        def change(c: Counters) -> tuple[int, int]:
            base = c.next if c.next else c.max_repo
            if count >= MAX_LABEL - base:
                raise InvalidInputError(
                    f"allocating {count} new labels would overflow uint64 label space "
                    f"(starting after {base})"
                )
            start, end = base + 1, base + count
            if c.next:
                if c.ceiling and end > c.ceiling:
                    raise InvalidInputError(
                        f"allocating {count} new labels would exceed configured next label "
                        f"ceiling {c.ceiling}"
                    )
                c.next = end
            else:
                c.max_repo = end
            return start, end

        out = self._swap(change)
        assert isinstance(out, tuple)
        return out

    def set_next(self, label: int, ceiling: int | None) -> None:
        """POST set-nextlabel/{label}[?ceiling=]: where the next reservations start."""
        if label == 0:
            raise InvalidInputError(
                "label 0 is protected background value and cannot be used as next label"
            )
        if label >= MAX_LABEL:
            raise InvalidInputError(f"next label start {label} is reserved")

        def change(c: Counters) -> None:
            limit = c.ceiling if ceiling is None else ceiling
            if limit and label > limit:
                raise InvalidInputError(
                    f"next label start {label} would exceed next label ceiling {limit}"
                )
            c.next = label
            c.ceiling = limit

        self._swap(change)

    def next_label(self) -> int:
        """GET nextlabel: the label a reservation of one would get."""
        c = self.read()
        return (c.next if c.next else c.max_repo) + 1

    def delete(self) -> None:
        """Drop the counters (the instance is being deleted)."""
        ref = read_ref(self.backend, self.name)
        if ref is not None:
            self.backend.delete_ref(self.name, ref.token)
