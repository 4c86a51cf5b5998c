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


def instance_json(repo: Repo, inst: Instance, types: TypeRegistry) -> dict[str, Any]:
    """Instance entry of repo info: Base and Extended (no I/O)."""
    return {
        "Base": base_json(repo, inst, types),
        "Extended": types.get(inst.typename).extended(inst),
    }


def instance_info(services: Services, at: At, inst: Instance) -> dict[str, Any]:
    """GET .../{data}/info: Base, the datatype's Extended (and Extents), plus ``TreeRoot``.

    ``TreeRoot`` is the id of the instance's tree at this version: two servers showing
    the same one hold the same data.
    """
    doc: dict[str, Any] = {"Base": base_json(at.repo, inst, services.types)}
    doc.update(services.data.for_instance(inst).info(at, inst))
    doc["TreeRoot"] = to_hex(services.versions.root_at(at, inst))
    return doc


def repo_json(repo: Repo, types: TypeRegistry) -> dict[str, Any]:
    """Return DVID's repoJSON (the whole DAG: one scan of the node table)."""
    nodes = repo.all_nodes()
    ids = {u: n.version_id for u, n in nodes.items()}
    return {
        "Root": repo.root,
        "Alias": repo.alias,
        "Description": repo.description,
        "Log": list(repo.log),
        "Properties": dict(repo.properties),
        "DataInstances": {
            n: instance_json(repo, i, types) for n, i in sorted(repo.instances.items())
        },
        "DAG": {"Root": repo.root, "Nodes": {u: node_json(repo, u, ids) for u in nodes}},
        "MutationID": repo.mutation_id,
        "SavedMutationID": repo.mutation_id + 100,
        "Created": repo.created,
        "Updated": repo.updated,
    }


def fill_extents(services: Services, repo: Repo, doc: dict[str, Any]) -> dict[str, Any]:
    """Fill each volume instance's ``Extended`` MinPoint/MaxPoint in a repoJSON ``doc``.

    Repo info is not tied to a version, but neuroglancer's dvid source takes every
    volume's bounds from it (src/datasource/dvid/frontend.ts), so it shows the union of
    the extents at the DAG's leaves (extents only grow along an edge). Instances
    without extents keep null.
    """
    leaves = [u for u, n in repo.all_nodes().items() if not n.children] or [repo.root]
    for name, entry in doc["DataInstances"].items():
        ext = entry["Extended"]
        if not isinstance(ext, dict) or "MinPoint" not in ext:
            continue
        inst = repo.instances[name]
        lo: list[int] | None = None
        hi: list[int] | None = None
        for uuid in leaves:
            got = services.data.for_instance(inst).info(At(repo, uuid), inst).get("Extents")
            if not got:
                continue
            a, b = got["MinPoint"], got["MaxPoint"]
            lo = a if lo is None else [min(x, y) for x, y in zip(lo, a, strict=True)]
            hi = b if hi is None else [max(x, y) for x, y in zip(hi, b, strict=True)]
        ext["MinPoint"], ext["MaxPoint"] = lo, hi
    return doc
