"""Merging proofreading branches: independent edits combine, edits of one body conflict."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from _mutations import World, make_world, rle_body

from cas_dvid.datatypes.labelmap.invariants import check_dag
from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.versions.dag import MergeConflictError

WHO = ModInfo(user="branches")


def branches(w: World) -> tuple[World, World]:
    """Lock the world's version and return a world on each of two child branches."""
    w.versions.commit(w.at.uuid, "base")
    out = []
    for name in ("left", "right"):
        child = w.versions.new_child(w.at.uuid, branch=name)
        other = copy.copy(w)
        other.at = w.versions.resolve(child)
        other.model = copy.deepcopy(w.model)
        out.append(other)
    return out[0], out[1]


def merged(w: World, left: World, right: World) -> World:
    for side in (left, right):
        w.versions.commit(side.at.uuid, "done")
    child = w.versions.merge(left.at.uuid, [left.at.uuid, right.at.uuid], "merge")
    out = copy.copy(w)
    out.at = w.versions.resolve(child)
    return out


def test_independent_edits_on_two_branches_combine() -> None:
    w = make_world(seeds=16)
    bodies = sorted(w.model.bodies())
    left, right = branches(w)
    left.labels.mutations.merge(left.at, left.inst, bodies[0], bodies[1:3], WHO)
    left.model.merge(bodies[0], bodies[1:3])
    right.labels.mutations.merge(right.at, right.inst, bodies[5], bodies[6:9], WHO)
    right.model.merge(bodies[5], bodies[6:9])
    new, _ = right.labels.mutations.cleave(right.at, right.inst, bodies[5], [bodies[7]], WHO)
    right.model.cleave(bodies[5], [bodies[7]], new)
    left.check()
    right.check()
    both = merged(w, left, right)
    both.model = copy.deepcopy(w.model)
    both.model.mapping = {**left.model.mapping, **right.model.mapping}
    both.check()
    assert check_dag(both.labels, both.at, both.inst) == []
    log = both.labels.log.since(both.at, both.inst, 0)
    assert len(log) == 3  # both branches' records, each once
    more = both.labels.mutations.merge(both.at, both.inst, bodies[0], [bodies[5]], WHO)
    assert more > max(left.labels.log.floor(both.at, both.inst), 0)


def test_edits_of_one_body_conflict_with_both_mutation_ids() -> None:
    w = make_world(seeds=16)
    bodies = sorted(w.model.bodies())
    left, right = branches(w)
    a = left.labels.mutations.merge(left.at, left.inst, bodies[0], [bodies[1]], WHO)
    b = right.labels.mutations.merge(right.at, right.inst, bodies[0], [bodies[2]], WHO)
    with pytest.raises(MergeConflictError) as err:
        merged(w, left, right)
    text = str(err.value)
    assert f"body {bodies[0]} (ours: mutation {a}, theirs: mutation {b})" in text


def test_split_on_one_branch_and_merge_on_the_other() -> None:
    w = make_world(seeds=16)
    bodies = sorted(w.model.bodies())
    left, right = branches(w)
    sv = bodies[3]
    is_sv = left.model.vol == np.uint64(sv)
    zs = np.nonzero(is_sv)[0]
    mask = np.zeros(is_sv.shape, bool)
    mask[: int(np.median(zs))] = True
    out = left.labels.splits.split_supervoxel(left.at, left.inst, sv, rle_body(mask & is_sv), WHO)
    left.model.split_supervoxel(sv, mask, out.split, out.remain)
    right.labels.mutations.merge(right.at, right.inst, bodies[10], [bodies[11]], WHO)
    right.model.merge(bodies[10], [bodies[11]])
    both = merged(w, left, right)
    both.model = copy.deepcopy(left.model)
    both.model.mapping.update(right.model.mapping)
    both.check()
