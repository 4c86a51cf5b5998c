"""Repo records across stores: resolve a version on a peer, and merge a record into another.

The receiving record gets only the versions that were transferred (locked), added to
what it already held.  A version both sides hold must have the same commit id on
both; anything else is a conflict, reported before a single object moves.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from cas_dvid.datatypes import default_registry
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.errors import ConflictError, InvalidInputError
from cas_dvid.objects import ObjectId, parse_object_id
from cas_dvid.sync.abc import Peer
from cas_dvid.sync.tables import PeerRecords
from cas_dvid.sync.walk import verified
from cas_dvid.versions import Commit, Instance, Repo


def spatial(inst: Instance) -> Spatial | None:
    """How ``inst`` keys its blocks (None: not spatial), as its datatype says."""
    return default_registry().spatial(inst)


def resolve(peer: Peer, spec: str) -> tuple[Repo, str]:
    """Resolve a DVID UUID spec (prefix, ``uuid:branch``, ``~N``) on ``peer``: (record, node)."""
    return PeerRecords(peer).resolve(spec)


def load_commits(peer: Peer, ids: list[ObjectId]) -> dict[ObjectId, tuple[Commit, bytes]]:
    """Commit objects (decoded and their stored form) fetched in one batch, verified."""
    out: dict[ObjectId, tuple[Commit, bytes]] = {}
    for oid, stored in peer.fetch(ids) if ids else []:
        _, raw = verified(oid, stored)
        out[oid] = (Commit.decode(raw), stored)
    return out


def commit_id(repo: Repo, uuid: str) -> ObjectId:
    """Return the commit id of a locked node."""
    node = repo.nodes[uuid]
    if not node.locked or not node.commit:
        raise InvalidInputError(
            f"version {uuid} is not locked: commit it first "
            "(push, pull and publish move locked versions)"
        )
    return parse_object_id(node.commit)


def history(repo: Repo, uuid: str, flatten: bool) -> list[str]:
    """Return the nodes to move for ``uuid``: itself, or itself and every ancestor; oldest first."""
    nodes = [uuid] if flatten else list(repo.ancestors(uuid))
    return sorted(nodes, key=lambda u: repo.nodes[u].version_id)


def select_instances(repo: Repo, names: Iterable[str] | None) -> list[Instance]:
    """Versioned instances to move: all of them, or those named (unknown names are an error)."""
    if names is None:
        return [i for i in repo.instances.values() if i.versioned]
    out = []
    for name in names:
        inst = repo.instances.get(name)
        if inst is None:
            raise InvalidInputError(f"repo {repo.root} has no data instance named {name!r}")
        if not inst.versioned:
            raise InvalidInputError(
                f"data instance {name!r} is unversioned: push and pull move versions"
            )
        out.append(inst)
    return out


def merge_record(
    dst: Repo | None, src: Repo, nodes: list[str], instances: list[Instance]
) -> tuple[Repo, set[str], set[str]]:
    """``dst`` with ``nodes`` and ``instances`` of ``src`` added.

    Returns the merged record, the nodes it did not hold before and the data UUIDs of
    instances it did not hold before.  Raises ``ConflictError`` when a version or an
    instance name means different things on the two sides.
    """
    out = (
        copy.deepcopy(dst)
        if dst is not None
        else Repo(
            root=src.root,
            alias=src.alias,
            description=src.description,
            log=list(src.log),
            created=src.created,
            updated=src.updated,
            next_version_id=1,
            mutation_id=src.mutation_id,
        )
    )
    new_insts = _merge_instances(out, instances)
    # NOTE: a receiver whose node table is the sender's holds every locked node already:
    # a no-op push then reads no table node (over HTTP that would be round trips).
    same_table = dst is not None and dst.locked == src.locked
    batch = set(nodes)
    next_id = out.next_version_id
    new_nodes: set[str] = set()
    for u in nodes:
        s = src.nodes[u]
        if same_table and s.locked:
            continue
        mine = out.nodes.get(u)
        if mine is not None:
            _same_version(u, mine.locked, mine.commit, s.locked, s.commit)
            continue
        node = copy.deepcopy(s)
        node.parents = [p for p in s.parents if p in batch or p in out.nodes]
        node.children = []  # (a view: children follow from the nodes' parents)
        if node.version_id < next_id and out.nodes.version_taken(node.version_id):
            node.version_id = next_id  # (ids at or past next_id are free)
        next_id = max(next_id, node.version_id + 1)
        out.nodes[u] = node
        new_nodes.add(u)
    out.next_version_id = next_id
    return out, new_nodes, new_insts


def _merge_instances(out: Repo, instances: list[Instance]) -> set[str]:
    new: set[str] = set()
    for inst in instances:
        have = out.instances.get(inst.name)
        if have is not None:
            if have.data_uuid != inst.data_uuid:
                raise ConflictError(
                    f"data instance {inst.name!r} of repo {out.root} is {have.data_uuid} "
                    "on one side and "
                    f"{inst.data_uuid} on the other: they are different data"
                )
            continue
        if out.instance_by_data_uuid(inst.data_uuid) is not None:
            continue  # renamed on one side: keep the receiver's name
        out.instances[inst.name] = copy.deepcopy(inst)
        new.add(inst.data_uuid)
    return new


def _same_version(
    uuid: str, a_locked: bool, a_commit: str | None, b_locked: bool, b_commit: str | None
) -> None:
    if a_locked == b_locked and a_commit == b_commit:
        return  # the same commit, or the same open version (a clone run again)
    if not a_locked or not b_locked:
        raise ConflictError(
            f"version {uuid} is {'open' if not a_locked else 'locked'} on the receiving side and "
            f"{'open' if not b_locked else 'locked'} on the sending side: it was changed on both"
        )
    raise ConflictError(
        f"version {uuid} has commit {a_commit} on the receiving side "
        f"and {b_commit} on the sending side"
    )
