"""The repo record: DAG nodes and data instances, kept as one JSON ref per repo."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cas_dvid.errors import CorruptObjectError, NotFoundError

REPO_FORMAT = 1
FIRST_MUTATION_ID = 1_000_000_000
_UUID_RE = re.compile(r"[0-9a-f]{32}")


def now() -> str:
    """Return the current UTC time in Go's RFC3339Nano form, as DVID's JSON shows times."""
    t = datetime.now(UTC)
    frac = f"{t.microsecond * 1000:09d}".rstrip("0")
    return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


def new_uuid() -> str:
    """Return a fresh 32-hex version UUID (DVID style: a v4 UUID without dashes)."""
    raw = bytearray(secrets.token_bytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def is_full_uuid(text: str) -> bool:
    """Whether ``text`` is 32 lower-case hex digits."""
    return bool(_UUID_RE.fullmatch(text))


@dataclass(slots=True)
class Instance:
    """A data instance: repo-wide, visible from every node."""

    name: str
    typename: str
    data_uuid: str
    versioned: bool = True
    settings: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at: str = ""  # node UUID where it was added
    created: str = ""


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


@dataclass(slots=True)
class Repo:
    """Everything mutable about a repo except the heads of unlocked nodes."""

    root: str
    alias: str = ""
    description: str = ""
    log: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)
    next_version_id: int = 1
    mutation_id: int = FIRST_MUTATION_ID
    created: str = ""
    updated: str = ""

    def node(self, uuid: str) -> Node:
        """Return the node ``uuid`` (it must belong to this repo)."""
        return self.nodes[uuid]

    def by_version_id(self) -> dict[int, str]:
        """VersionID -> UUID."""
        return {n.version_id: u for u, n in self.nodes.items()}

    def instance_by_data_uuid(self, data_uuid: str) -> Instance | None:
        """Return the instance with this data UUID, if it still exists."""
        for inst in self.instances.values():
            if inst.data_uuid == data_uuid:
                return inst
        return None

    def ancestors(self, uuid: str) -> dict[str, int]:
        """Every ancestor of ``uuid`` (itself included) with its distance in edges."""
        dist = {uuid: 0}
        frontier = [uuid]
        while frontier:
            nxt = []
            for u in frontier:
                for p in self.nodes[u].parents:
                    if p not in dist and p in self.nodes:  # a partial copy may lack old parents
                        dist[p] = dist[u] + 1
                        nxt.append(p)
            frontier = nxt
        return dist

    def to_json(self) -> bytes:
        """Return the stored form (sorted keys, so equal repos serialise equally)."""
        doc = asdict(self)
        doc["format"] = REPO_FORMAT
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Repo:
        """Parse the stored form."""
        try:
            doc = json.loads(raw)
            if doc.pop("format", None) != REPO_FORMAT:
                raise ValueError("unknown repo format")
            doc["instances"] = {k: Instance(**v) for k, v in doc["instances"].items()}
            doc["nodes"] = {k: Node(**v) for k, v in doc["nodes"].items()}
            return cls(**doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptObjectError(f"unreadable repo record: {exc}") from exc


@dataclass(frozen=True, slots=True)
class At:
    """A resolved version: the repo record as read and the node's UUID."""

    repo: Repo
    uuid: str

    @property
    def node(self) -> Node:
        """The node record."""
        return self.repo.nodes[self.uuid]

    def instance(self, name: str) -> Instance:
        """Return the instance called ``name`` in this repo (400-style error if there is none)."""
        try:
            return self.repo.instances[name]
        except KeyError:
            raise NotFoundError(f"invalid data instance name {name!r}") from None
