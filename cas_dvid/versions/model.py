"""The repo record: metadata, instances and open nodes in one JSON ref; locked nodes in a table.

Format 2 (this): ``open`` holds the open nodes, ``locked`` names the node table (a
Merkle tree, see nodetable.py).  Format 1 (earlier stores) held every node in the
record; it is read as it is, and written as format 2 at its next change.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from cas_dvid.errors import CorruptObjectError, NotFoundError
from cas_dvid.objects import ObjectId, parse_object_id, to_hex
from cas_dvid.trees import EMPTY_ROOT
from cas_dvid.versions.node import Node
from cas_dvid.versions.nodetable import NodeTable, RepoNodes

REPO_FORMAT = 2
READ_FORMATS = (1, 2)
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
class Repo:
    """Everything mutable about a repo except the heads of unlocked nodes."""

    root: str
    alias: str = ""
    description: str = ""
    log: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    nodes: RepoNodes = field(default_factory=lambda: RepoNodes({}))
    locked: ObjectId = EMPTY_ROOT
    next_version_id: int = 1
    mutation_id: int = FIRST_MUTATION_ID
    created: str = ""
    updated: str = ""

    def node(self, uuid: str) -> Node:
        """Return the node ``uuid`` (it must belong to this repo)."""
        return self.nodes[uuid]

    def all_nodes(self) -> dict[str, Node]:
        """Return every node (one scan of the node table)."""
        return self.nodes.items_all()

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
        """Return the stored form (sorted keys, so equal repos serialise equally).

        Locked nodes must have been written to the node table first (records do it).
        """
        doc = {
            "format": REPO_FORMAT,
            "root": self.root,
            "alias": self.alias,
            "description": self.description,
            "log": self.log,
            "properties": self.properties,
            "instances": {k: asdict(v) for k, v in self.instances.items()},
            "open": {k: asdict(v) for k, v in self.nodes.open.items()},
            "locked": to_hex(self.locked),
            "next_version_id": self.next_version_id,
            "mutation_id": self.mutation_id,
            "created": self.created,
            "updated": self.updated,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes, table: TableOpener | None = None) -> Repo:
        """Parse the stored form; ``table`` opens the node table a format 2 record names."""
        try:
            doc = json.loads(raw)
            fmt = doc.pop("format", None)
            if fmt not in READ_FORMATS:
                raise ValueError(f"unknown repo format {fmt}")
            doc["instances"] = {k: Instance(**v) for k, v in doc["instances"].items()}
            if fmt == 1:
                nodes = {k: Node(**v) for k, v in doc.pop("nodes").items()}
                opened = RepoNodes({k: n for k, n in nodes.items() if not n.locked})
                for k, n in nodes.items():
                    if n.locked:
                        opened[k] = n  # written to a table at the next save
                return cls(nodes=opened, **doc)
            locked = parse_object_id(doc.pop("locked"))
            open_nodes = {k: Node(**v) for k, v in doc.pop("open").items()}
            if locked != EMPTY_ROOT and table is None:
                raise ValueError("a format 2 record needs its node table")
            nodes_table = table(locked) if table is not None else None
            return cls(nodes=RepoNodes(open_nodes, nodes_table), locked=locked, **doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptObjectError(f"unreadable repo record: {exc}") from exc


TableOpener = Callable[[ObjectId], NodeTable]
"""Opens the node table with a given root (over a store, or a sync peer)."""


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
