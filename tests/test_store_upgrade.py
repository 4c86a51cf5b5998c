"""Stores written by earlier formats open and keep working: the UUID index and repo records."""

from __future__ import annotations

import json
from pathlib import Path

from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.refs import STORE_REF, UUID_PREFIX, repo_ref, uuid_ref
from cas_dvid.versions.stores import STORE_FORMAT, init_store, open_store_backend


def test_format_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    backend, _ = init_store(url)
    vs = VersionService(ObjectStore(backend))
    root = vs.create_repo("old")
    vs.commit(root)
    child = vs.new_child(root)
    # Rewrite it as a format 1 store: flat UUID index, every node in the record.
    for uuid in (root, child):
        ref = backend.get_ref(uuid_ref(uuid))
        backend.cas_ref(UUID_PREFIX + uuid, None, ref.value)
        backend.delete_ref(uuid_ref(uuid), ref.token)
    repo = vs.resolve(root).repo
    nodes = repo.all_nodes()
    doc = json.loads(backend.get_ref(repo_ref(root)).value)
    doc.pop("open"), doc.pop("locked")
    doc["format"] = 1
    doc["nodes"] = {u: {**vars_of(n), "children": list(n.children)} for u, n in nodes.items()}
    rec = backend.get_ref(repo_ref(root))
    backend.cas_ref(repo_ref(root), rec.token, json.dumps(doc).encode())
    meta = backend.get_ref(STORE_REF)
    backend.cas_ref(STORE_REF, meta.token, json.dumps({"format": 1}).encode())

    reopened = VersionService(ObjectStore(open_store_backend(url)))
    assert json.loads(reopened.store.backend.get_ref(STORE_REF).value)["format"] == STORE_FORMAT
    assert list(reopened.store.backend.list_refs(UUID_PREFIX + root)) == []  # flat entries gone
    at = reopened.resolve(child[:6])
    assert at.uuid == child and at.repo.nodes[root].children == [child]
    reopened.commit(child)  # the next change writes the record as format 2
    doc = json.loads(reopened.store.backend.get_ref(repo_ref(root)).value)
    assert doc["format"] == 2 and doc["open"] == {}
    assert sorted(reopened.resolve(root).repo.all_nodes()) == sorted([root, child])


def vars_of(node: object) -> dict[str, object]:
    return {f: getattr(node, f) for f in node.__slots__}  # type: ignore[attr-defined]
