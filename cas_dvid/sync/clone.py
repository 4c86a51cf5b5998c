"""Clone: copy every repo of a store (open versions and their heads included) to another."""

from __future__ import annotations

from cas_dvid.datatypes.geometry import Box3
from cas_dvid.datatypes.partial import PROPERTY, region_boxes, region_filter
from cas_dvid.datatypes.regions import KeyFilter
from cas_dvid.errors import ConflictError
from cas_dvid.objects import ObjectId, parse_object_id
from cas_dvid.sync.abc import Peer, update_incomplete
from cas_dvid.sync.ops import Report, fill_report, start_counters
from cas_dvid.sync.publish import published
from cas_dvid.sync.records import load_commits, merge_record, spatial
from cas_dvid.sync.tables import PeerRecords
from cas_dvid.sync.transfer import Options, Walker
from cas_dvid.trees import EMPTY_ROOT
from cas_dvid.versions import Instance, Node, Repo
from cas_dvid.versions.refs import (
    HEAD_PREFIX,
    INCOMPLETE_REF,
    head_ref,
    incomplete_ids,
    parse_head_ref,
    published_ref,
    repo_ref,
    repo_roots,
    uuid_ref,
)

Root = tuple[ObjectId, KeyFilter | None]


def _open_roots(
    repo: Repo, nodes: dict[str, Node], heads: dict[str, bytes], filters: _Filters
) -> list[Root]:
    """Roots of open versions: their heads, or the roots they started from."""
    out = []
    live = {i.data_uuid: i for i in repo.instances.values()}
    for u, node in nodes.items():
        for d, inst in live.items():
            value = heads.get(head_ref(u, d))
            if value is not None and len(value) == 33:
                out.append((ObjectId(value[1:]), filters.get(repo, u, inst)))
            elif not node.locked and d in node.start and (inst.versioned or u == repo.root):
                out.append((parse_object_id(node.start[d]), filters.get(repo, u, inst)))
    return out


class _Filters:
    """What a partial source holds of each version (one object per distinct region)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, tuple[Box3, ...] | None], KeyFilter | None] = {}

    def get(self, repo: Repo, u: str, inst: Instance) -> KeyFilter | None:
        key = (inst.data_uuid, region_boxes(repo, u, inst.data_uuid))
        if key not in self._cache:
            self._cache[key] = region_filter(repo, u, inst, spatial(inst))
        return self._cache[key]


def clone(src: Peer, dst: Peer, options: Options | None = None) -> Report:
    """Copy every repo, version, head and published snapshot of ``src`` into ``dst``."""
    t0 = start_counters(src, dst)
    src_records = PeerRecords(src)
    records = {root: src_records.read(root) for root in repo_roots(src)}
    every = {root: r.all_nodes() for root, r in records.items()}  # one table scan each
    head_names = [
        n
        for n in src.list_refs(HEAD_PREFIX)
        if (nd := parse_head_ref(n)) is not None
        and any(nd[0] in every[k] and r.instance_by_data_uuid(nd[1]) for k, r in records.items())
    ]
    heads = (
        {n: r.value for n, r in src.get_refs(head_names).items() if r is not None}
        if head_names
        else {}
    )
    pins = published(src)
    cids = sorted(
        {
            parse_object_id(n.commit)
            for nodes in every.values()
            for n in nodes.values()
            if n.locked and n.commit
        }
        | {m.commit for m in pins.values()}
    )
    names = [repo_ref(root) for root in records]
    refs, have = dst.negotiate([*names, INCOMPLETE_REF], cids)
    dst_records = PeerRecords(dst)
    for root, repo in records.items():  # NOTE: conflicts fail before any send
        before = refs[repo_ref(root)]
        merge_record(
            None if before is None else dst_records.parse(before.value),
            repo,
            list(every[root]),
            list(repo.instances.values()),
        )
    todo = [c for c, h in zip(cids, have, strict=True) if not h]
    commits = load_commits(src, todo)
    roots: list[Root] = []
    filters = _Filters()
    partial: set[ObjectId] = set()
    for root, repo in records.items():
        live = {i.data_uuid: i for i in repo.instances.values() if i.versioned}
        for u, n in every[root].items():
            cid = parse_object_id(n.commit) if n.locked and n.commit else None
            if cid in commits:
                for d, r in commits[cid][0].roots.items():
                    if d in live:
                        roots.append((parse_object_id(r), filters.get(repo, u, live[d])))
                        if roots[-1][1] is not None:
                            partial.add(cid)
        roots += _open_roots(repo, every[root], heads, filters)
    for m in pins.values():
        if m.commit in commits:
            roots += [(r, None) for r in m.roots.values()]
    inc = refs[INCOMPLETE_REF]
    walker = Walker(src, dst, options or Options(), watch=incomplete_ids(inc))
    result = walker.run(r for r in dict.fromkeys(roots) if r[0] != EMPTY_ROOT)
    walker.sender.put([(c, stored) for c, (_, stored) in commits.items()])
    walker.sender.put([(m.id, m.stored()) for m in pins.values()])
    if partial or result.incomplete or result.complete:
        update_incomplete(dst, partial | result.incomplete, result.complete)
    report = Report(src.url, dst.url, versions=[u for nodes in every.values() for u in nodes])
    pinned = {published_ref(c): m.raw for c, m in pins.items()}
    report.refs_moved = _move_refs(dst_records, records, every, heads, pinned)
    fill_report(report, walker, len(commits), dst, src, t0)
    return report


def _move_refs(
    dst_records: PeerRecords,
    records: dict[str, Repo],
    every: dict[str, dict[str, Node]],
    heads: dict[str, bytes],
    pins: dict[str, bytes],
) -> bool:
    dst = dst_records.peer
    moved = False
    for name, value in {**heads, **pins}.items():
        moved |= _create(dst, name, value)
    for root, repo in records.items():
        for u in sorted(every[root]):
            moved |= _create(dst, uuid_ref(u), root.encode())
        for _ in range(100):
            ref = dst.get_ref(repo_ref(root))
            before = None if ref is None else dst_records.parse(ref.value)
            merged, _, _ = merge_record(
                before, repo, list(every[root]), list(repo.instances.values())
            )
            _copy_regions(merged, repo)
            raw = dst_records.encode(merged)
            if ref is not None and raw == ref.value:
                break
            try:
                dst.cas_ref(repo_ref(root), None if ref is None else ref.token, raw)
                moved = True
                break
            except ConflictError:
                continue
    return moved


def _copy_regions(merged: Repo, src: Repo) -> None:
    """Give a clone the partial regions its source held."""
    held = src.properties.get(PROPERTY)
    if isinstance(held, dict) and held:
        entries = dict(merged.properties.get(PROPERTY) or {})
        for u, own in held.items():
            entries[u] = {**entries.get(u, {}), **own}
        merged.properties[PROPERTY] = entries


def _create(dst: Peer, name: str, value: bytes) -> bool:
    try:
        dst.cas_ref(name, None, value)
        return True
    except ConflictError as exc:
        if exc.current != value:
            raise ConflictError(
                f"ref {name} at {dst.url} already holds something else; not overwriting it"
            ) from None
        return False
