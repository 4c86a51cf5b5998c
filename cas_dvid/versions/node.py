"""A version node: one UUID in a repo's DAG, open (writable) or locked (a commit)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Node:
    """A version node. Unlocked nodes carry the roots they started from; locked ones a commit."""

    uuid: str
    version_id: int
    branch: str = ""
    note: str = ""
    log: list[str] = field(default_factory=list)
    locked: bool = False
    commit: str | None = None  # hex id of the commit object, once locked
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    start: dict[str, str] = field(default_factory=dict)  # data_uuid -> root hex
    created: str = ""
    updated: str = ""
