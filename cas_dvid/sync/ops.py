"""Push, pull and clone: negotiate, send what the other side lacks, move refs last."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cas_dvid.backends import Ref
from cas_dvid.datatypes import partial as _partial
from cas_dvid.datatypes.geometry import Box3
from cas_dvid.datatypes.partial import boxes_filter, region_boxes, region_filter
from cas_dvid.datatypes.regions import IntersectFilter, KeyFilter
from cas_dvid.datatypes.roi.store import block_size as roi_block_size
from cas_dvid.datatypes.roi.store import roi_boxes, stored_spans
from cas_dvid.errors import ConflictError, InvalidInputError, NotFoundError
from cas_dvid.objects import ObjectId, parse_object_id
from cas_dvid.sync.abc import Peer, update_incomplete
from cas_dvid.sync.records import (
    commit_id,
    history,
    load_commits,
    merge_record,
    resolve,
    select_instances,
    spatial,
)
from cas_dvid.sync.tables import PeerRecords
from cas_dvid.sync.transfer import Options, Walker, WalkResult
from cas_dvid.versions import Commit, Instance, Repo
from cas_dvid.versions.refs import INCOMPLETE_REF, incomplete_ids, repo_ref, uuid_ref

MAX_REF_ATTEMPTS = 100


@dataclass(slots=True)
class Report:
    """What one transfer did."""

    source: str
    dest: str
    versions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0
    blobs: int = 0
    nodes: int = 0
    commits: int = 0
    have_requests: int = 0
    requests: int = 0
    refs_moved: bool = False
    partial: tuple[Box3, ...] | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """One line for people."""
        rate = self.bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
        part = _partial_text(self.partial) if self.partial else ""
        return (
            f"{len(self.versions)} version(s) sent, {len(self.skipped)} already there; "
            f"{self.objects} objects ({self.blobs} blobs, {self.nodes} tree nodes, "
            f"{self.commits} commits), "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s ({rate:.1f} MB/s); "
            f"{self.have_requests} have-check round trip(s){part}"
        )


Region = tuple[Box3, ...] | None


def _partial_text(boxes: tuple[Box3, ...]) -> str:
    if len(boxes) > 3:
        return f", partial to {len(boxes)} boxes (a ROI)"
    return f", partial to box {'; '.join(b.text() for b in boxes)}"


@dataclass(slots=True)
class _Selection:
    repo: Repo
    uuid: str
    nodes: list[str]
    instances: list[Instance]
    boxes: Region
    """The region asked for (``--box``: one box; ``--roi``: the ROI's blocks), None: all."""
    _cache: dict[tuple[str, Region], tuple[KeyFilter | None, Region]] = field(default_factory=dict)

    @property
    def data(self) -> list[str]:
        return [i.data_uuid for i in self.instances]

    def filter(self, u: str, d: str) -> tuple[KeyFilter | None, Region]:
        """Tell what to send of ``d`` at ``u`` (the box asked for, within what the source holds).

        Equal filters are one object, so subtrees versions share are walked once.
        """
        held = region_boxes(self.repo, u, d)
        hit = self._cache.get((d, held))
        if hit is None:
            hit = self._cache[(d, held)] = combine_region(
                self.repo.instance_by_data_uuid(d), self.boxes, held, u, self.repo
            )
        return hit


def combine_region(
    inst: Instance | None, boxes: Region, held: Region, u: str, repo: Repo
) -> tuple[KeyFilter | None, Region]:
    """Return the filter and region for ``boxes`` asked of ``inst`` at ``u`` holding ``held``."""
    asked = None if inst is None else boxes_filter(boxes, spatial(inst))
    if held is None or inst is None:
        return asked, None if asked is None else boxes
    have = region_filter(repo, u, inst, spatial(inst))
    if asked is None or boxes is None:
        return have, held
    both = tuple(b for b in (a.intersect(h) for a in boxes for h in held) if b is not None)
    return IntersectFilter([asked, have]) if have is not None else asked, both


def _select(
    src: Peer,
    spec: str,
    data: Iterable[str] | None,
    box: Box3 | None,
    roi: str | None,
    flatten: bool,
) -> _Selection:
    repo, uuid = resolve(src, spec)
    commit_id(repo, uuid)
    instances = select_instances(repo, data)
    if box is not None and roi is not None:
        raise InvalidInputError("give --box or --roi, not both")
    boxes: Region = None if box is None else (box,)
    if roi is not None:
        boxes = _roi_boxes(src, repo, uuid, roi)
    return _Selection(repo, uuid, history(repo, uuid, flatten), instances, boxes)


def _roi_boxes(src: Peer, repo: Repo, uuid: str, name: str) -> tuple[Box3, ...]:
    """Return the voxel boxes of roi ``name`` as the source holds it at ``uuid``."""
    inst = roi_instance(repo, name)
    cid = commit_id(repo, uuid)
    root = load_commits(src, [cid])[cid][0].roots.get(inst.data_uuid)
    boxes = roi_region(src, inst, None if root is None else parse_object_id(root))
    if not boxes:
        raise InvalidInputError(f"--roi {name!r} is empty at version {uuid}: nothing to send")
    return boxes


def roi_instance(repo: Repo, name: str) -> Instance:
    """Return roi instance ``name`` of ``repo`` (a 400 naming it if there is none)."""
    inst = repo.instances.get(name)
    if inst is None or inst.typename != "roi":
        raise InvalidInputError(
            f"--roi {name!r}: repo {repo.root} has no roi instance of that name"
        )
    return inst


def roi_region(src: Peer, inst: Instance, root: ObjectId | None) -> tuple[Box3, ...]:
    """Return the voxel boxes of the ROI stored at tree ``root`` (``()``: empty or absent)."""
    spans = stored_spans(PeerRecords(src).tree, root) if root is not None else None
    if spans is None or not len(spans):
        return ()
    return roi_boxes(spans, roi_block_size(inst))


def transfer_version(
    src: Peer,
    dst: Peer,
    spec: str,
    *,
    data: Iterable[str] | None = None,
    box: Box3 | None = None,
    roi: str | None = None,
    flatten: bool = False,
    options: Options | None = None,
) -> Report:
    """Move a locked version (and its history unless ``flatten``) from ``src`` to ``dst``."""
    t0 = start_counters(src, dst)
    opts = options or Options()
    sel = _select(src, spec, data, box, roi, flatten)
    cids = [commit_id(sel.repo, u) for u in sel.nodes]
    name = repo_ref(sel.repo.root)
    refs, have = dst.negotiate([name, INCOMPLETE_REF], cids)
    dst_records = PeerRecords(dst)
    dst_ref = refs[name]
    dst_repo = None if dst_ref is None else dst_records.parse(dst_ref.value)
    merge_record(
        dst_repo, sel.repo, sel.nodes, sel.instances
    )  # NOTE: conflicts fail before any send
    watch = incomplete_ids(refs[INCOMPLETE_REF])
    todo = [u for u, h in zip(sel.nodes, have, strict=True) if not h]
    report = Report(
        src.url, dst.url, versions=todo, skipped=[u for u in sel.nodes if u not in todo]
    )
    commits = load_commits(src, [commit_id(sel.repo, u) for u in todo])
    roots = _roots(sel, todo, commits)
    walker = Walker(src, dst, opts, watch=watch)
    try:
        result = walker.run((r, sel.filter(u, d)[0]) for u in todo for d, r in roots[u].items())
    except NotFoundError as exc:
        if _partial.PROPERTY in sel.repo.properties:
            raise InvalidInputError(
                f"{exc}: {src.url} holds only part of these versions (pulled with --box) and "
                f"{dst.url} lacks the rest; send a box the source holds, or pull the rest first"
            ) from exc
        raise
    walker.sender.put([(cid, stored) for cid, (_, stored) in commits.items()])
    add, done = _commit_completeness(sel, todo, roots, commits, result)
    if add or (done & watch) or result.incomplete or (result.complete & watch):
        update_incomplete(dst, add | result.incomplete, done | result.complete)
    state = {(u, d): _arrived(u, d, roots, result, sel) for u in sel.nodes for d in sel.data}
    report.refs_moved = _move_refs(dst, sel, state, refs[name])
    held = {b: None for r in state.values() if r is not None for b in r}
    report.partial = tuple(held) or None
    fill_report(report, walker, len(commits), dst, src, t0)
    return report


def _roots(
    sel: _Selection, todo: list[str], commits: dict[ObjectId, tuple[Commit, bytes]]
) -> dict[str, dict[str, ObjectId]]:
    out: dict[str, dict[str, ObjectId]] = {}
    for u in todo:
        commit = commits[commit_id(sel.repo, u)][0]
        out[u] = {d: parse_object_id(commit.roots[d]) for d in sel.data if d in commit.roots}
    return out


def _commit_completeness(
    sel: _Selection,
    todo: list[str],
    roots: dict[str, dict[str, ObjectId]],
    commits: dict[ObjectId, tuple[Commit, bytes]],
    result: WalkResult,
) -> tuple[set[ObjectId], set[ObjectId]]:
    """Return commits whose every live instance arrived whole, and those that did not."""
    live = {i.data_uuid for i in sel.repo.instances.values() if i.versioned}
    add: set[ObjectId] = set()
    done: set[ObjectId] = set()
    for u in todo:
        cid = commit_id(sel.repo, u)
        named = set(commits[cid][0].roots) & live
        whole = named <= set(roots[u]) and not any(
            r in result.incomplete for r in roots[u].values()
        )
        (done if whole else add).add(cid)
    return add, done


def _arrived(
    u: str, d: str, roots: dict[str, dict[str, ObjectId]], result: WalkResult, sel: _Selection
) -> Region:
    """Return the boxes instance ``d`` at ``u`` now holds on the receiver, None if complete."""
    if u not in roots:
        return None  # the receiver had this version complete
    root = roots[u].get(d)
    if root is None or root not in result.incomplete:
        return None
    return sel.filter(u, d)[1]


def _move_refs(
    dst: Peer, sel: _Selection, state: dict[tuple[str, str], Region], known: Ref | None
) -> bool:
    """UUID index entries first, then the repo record by compare-and-swap; True if anything moved.

    ``known`` is the record as negotiated: the first attempt trusts it (a stale one
    only costs a lost swap and a retry), so a no-op transfer adds no round trip.
    """
    records = PeerRecords(dst)
    name = repo_ref(sel.repo.root)
    for attempt in range(MAX_REF_ATTEMPTS):
        ref = known if attempt == 0 else dst.get_ref(name)
        before = None if ref is None else records.parse(ref.value)
        merged, new_nodes, new_insts = merge_record(before, sel.repo, sel.nodes, sel.instances)
        for u in sel.nodes:
            for inst in sel.instances:
                existed = u not in new_nodes and inst.data_uuid not in new_insts
                _partial.record_transfer(
                    merged, u, inst.data_uuid, state[(u, inst.data_uuid)], existed=existed
                )
        raw = records.encode(merged)
        if ref is not None and raw == ref.value:
            return False
        _index(dst, new_nodes, sel.repo.root)
        try:
            dst.cas_ref(name, None if ref is None else ref.token, raw)
            return True
        except ConflictError:
            continue
    raise ConflictError(
        f"repo {sel.repo.root} at {dst.url} kept changing; gave up moving its record"
    )


def _index(dst: Peer, uuids: Iterable[str], root: str) -> None:
    for u in sorted(uuids):
        try:
            dst.cas_ref(uuid_ref(u), None, root.encode())
        except ConflictError as exc:
            if exc.current is not None and exc.current != root.encode():
                raise ConflictError(
                    f"UUID {u} belongs to repo {exc.current.decode(errors='replace')} "
                    f"at {dst.url}, not {root}"
                ) from None


def start_counters(src: Peer, dst: Peer) -> tuple[float, int, int]:
    """Start time and counters, so a report counts only its own transfer."""
    return time.monotonic(), dst.stats.have_requests, _remote(src, dst).stats.requests


def _remote(src: Peer, dst: Peer) -> Peer:
    return dst if dst.url.startswith("http") or not src.url.startswith("http") else src


def fill_report(
    report: Report,
    walker: Walker,
    commits: int,
    dst: Peer,
    src: Peer,
    start: tuple[float, int, int],
) -> None:
    """Copy what a walk sent, and the round trips it took, into ``report``."""
    report.objects = walker.sender.objects
    report.bytes = walker.sender.bytes
    report.blobs = walker.result.blobs
    report.nodes = walker.result.nodes
    report.commits = commits
    report.have_requests = dst.stats.have_requests - start[1]
    report.requests = _remote(src, dst).stats.requests - start[2]
    report.seconds = time.monotonic() - start[0]
