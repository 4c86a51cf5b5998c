"""Proofreading edits in the library: merge, cleave, renumber, splits, against a plain model.

After every edit the store's supervoxel and body volumes equal the model's, and the
invariant checker (which recounts every block) finds nothing.  Merge and cleave must
not rewrite a voxel block: the block entries of the tree stay byte for byte and the
block encoder is never called.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _mutations import World, make_world, rle_body

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.invariants import check_dag
from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.errors import InvalidInputError, LockedError
from cas_dvid.trees.keys import prefix_range

WHO = ModInfo(user="alice", app="neu3")


def block_entries(w: World) -> list[tuple[bytes, bytes]]:
    root = w.labels.root(w.at, w.inst)
    return list(w.labels.tree.range(root, *prefix_range(K.LABEL_BLOCK_CLASS)))


def forbid_encoding(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(arrays: object) -> None:
        raise AssertionError("a voxel block was re-encoded")

    monkeypatch.setattr(w.labels.writer, "encode", refuse)


def two_bodies(w: World) -> tuple[int, int]:
    bodies = sorted(w.model.bodies())
    return bodies[0], bodies[1]


def records(w: World) -> list[dict[str, object]]:
    return [json.loads(r) for r in w.labels.log.own(w.at, w.inst)]


def test_merge_changes_mapping_and_index_only(monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world()
    before = block_entries(w)
    forbid_encoding(w, monkeypatch)
    bodies = sorted(w.model.bodies())
    target, others = bodies[0], bodies[1:4]
    mid = w.labels.mutations.merge(w.at, w.inst, target, others, WHO)
    w.model.merge(target, others)
    assert block_entries(w) == before
    w.check()
    s = w.labels.index.lastmod(w.at, w.inst, target)
    assert s is not None and (s.mutid, s.user, s.app) == (mid, "alice", "neu3")
    (rec,) = records(w)
    assert rec["Action"] == "merge-complete" and rec["MutationID"] == mid
    assert rec["Target"] == target and rec["Labels"] == sorted(others)
    assert rec["User"] == "alice" and rec["UUID"] == w.at.uuid


def test_merge_of_merged_bodies_and_chains() -> None:
    w = make_world()
    a, b, c, d = sorted(w.model.bodies())[:4]
    for target, other in ((a, b), (c, d), (a, c)):
        w.labels.mutations.merge(w.at, w.inst, target, [other], WHO)
        w.model.merge(target, [other])
        w.check()
    assert w.labels.index.supervoxels(w.at, w.inst, a) == sorted([a, b, c, d])


def test_cleave_changes_mapping_and_index_only(monkeypatch: pytest.MonkeyPatch) -> None:
    w = make_world()
    a, b = two_bodies(w)
    w.labels.mutations.merge(w.at, w.inst, a, [b], WHO)
    w.model.merge(a, [b])
    before = block_entries(w)
    forbid_encoding(w, monkeypatch)
    new, mid = w.labels.mutations.cleave(w.at, w.inst, a, [b], WHO)
    w.model.cleave(a, [b], new)
    assert block_entries(w) == before
    w.check()
    assert new > max(w.model.bodies().keys() - {new})
    rec = records(w)[-1]
    assert rec["Action"] == "cleave-complete" and rec["CleavedLabel"] == new
    assert rec["CleavedSize"] == int((w.model.vol == b).sum())
    assert rec["RemainSize"] == int((w.model.vol == a).sum())
    assert mid == rec["MutationID"] and mid > records(w)[0]["MutationID"]  # type: ignore[operator]


def test_renumber_moves_the_whole_body() -> None:
    w = make_world()
    a, b = two_bodies(w)
    w.labels.mutations.merge(w.at, w.inst, a, [b], WHO)
    w.model.merge(a, [b])
    new = 2**50 + 3
    w.labels.mutations.renumber(w.at, w.inst, new, a, WHO)
    w.model.renumber(new, a)
    w.check()
    assert w.labels.index.body(w.labels.root(w.at, w.inst), a) is None
    assert (w.labels.max_label(w.labels.root(w.at, w.inst)) or 0) >= new


def test_split_supervoxel_rewrites_only_its_blocks() -> None:
    w = make_world(downres=1)
    sv = max(w.model.bodies(), key=lambda s: int((w.model.vol == s).sum()))
    zs, ys, xs = np.nonzero(w.model.vol == sv)
    mask = np.zeros(w.model.vol.shape, bool)
    mask[:, :, : int(np.median(xs))] = True
    touched = {
        (int(x) // 16, int(y) // 16, int(z) // 16) for x, y, z in zip(xs, ys, zs, strict=True)
    }
    before = dict(block_entries(w))
    out = w.labels.splits.split_supervoxel(w.at, w.inst, sv, rle_body(mask), WHO)
    w.model.split_supervoxel(sv, mask, out.split, out.remain)
    w.check()
    after = dict(block_entries(w))
    changed = {k for k in after if before.get(k) != after[k]}
    scale0 = {(x, y, z) for s, z, y, x in (_coord(k) for k in changed) if s == 0}
    assert scale0 <= touched
    assert all(s <= 1 for s, *_ in (_coord(k) for k in changed))
    low = w.read(supervoxels=True, scale=1)
    assert not (low == np.uint64(sv)).any()
    assert (low == np.uint64(out.split)).any() and (low == np.uint64(out.remain)).any()
    rec = records(w)[-1]
    assert rec["SplitSupervoxel"] == out.split and rec["RemainSupervoxel"] == out.remain
    assert rec["SplitSize"] == int((w.model.vol == out.split).sum())
    assert w.labels.index.mapping(w.at, w.inst, [sv], nolookup=False) == [0]


def _coord(key: bytes) -> tuple[int, int, int, int]:
    from cas_dvid.trees.keys import parse_block_key

    return parse_block_key(key[1:])


def test_split_supervoxel_with_given_ids_then_merge_and_cleave() -> None:
    w = make_world()
    a, b = two_bodies(w)
    w.labels.mutations.merge(w.at, w.inst, a, [b], WHO)
    w.model.merge(a, [b])
    mask = np.zeros(w.model.vol.shape, bool)
    mask[: w.model.vol.shape[0] // 2] = True
    if not ((w.model.vol == b) & mask).any() or not ((w.model.vol == b) & ~mask).any():
        pytest.skip("the seed put body b on one side")
    out = w.labels.splits.split_supervoxel(
        w.at, w.inst, b, rle_body(mask), WHO, split=2**45, remain=2**45 + 1
    )
    assert (out.split, out.remain) == (2**45, 2**45 + 1)
    w.model.split_supervoxel(b, mask, out.split, out.remain)
    w.check()
    new, _ = w.labels.mutations.cleave(w.at, w.inst, a, [out.split], WHO)
    w.model.cleave(a, [out.split], new)
    w.check()


def test_split_body_moves_whole_and_cuts_partial_supervoxels() -> None:
    w = make_world()
    bodies = sorted(w.model.bodies())
    target = bodies[0]
    w.labels.mutations.merge(w.at, w.inst, target, bodies[1:6], WHO)
    w.model.merge(target, bodies[1:6])
    body_vox = w.model.body_volume() == np.uint64(target)
    mask = np.zeros(w.model.vol.shape, bool)
    mask[:, :, :20] = True
    mask &= body_vox
    out = w.labels.splits.split_body(w.at, w.inst, target, rle_body(mask), WHO)
    rec = records(w)[-1]
    svsplits = rec["SVSplits"]
    assert isinstance(svsplits, dict)
    for old, pair in svsplits.items():
        sv = int(old)
        w.model.split_supervoxel(sv, mask, pair["Split"], pair["Remain"])
        w.model.mapping[pair["Split"]] = out.split
    for sv in np.unique(w.model.vol[mask]).tolist():
        if w.model.body_of(sv) == target:
            w.model.mapping[sv] = out.split
    w.check()
    moved = w.model.body_volume() == np.uint64(out.split)
    assert np.array_equal(moved, mask)
    for sv, body in w.model.mapping.items():
        assert body == 0 or (w.model.vol == sv).any(), "no size-0 supervoxel is mapped"


@pytest.mark.parametrize(
    "edit",
    [
        lambda w, a, b: w.labels.mutations.merge(w.at, w.inst, a, [a], WHO),
        lambda w, a, b: w.labels.mutations.merge(w.at, w.inst, a, [2**60], WHO),
        lambda w, a, b: w.labels.mutations.merge(w.at, w.inst, 2**60, [a], WHO),
        lambda w, a, b: w.labels.mutations.merge(w.at, w.inst, a, [], WHO),
        lambda w, a, b: w.labels.mutations.cleave(w.at, w.inst, a, [a], WHO),
        lambda w, a, b: w.labels.mutations.cleave(w.at, w.inst, a, [b], WHO),
        lambda w, a, b: w.labels.mutations.cleave(w.at, w.inst, 0, [b], WHO),
        lambda w, a, b: w.labels.mutations.renumber(w.at, w.inst, b, a, WHO),
        lambda w, a, b: w.labels.mutations.renumber(w.at, w.inst, 2**50, 2**51, WHO),
        lambda w, a, b: w.labels.splits.split_supervoxel(
            w.at, w.inst, a, rle_body(np.zeros((4, 4, 4), bool)), WHO
        ),
        lambda w, a, b: w.labels.splits.split_supervoxel(
            w.at, w.inst, a, rle_body(np.ones((64, 64, 64), bool)), WHO
        ),
        lambda w, a, b: w.labels.splits.split_supervoxel(w.at, w.inst, a, b"\x01" * 20, WHO),
    ],
)
def test_refused_edits_change_nothing(edit: object) -> None:
    w = make_world(seeds=6)
    a, b = two_bodies(w)
    root = w.labels.root(w.at, w.inst)
    with pytest.raises(InvalidInputError):
        edit(w, a, b)  # type: ignore[operator]
    assert w.labels.root(w.at, w.inst) == root
    w.check()


def test_locked_versions_refuse_edits_and_children_continue_the_ids() -> None:
    w = make_world()
    a, b, c = sorted(w.model.bodies())[:3]
    first = w.labels.mutations.merge(w.at, w.inst, a, [b], WHO)
    w.model.merge(a, [b])
    w.versions.commit(w.at.uuid, "proofread")
    w.refresh()
    with pytest.raises(LockedError):
        w.labels.mutations.merge(w.at, w.inst, a, [c], WHO)
    child = w.versions.new_child(w.at.uuid, note="next")
    parent = w.at
    w.at = w.versions.resolve(child)
    assert w.labels.log.own(w.at, w.inst) == []
    second = w.labels.mutations.merge(w.at, w.inst, a, [c], WHO)
    w.model.merge(a, [c])
    assert second > first
    w.check()
    assert [r["MutationID"] for r in records(w)] == [second]
    since = [json.loads(r)["MutationID"] for r in w.labels.log.since(w.at, w.inst, 0)]
    assert since == [first, second]
    seq = [json.loads(r)["MutationID"] for r in w.labels.log.sequence(parent, w.at, w.inst)]
    assert seq == [first, second]
    assert check_dag(w.labels, w.at, w.inst) == []
    hist = [json.loads(r)["Action"] for r in w.labels.log.history(parent, w.at, w.inst, a)]
    assert hist == ["merge-complete", "merge-complete"]


def test_checker_finds_a_broken_index() -> None:
    w = make_world(seeds=6)
    a, b = two_bodies(w)
    # a mapping entry written behind the index's back: b's voxels now belong to a
    w.versions.write(w.at, w.inst, {K.mapping_key(b): K.encode_label_value(a)}, "test")
    problems = w.problems()
    assert any(f"lists supervoxel {b} of body {a}" in p for p in problems), problems
    w.versions.write(w.at, w.inst, {K.mapping_key(b): None, K.body_key(a): None}, "test")
    assert any("summary of body" in p for p in w.problems())


def test_cas_dvid_verify_runs_the_label_invariants(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    from cas_dvid.backends import open_backend
    from cas_dvid.objects import ObjectStore
    from cas_dvid.versions.stores import init_store

    path = Path(str(tmp_path)) / "store"
    init_store(f"file://{path}")
    w = make_world(store=ObjectStore(open_backend(f"file://{path}")), seeds=6)
    a, b = two_bodies(w)
    w.labels.mutations.merge(w.at, w.inst, a, [b], WHO)
    cmd = [sys.executable, "-m", "cas_dvid.cli", "verify", w.at.uuid, "--store", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "label invariants: OK" in done.stdout
    w.versions.write(w.at, w.inst, {K.mapping_key(b): None}, "test")  # b leaves a's index behind
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 1
    assert f"lists supervoxel {b} of body {b}" in done.stdout


def test_concurrent_edits_of_one_body_are_serialised() -> None:
    import threading

    w = make_world(seeds=24)
    bodies = sorted(w.model.bodies())
    target, rest = bodies[0], bodies[1:13]
    groups = [rest[0::2], rest[1::2]]
    mids: list[int] = []

    def editor(group: list[int]) -> None:
        for other in group:
            mids.append(w.labels.mutations.merge(w.at, w.inst, target, [other], WHO))

    threads = [threading.Thread(target=editor, args=(g,)) for g in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.model.merge(target, rest)
    w.check()
    assert len(set(mids)) == len(rest)
    assert [r["MutationID"] for r in records(w)] == sorted(mids)
