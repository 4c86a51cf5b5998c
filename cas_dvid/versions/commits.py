"""Commit objects: the immutable snapshot a locked version becomes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from cas_dvid.errors import CorruptObjectError
from cas_dvid.objects import Kind, ObjectId, ObjectStore


@dataclass(frozen=True, slots=True)
class Commit:
    """A locked version: its parents' commit ids and the root of every versioned instance.

    Its id (BLAKE3 of this canonical JSON) is the version's snapshot id: two stores that
    hold the same commit id hold the same data, and anyone can check it.
    """

    uuid: str
    repo: str
    parents: list[str] = field(default_factory=list)  # parent commit ids (hex)
    roots: dict[str, str] = field(default_factory=dict)  # data_uuid -> tree root (hex)
    instances: dict[str, str] = field(default_factory=dict)  # data_uuid -> "name:type"
    branch: str = ""
    note: str = ""
    log: list[str] = field(default_factory=list)
    created: str = ""
    committed: str = ""

    def encode(self) -> bytes:
        """Canonical bytes (sorted keys, no spaces)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | memoryview) -> Commit:
        """Parse canonical bytes."""
        try:
            return cls(**json.loads(bytes(raw)))
        except (ValueError, TypeError) as exc:
            raise CorruptObjectError(f"unreadable commit object: {exc}") from exc


def save_commit(store: ObjectStore, commit: Commit) -> ObjectId:
    """Store a commit object and return its id."""
    return store.put(Kind.COMMIT, commit.encode())


def load_commit(store: ObjectStore, oid: ObjectId) -> Commit:
    """Load and verify a commit object."""
    return Commit.decode(store.get(oid, Kind.COMMIT))
