"""The JSON shapes DVID gives repos, nodes and instances (plus our ids beside them)."""

from __future__ import annotations

from typing import Any

from cas_dvid.api._common import Services
from cas_dvid.datatypes import TypeRegistry
from cas_dvid.objects import to_hex
from cas_dvid.versions import At, Instance, Repo


def node_json(repo: Repo, uuid: str, ids: dict[str, int] | None = None) -> dict[str, Any]:
    """Return one node of the DAG as DVID's nodeJSON, plus ``CommitID`` once locked.

    ``ids`` maps UUIDs to VersionIDs (looked up for parents and children if absent).
    """
    n = repo.nodes[uuid]
    if ids is None:
        ids = {u: repo.nodes[u].version_id for u in [*n.parents, *n.children] if u in repo.nodes}
    return {
        "Branch": n.branch,
        "Note": n.note,
        "Log": list(n.log),
        "UUID": uuid,
        "VersionID": n.version_id,
        "Locked": n.locked,
        "Parents": [ids[p] for p in n.parents if p in ids],
        "Children": sorted(ids[c] for c in n.children if c in ids),
        "Created": n.created,
        "Updated": n.updated,
        "CommitID": n.commit or "",
    }


def base_json(repo: Repo, inst: Instance, types: TypeRegistry) -> dict[str, Any]:
    """DVID's ``Base`` block of instance info."""
    t = types.get(inst.typename)
    return {
        "TypeName": t.name,
        "TypeURL": t.full_url,
        "TypeVersion": t.version,
        "DataUUID": inst.data_uuid,
        "Name": inst.name,
        "RepoUUID": inst.created_at or repo.root,
        "Compression": t.compression(inst),
        "Checksum": "No checksum",
        "Syncs": [],
        "Versioned": inst.versioned,
        "KVStore": "default",
        "LogStore": "default",
        "Tags": dict(inst.tags) or None,
    }


def instance_json(
    repo: Repo, inst: Instance, types: TypeRegistry, services: Services | None = None
) -> dict[str, Any]:
    """Instance entry of repo info: Base and Extended.

    With ``services``, a volume's ``MinPoint``/``MaxPoint`` (and indices) are the bounds of
    its extents over every leaf version (extents only grow from parent to child, so that
    covers every version): neuroglancer's dvid source reads a volume's bounds here.
    """
    ext = types.get(inst.typename).extended(inst)
    if services is not None and "MinPoint" in ext:
        ext = _bounds_over_leaves(services, repo, inst, ext)
    return {"Base": base_json(repo, inst, types), "Extended": ext}


def _bounds_over_leaves(
    services: Services, repo: Repo, inst: Instance, ext: dict[str, Any]
) -> dict[str, Any]:
    nodes = repo.all_nodes()
    leaves = [u for u, n in nodes.items() if not n.children] if inst.versioned else [repo.root]
    service = services.data.for_instance(inst)
    found = [service.info(At(repo, u), inst)["Extended"] for u in leaves]
    found = [e for e in found if e.get("MinPoint") is not None]
    if not found:
        return ext
    out = dict(found[0])
    for key, pick in (("MinPoint", min), ("MaxPoint", max), ("MinIndex", min), ("MaxIndex", max)):
        out[key] = [pick(vals) for vals in zip(*(e[key] for e in found), strict=True)]
    return out


def instance_info(services: Services, at: At, inst: Instance) -> dict[str, Any]:
    """GET .../{data}/info: Base, the datatype's Extended (and Extents), plus ``TreeRoot``.

    ``TreeRoot`` is the id of the instance's tree at this version: two servers showing
    the same one hold the same data.
    """
    doc: dict[str, Any] = {"Base": base_json(at.repo, inst, services.types)}
    doc.update(services.data.for_instance(inst).info(at, inst))
    doc["TreeRoot"] = to_hex(services.versions.root_at(at, inst))
    return doc


def repo_json(repo: Repo, types: TypeRegistry, services: Services | None = None) -> dict[str, Any]:
    """Return DVID's repoJSON (the whole DAG: one scan of the node table).

    ``services``: fill volumes' bounds (a tree read per leaf and volume), as DVID shows them.
    """
    nodes = repo.all_nodes()
    ids = {u: n.version_id for u, n in nodes.items()}
    return {
        "Root": repo.root,
        "Alias": repo.alias,
        "Description": repo.description,
        "Log": list(repo.log),
        "Properties": dict(repo.properties),
        "DataInstances": {
            n: instance_json(repo, i, types, services) for n, i in sorted(repo.instances.items())
        },
        "DAG": {"Root": repo.root, "Nodes": {u: node_json(repo, u, ids) for u in nodes}},
        "MutationID": repo.mutation_id,
        "SavedMutationID": repo.mutation_id + 100,
        "Created": repo.created,
        "Updated": repo.updated,
    }
