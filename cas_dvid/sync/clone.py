"""Clone: copy every repo of a store (open versions and their heads included) to another."""

from __future__ import annotations

from cas_dvid.datatypes.geometry import Box3
from cas_dvid.datatypes.partial import PROPERTY, record_transfer, region_boxes
from cas_dvid.datatypes.regions import KeyFilter
from cas_dvid.errors import ConflictError
from cas_dvid.objects import ObjectId, parse_object_id
from cas_dvid.sync.abc import Peer, update_incomplete
from cas_dvid.sync.ops import (
    Report,
    combine_region,
    fill_report,
    roi_instance,
    roi_region,
    start_counters,
)
from cas_dvid.sync.publish import published
from cas_dvid.sync.records import load_commits, merge_record
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
Region = tuple[Box3, ...] | None


def _open_roots(repo: Repo, u: str, node: Node, heads: dict[str, bytes]) -> dict[str, ObjectId]:
    """Roots of open version ``u``: its heads, or the roots it started from."""
    out = {}
    for d, inst in _live(repo).items():
        value = heads.get(head_ref(u, d))
        if value is not None and len(value) == 33:
            out[d] = ObjectId(value[1:])
        elif not node.locked and d in node.start and (inst.versioned or u == repo.root):
            out[d] = parse_object_id(node.start[d])
    return out


def _live(repo: Repo) -> dict[str, Instance]:
    return {i.data_uuid: i for i in repo.instances.values()}


class _Filters:
    """What to send of each version: what a partial source holds, within the ROI if asked.

    One object per distinct region, so subtrees versions share are walked once.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[str, Region, Region], tuple[KeyFilter | None, Region]] = {}

    def get(
        self, repo: Repo, u: str, inst: Instance, asked: Region
    ) -> tuple[KeyFilter | None, Region]:
        held = region_boxes(repo, u, inst.data_uuid)
        key = (inst.data_uuid, held, asked)
        if key not in self._cache:
            self._cache[key] = combine_region(inst, asked, held, u, repo)
        return self._cache[key]


class _Rois:
    """The ROI ``name`` of each repo at each version, as voxel boxes (``clone --roi``)."""

    def __init__(self, src: Peer, name: str | None) -> None:
        self.src = src
        self.name = name
        self._boxes: dict[tuple[str, ObjectId | None], tuple[Box3, ...]] = {}

    def check(self, repo: Repo) -> None:
        """Refuse a repo without the ROI before anything is sent."""
        if self.name is not None:
            roi_instance(repo, self.name)

    def at(self, repo: Repo, roots: dict[str, ObjectId]) -> Region:
        """Return the ROI's boxes in a version with these roots (``()``: empty there)."""
        if self.name is None:
            return None
        inst = roi_instance(repo, self.name)
        root = roots.get(inst.data_uuid)
        key = (inst.data_uuid, root)
        if key not in self._boxes:
            self._boxes[key] = roi_region(self.src, inst, root)
        return self._boxes[key]


def clone(
    src: Peer, dst: Peer, options: Options | None = None, *, roi: str | None = None
) -> Report:
    """Copy every repo, version, head and published snapshot of ``src`` into ``dst``.

    ``roi``: every repo's roi instance of that name restricts what travels of each
    version's spatial instances to the blocks inside the ROI as it is at that version
    (the partial-version bookkeeping of ``pull --roi``); other instances travel whole.
    Published snapshots promise whole versions, so a ROI clone leaves them out.
    """
    t0 = start_counters(src, dst)
    src_records = PeerRecords(src)
    records = {root: src_records.read(root) for root in repo_roots(src)}
    rois = _Rois(src, roi)
    for repo in records.values():
        rois.check(repo)
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
    pins = published(src) if roi is None else {}
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
    asked: dict[tuple[str, str, str], tuple[ObjectId, Region]] = {}  # (repo, u, d) -> root, region
    for root, repo in records.items():
        live = {i.data_uuid: i for i in repo.instances.values() if i.versioned}
        for u, n in every[root].items():
            cid = parse_object_id(n.commit) if n.locked and n.commit else None
            committed = {}
            if cid in commits:
                committed = {
                    d: parse_object_id(r) for d, r in commits[cid][0].roots.items() if d in live
                }
            opened = _open_roots(repo, u, n, heads)
            region = rois.at(repo, {**opened, **committed})
            pairs = [*committed.items()]
            pairs += [(d, r) for d, r in opened.items() if committed.get(d) != r]
            for d, r in pairs:
                inst = repo.instance_by_data_uuid(d)
                if inst is None:
                    continue
                keep, held = filters.get(repo, u, inst, region)
                roots.append((r, keep))
                if keep is not None and cid is not None and d in committed:
                    partial.add(cid)
                if region is not None and keep is not None:
                    asked[(root, u, d)] = (r, held)
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
    regions = {k: held for k, (r, held) in asked.items() if r in result.incomplete}
    report.refs_moved = _move_refs(dst_records, records, every, heads, pinned, regions)
    report.partial = tuple({b: None for held in regions.values() for b in held or ()}) or None
    fill_report(report, walker, len(commits), dst, src, t0)
    return report


def _move_refs(
    dst_records: PeerRecords,
    records: dict[str, Repo],
    every: dict[str, dict[str, Node]],
    heads: dict[str, bytes],
    pins: dict[str, bytes],
    regions: dict[tuple[str, str, str], Region],
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
            merged, new_nodes, new_insts = merge_record(
                before, repo, list(every[root]), list(repo.instances.values())
            )
            _copy_regions(merged, repo)
            for (r, u, d), held in regions.items():
                if r == root:
                    existed = u not in new_nodes and d not in new_insts
                    record_transfer(merged, u, d, held, existed=existed)
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
