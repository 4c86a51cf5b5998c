"""Versioned keyvalue against a plain-dict model: writes, commit, newversion, branch, merge.

A hypothesis state machine drives one repo with a versioned keyvalue instance ``kv``
and, in half the runs, an unversioned one ``flat``.  The model is
``{node: {key: value}}`` plus each node's parents, children, branch and lock, and
after every step every node is read back in every way the datatype offers (keys,
get, get_many, items, inclusive key ranges, diff to each parent) and compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from cas_dvid.backends import MemoryBackend
from cas_dvid.datatypes.base import decode_values, encode_value
from cas_dvid.datatypes import default_registry
from cas_dvid.datatypes.keyvalue import KeyValueStore, tree_key, user_key
from cas_dvid.errors import InvalidInputError, LockedError, NotFoundError
from cas_dvid.objects import ObjectId, ObjectStore
from cas_dvid.versions import VersionService

# Keys from a tiny alphabet (one of them two bytes in UTF-8) so writes collide often.
KEYS = st.text(alphabet="abé", min_size=1, max_size=3)
# Probed on every node whether present or not.
PROBES = ["a", "b", "é", "aa", "ab", "bé", "éa", "aaa", "ééé", "c", "zz"]
# Inclusive [first, last] ranges checked on every node (including an inverted one).
RANGES = [("a", "b"), ("aa", "ab"), ("b", "éé"), ("é", "é"), ("b", "a"), ("a", "aaa")]

SMALL = st.one_of(
    st.sampled_from([b"", b"x", b"y", b"\x00"]),  # a small pool: equal changes on both sides
    st.binary(max_size=16),
)
# Values over 1023 bytes are stored as blob objects; a few byte/size pairs so they repeat.
BIG = st.tuples(st.sampled_from([0, 7, 255]), st.sampled_from([1023, 1024, 1025, 3000])).map(
    lambda t: bytes([t[0]]) * t[1]
)
VALUES = st.one_of(SMALL, BIG)
OPS = st.dictionaries(KEYS, st.one_of(st.none(), VALUES), min_size=1, max_size=6)  # None: delete
# Edits on both sides of a fork, on fewer keys so that they overlap (and conflict) often.
FORK_OPS = st.dictionaries(
    st.sampled_from(["a", "b", "é", "ab"]), st.one_of(st.none(), VALUES), min_size=1, max_size=3
)


def _sorted(keys) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def merge3(base: dict, ours: dict, theirs: dict) -> tuple[dict, list[str]]:
    """Ours plus the changes theirs made since base; keys both changed differently conflict."""
    out = dict(ours)
    conflicts = []
    for k in _sorted(set(base) | set(ours) | set(theirs)):
        b, o, t = base.get(k), ours.get(k), theirs.get(k)
        if t == b:
            continue
        if o == b:
            if t is None:
                out.pop(k, None)
            else:
                out[k] = t
        elif o != t:
            conflicts.append(k)
    return out, conflicts


def dict_diff(a: dict, b: dict) -> list[tuple[str, bytes | None, bytes | None]]:
    return [(k, a.get(k), b.get(k)) for k in _sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


@dataclass
class MNode:
    uuid: str
    parents: list[int]
    branch: str
    content: dict[str, bytes]
    children: list[int] = field(default_factory=list)
    locked: bool = False
    cid: str | None = None
    snapshot: dict[str, bytes] | None = None
    root: ObjectId | None = None  # kv tree root when committed


class VersionsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.svc = VersionService(
            ObjectStore(MemoryBackend()), show_key=default_registry().show_key
        )
        self.kv = KeyValueStore.on(self.svc)
        self.root = self.svc.create_repo("stateful")
        self.nodes: list[MNode] = [MNode(self.root, [], "", {})]
        self.flat: dict[str, bytes] | None = None
        self.branch_count = 0

    @initialize(with_flat=st.booleans())
    def make_instances(self, with_flat: bool) -> None:
        self.svc.new_instance(self.root, "kv", "keyvalue")
        if with_flat:
            self.svc.new_instance(self.root, "flat", "keyvalue", versioned=False)
            self.flat = {}

    # -- helpers ------------------------------------------------------------------

    def _any(self, data, label: str) -> int:
        return data.draw(st.integers(0, len(self.nodes) - 1), label=label)

    def _prefer(self, data, good, label: str) -> int:
        """Usually a node for which ``good(node)`` holds (if any), else any node."""
        cands = [i for i, n in enumerate(self.nodes) if good(n)]
        if cands and data.draw(st.integers(0, 3), label=f"prefer {label}"):
            return data.draw(st.sampled_from(cands), label=label)
        return self._any(data, label)

    def _locked(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if n.locked]

    def _open_for_child(self, n: MNode) -> bool:
        return n.locked and not any(self.nodes[c].branch == n.branch for c in n.children)

    def _write_target(self, data) -> tuple[int, str]:
        """A node (usually an unlocked one) and the instance to write."""
        i = self._prefer(data, lambda n: not n.locked, "node")
        flat = self.flat is not None and data.draw(st.booleans(), label="flat")
        return i, "flat" if flat else "kv"

    def _write(self, i: int, name: str, do, change) -> None:
        node = self.nodes[i]
        at = self.svc.resolve(node.uuid)
        inst = self.svc.instance(at, name)
        if name == "kv" and node.locked:
            event("write: refused at a locked node")
            with pytest.raises(LockedError, match="locked node"):
                do(at, inst)
            return  # the invariants check that nothing changed
        event(f"write: {name} at {'locked' if node.locked else 'unlocked'} node")
        do(at, inst)
        change(self.flat if name == "flat" else node.content)

    def _add(self, uuid: str, parents: list[int], branch: str, content: dict) -> None:
        idx = len(self.nodes)
        self.nodes.append(MNode(uuid, parents, branch, content))
        for p in parents:
            self.nodes[p].children.append(idx)

    def _base(self, i: int, j: int) -> int:
        """Merge base as git picks it: a common ancestor that is no ancestor of another
        common ancestor; among several, the newest node."""

        def ancestors(u: int) -> dict[int, int]:
            dist, frontier = {u: 0}, [u]
            while frontier:
                nxt = []
                for x in frontier:
                    for p in self.nodes[x].parents:
                        if p not in dist:
                            dist[p] = dist[x] + 1
                            nxt.append(p)
                frontier = nxt
            return dist

        a, b = ancestors(i), ancestors(j)
        common = {u for u in a if u in b}
        lowest = [u for u in common if not any(u in ancestors(c) for c in common if c != u)]
        return max(lowest)

    # -- writes -------------------------------------------------------------------

    @rule(data=st.data(), key=KEYS, value=VALUES)
    def put(self, data, key: str, value: bytes) -> None:
        i, name = self._write_target(data)
        self._write(
            i,
            name,
            lambda at, inst: self.kv.put_many(at, inst, {key: value}, "POST"),
            lambda m: m.__setitem__(key, value),
        )

    @rule(data=st.data(), key=KEYS)
    def delete(self, data, key: str) -> None:
        i, name = self._write_target(data)
        self._write(
            i,
            name,
            lambda at, inst: self.kv.delete(at, inst, key, "DELETE"),
            lambda m: m.pop(key, None),
        )

    @rule(data=st.data(), items=st.dictionaries(KEYS, VALUES, max_size=6))
    def put_many(self, data, items: dict[str, bytes]) -> None:
        i, name = self._write_target(data)
        self._write(
            i,
            name,
            lambda at, inst: self.kv.put_many(at, inst, items, "POST"),
            lambda m: m.update(items),
        )

    @rule(data=st.data(), ops=OPS)
    def mixed_batch(self, data, ops: dict[str, bytes | None]) -> None:
        """Puts and deletes in one service write (one tree apply, one head swap)."""
        self._apply_ops(*self._write_target(data), ops)

    def _apply_ops(self, i: int, name: str, ops: dict[str, bytes | None]) -> None:
        store = self.svc.store
        tree_ops = {
            tree_key(k): None if v is None else encode_value(store, v)[0] for k, v in ops.items()
        }

        def change(m: dict) -> None:
            for k, v in ops.items():
                if v is None:
                    m.pop(k, None)
                else:
                    m[k] = v

        self._write(i, name, lambda at, inst: self.svc.write(at, inst, tree_ops, "POST"), change)

    # -- DAG ----------------------------------------------------------------------

    @rule(data=st.data())
    def commit(self, data) -> None:
        self._commit(self._prefer(data, lambda n: not n.locked, "node"))

    def _commit(self, i: int) -> None:
        node = self.nodes[i]
        if node.locked:
            with pytest.raises(LockedError):
                self.svc.commit(node.uuid)
            return
        cid = self.svc.commit(node.uuid, note="c")
        at = self.svc.resolve(node.uuid)
        assert at.node.locked and at.node.commit == cid
        inst = self.svc.instance(at, "kv")
        node.locked, node.cid, node.snapshot = True, cid, dict(node.content)
        node.root = self.svc.root_at(at, inst)
        c = self.svc.commit_of(cid)
        assert c.uuid == node.uuid and c.repo == self.root and c.branch == node.branch
        assert c.parents == [self.nodes[p].cid for p in node.parents]
        assert set(c.instances) <= {inst.data_uuid}  # the unversioned instance is not in commits
        if self.flat is not None:
            assert self.svc.instance(at, "flat").data_uuid not in c.roots

    @rule(data=st.data())
    def newversion(self, data) -> None:
        i = self._prefer(data, self._open_for_child, "parent")
        p = self.nodes[i]
        taken = any(self.nodes[c].branch == p.branch for c in p.children)
        event(f"newversion: {'ok' if p.locked and not taken else 'refused'}")
        if not p.locked or taken:
            with pytest.raises(InvalidInputError):
                self.svc.new_child(p.uuid, note="nv")
            return
        child = self.svc.new_child(p.uuid, note="nv")
        self._add(child, [i], p.branch, dict(p.content))

    @rule(data=st.data())
    def branch(self, data) -> None:
        i = self._prefer(data, lambda n: n.locked, "parent")
        p = self.nodes[i]
        self.branch_count += 1
        name = f"br{self.branch_count}"
        if not p.locked:
            with pytest.raises(InvalidInputError):
                self.svc.new_child(p.uuid, branch=name)
            return
        child = self.svc.new_child(p.uuid, branch=name, note="br")
        self._add(child, [i], name, dict(p.content))

    @precondition(lambda self: any(n.locked for n in self.nodes))
    @rule(data=st.data())
    def branch_taken_name(self, data) -> None:
        i = data.draw(st.sampled_from(self._locked()), label="parent")
        # Names used elsewhere, plus master; the parent's own branch is left out (a branch
        # request naming it acts like newversion).
        own = self.nodes[i].branch
        names = sorted(({n.branch for n in self.nodes} - {own}) | {"master", ""})
        name = data.draw(st.sampled_from(names), label="name")
        with pytest.raises(InvalidInputError):
            self.svc.new_child(self.nodes[i].uuid, branch=name)

    @precondition(lambda self: len(self.nodes) >= 2)
    @rule(data=st.data())
    def merge(self, data) -> None:
        locked = self._locked()
        if len(locked) >= 2 and data.draw(st.integers(0, 3), label="prefer locked"):
            i = data.draw(st.sampled_from(locked), label="ours")
            j = data.draw(st.sampled_from([x for x in locked if x != i]), label="theirs")
        else:
            i = self._any(data, "ours")
            others = [x for x in range(len(self.nodes)) if x != i]
            j = data.draw(st.sampled_from(others), label="theirs")
        self._merge(i, j)

    @precondition(lambda self: any(n.locked for n in self.nodes))
    @rule(data=st.data(), left=FORK_OPS, right=FORK_OPS, how=st.sampled_from(["nv", "branch"]))
    def fork_edit_merge(self, data, left, right, how: str) -> None:
        """Two children of one locked node, edited and committed, then merged.

        Their common ancestor is the fork point, so both sides' edits count; edits
        to the same key collide often, so this yields clean merges and conflicts.
        """
        fork = data.draw(st.sampled_from(self._locked()), label="fork")
        kids = []
        for side, ops in (("left", left), ("right", right)):
            p = self.nodes[fork]
            if side == "left" and how == "nv" and self._open_for_child(p):
                child = self.svc.new_child(p.uuid)
                self._add(child, [fork], p.branch, dict(p.content))
            else:
                self.branch_count += 1
                name = f"br{self.branch_count}"
                child = self.svc.new_child(p.uuid, branch=name)
                self._add(child, [fork], name, dict(p.content))
            kid = len(self.nodes) - 1
            self._apply_ops(kid, "kv", ops)
            self._commit(kid)
            kids.append(kid)
        self._merge(*kids)

    def _merge(self, i: int, j: int) -> None:
        a, b = self.nodes[i], self.nodes[j]
        if not (a.locked and b.locked):
            with pytest.raises(InvalidInputError):
                self.svc.merge(self.root, [a.uuid, b.uuid])
            return
        base = self._base(i, j)
        merged, conflicts = merge3(self.nodes[base].content, a.content, b.content)
        kind = "conflict" if conflicts else "clean"
        event(f"merge: {kind}, base is {'a parent' if base in (i, j) else 'older'}")
        if conflicts:
            with pytest.raises(InvalidInputError, match="conflicting keys") as exc:
                self.svc.merge(self.root, [a.uuid, b.uuid], note="m")
            msg = str(exc.value)
            assert f"merge has {len(conflicts)} conflicting keys" in msg, (msg, conflicts)
            for k in conflicts:
                assert f"kv:{k}" in msg
            return
        child = self.svc.merge(self.root, [a.uuid, b.uuid], note="m")
        self._add(child, [i, j], "", merged)

    @rule(data=st.data(), first=KEYS, last=KEYS)
    def check_range(self, data, first: str, last: str) -> None:
        node = self.nodes[self._any(data, "node")]
        at = self.svc.resolve(node.uuid)
        for name, model in self._instances(node):
            got = self.kv.keys(at, self.svc.instance(at, name), first, last)
            assert got == [k for k in _sorted(model) if first <= k <= last]

    # -- invariants ---------------------------------------------------------------

    def _instances(self, node: MNode) -> list[tuple[str, dict[str, bytes]]]:
        out = [("kv", node.content)]
        if self.flat is not None:
            out.append(("flat", self.flat))
        return out

    def _check_content(self, at, name: str, expected: dict[str, bytes]) -> None:
        inst = self.svc.instance(at, name)
        keys = _sorted(expected)
        where = (name, at.uuid)
        assert self.kv.keys(at, inst) == keys, where
        pairs = [(k, expected[k]) for k in keys]
        assert list(self.kv.items(at, inst)) == pairs, where
        assert list(self.kv.items(at, inst, batch=2)) == pairs, where
        probe = keys + PROBES
        assert self.kv.get_many(at, inst, probe) == expected, where
        for k in probe:
            assert self.kv.get(at, inst, k) == expected.get(k), (where, k)
        for first, last in RANGES:
            inside = [k for k in keys if first <= k <= last]
            assert self.kv.keys(at, inst, first, last) == inside, (where, first, last)
            got = list(self.kv.items(at, inst, first, last))
            assert got == [(k, expected[k]) for k in inside], (where, first, last)

    def _decode(self, value: bytes) -> bytes:
        return decode_values(self.svc.store, [value])[0]

    def _diff(self, a, b, name: str) -> list[tuple[str, bytes | None, bytes | None]]:
        out = []
        for k, old, new in self.svc.diff(a, b, self.svc.instance(a, name)):
            o, n = (None if v is None else self._decode(v) for v in (old, new))
            out.append((user_key(k), o, n))
        return out

    @invariant()
    def dag_matches_model(self) -> None:
        repo = self.svc.load_repo(self.root)
        assert set(repo.nodes) == {n.uuid for n in self.nodes}
        for idx, n in enumerate(self.nodes):
            rn = repo.nodes[n.uuid]
            assert rn.version_id == idx + 1
            assert rn.parents == [self.nodes[p].uuid for p in n.parents]
            assert sorted(rn.children) == sorted(self.nodes[c].uuid for c in n.children)
            assert rn.branch == n.branch
            assert rn.locked == n.locked
            assert rn.commit == n.cid
        cids = [n.cid for n in self.nodes if n.cid is not None]
        assert len(set(cids)) == len(cids)

    @invariant()
    def branch_leaves_resolve(self) -> None:
        for name in {n.branch for n in self.nodes}:
            nodes = self.nodes
            on = [i for i, n in enumerate(nodes) if n.branch == name]
            leaves = [i for i in on if all(nodes[c].branch != name for c in nodes[i].children)]
            leaf = self.nodes[max(leaves)].uuid
            assert self.svc.resolve(f"{self.root}:{name or 'master'}").uuid == leaf
            chain = self.svc.branch_versions(self.root, name or "master")
            assert chain[0] == leaf and chain[-1] == self.root

    @invariant()
    def content_matches_model(self) -> None:
        roots: dict[frozenset, ObjectId] = {}
        for n in self.nodes:
            at = self.svc.resolve(n.uuid)
            for name, model in self._instances(n):
                self._check_content(at, name, model)
            root = self.svc.root_at(at, self.svc.instance(at, "kv"))
            if n.locked:
                assert n.content == n.snapshot
                assert root == n.root, "a locked node's tree root moved"
            # History independence: equal content, equal root, however it was reached.
            assert roots.setdefault(frozenset(n.content.items()), root) == root, n.uuid
            for p in n.parents:
                pat = self.svc.resolve(self.nodes[p].uuid)
                assert self._diff(pat, at, "kv") == dict_diff(self.nodes[p].content, n.content)
                if self.flat is not None:
                    assert self._diff(pat, at, "flat") == []


VersionsMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestVersionsStateful = VersionsMachine.TestCase


# -- plain tests ------------------------------------------------------------------------


def _svc() -> tuple[VersionService, KeyValueStore]:
    svc = VersionService(ObjectStore(MemoryBackend()))
    return svc, KeyValueStore.on(svc)


def test_uuid_resolution() -> None:
    svc, _ = _svc()
    root = "ab" + "0" * 30
    c1 = "ab" + "1" * 30
    c2 = "ac" + "2" * 30
    svc.create_repo("r", root=root)
    svc.commit(root)
    assert svc.new_child(root, uuid=c1) == c1
    svc.commit(c1)
    assert svc.new_child(c1, uuid=c2) == c2
    br = svc.new_child(root, branch="side", uuid="cd" + "3" * 30)

    assert svc.resolve(root).uuid == root
    assert svc.resolve("ab0").uuid == root  # unique prefix
    assert svc.resolve("ab1").uuid == c1
    assert svc.resolve("ac").uuid == c2
    assert svc.resolve(f"  {c2}  ").uuid == c2
    with pytest.raises(InvalidInputError, match="more than one UUID matches"):
        svc.resolve("ab")
    with pytest.raises(InvalidInputError, match="more than one UUID matches"):
        svc.resolve("a:master")  # ambiguity is checked before the branch is looked at
    with pytest.raises(NotFoundError, match="could not find UUID"):
        svc.resolve("ff")
    with pytest.raises(NotFoundError, match="could not find UUID"):
        svc.resolve("f" * 32)
    with pytest.raises(InvalidInputError):
        svc.resolve("")

    # Branch leaves, from any node of the repo or with no UUID in a one-repo store.
    assert svc.resolve(f"{root}:master").uuid == c2
    assert svc.resolve(f"{br}:master").uuid == c2
    assert svc.resolve(":master").uuid == c2
    assert svc.resolve(":side").uuid == br
    assert svc.resolve("cd:side").uuid == br
    with pytest.raises(InvalidInputError):
        svc.resolve(":nosuch")

    # ~N walks back along first parents.
    assert svc.resolve(f"{c2}~1").uuid == c1
    assert svc.resolve("ac~2").uuid == root
    assert svc.resolve(f"{c2}~0").uuid == c2
    assert svc.resolve(":master~1").uuid == c1
    assert svc.resolve(f"{root}:master~2").uuid == root
    assert svc.resolve(":side~1").uuid == root
    with pytest.raises(InvalidInputError):
        svc.resolve(f"{c2}~3")
    with pytest.raises(InvalidInputError):
        svc.resolve(f"{c2}~x")

    # With two repos, ':branch' is ambiguous.
    svc.create_repo("other")
    with pytest.raises(InvalidInputError):
        svc.resolve(":master")
    assert svc.resolve(f"{root}:master").uuid == c2


def test_equal_content_commits_differ_but_share_tree_roots() -> None:
    svc, kv = _svc()
    root = svc.create_repo("r")
    svc.new_instance(root, "kv", "keyvalue")
    at = svc.resolve(root)
    inst = svc.instance(at, "kv")
    kv.put_many(at, inst, {"a": b"1", "big": b"z" * 5000}, "POST")
    svc.commit(root)

    left = svc.new_child(root)
    right = svc.new_child(root, branch="right")
    # Same final content by different histories.
    la = svc.resolve(left)
    kv.put_many(la, inst, {"b": b"2", "c": b"3"}, "POST")
    kv.delete(la, inst, "c", "DELETE")
    ra = svc.resolve(right)
    kv.put_many(ra, inst, {"c": b"x"}, "POST")
    kv.put_many(ra, inst, {"b": b"2"}, "POST")
    kv.delete(ra, inst, "c", "DELETE")

    cl = svc.commit(left)
    cr = svc.commit(right)
    assert cl != cr  # the commit names its node
    la, ra = svc.resolve(left), svc.resolve(right)
    assert la.node.commit == cl and ra.node.commit == cr
    assert svc.root_at(la, inst) == svc.root_at(ra, inst)
    assert svc.commit_of(cl).roots == svc.commit_of(cr).roots
    assert list(svc.diff(la, ra, inst)) == []
    assert dict(kv.items(la, inst)) == {"a": b"1", "big": b"z" * 5000, "b": b"2"}

    # Merging two sides that made the same change is no conflict and keeps that content.
    m = svc.merge(root, [left, right])
    ma = svc.resolve(m)
    assert not ma.node.locked and ma.node.branch == "" and ma.node.parents == [left, right]
    assert svc.root_at(ma, inst) == svc.root_at(la, inst)


def test_refusals_leave_no_trace() -> None:
    svc, _ = _svc()
    root = svc.create_repo("r")
    svc.new_instance(root, "kv", "keyvalue")
    a = "1" * 32
    with pytest.raises(InvalidInputError):
        svc.new_child(root, uuid=a)  # root is not committed yet
    with pytest.raises(NotFoundError):
        svc.resolve(a)  # the refused child's UUID was not left in the index
    svc.commit(root)
    assert svc.new_child(root, uuid=a) == a
    with pytest.raises(InvalidInputError):
        svc.new_child(root, branch="x", uuid=a)  # UUIDs are unique
    with pytest.raises(InvalidInputError):
        svc.merge(root, [root])
    with pytest.raises(InvalidInputError):
        svc.merge(root, [root, a], merge_type="manual")
    with pytest.raises(InvalidInputError):
        svc.merge(root, [root, a])  # a is not committed
    nodes = set(svc.resolve(root).repo.nodes)
    for name in ("", "master"):
        with pytest.raises(InvalidInputError):
            svc.new_child(root, branch=name)
    assert set(svc.resolve(root).repo.nodes) == nodes
    with pytest.raises(InvalidInputError):
        at = svc.resolve(a)
        KeyValueStore.on(svc).put_many(at, svc.instance(at, "kv"), {"": b"x"}, "POST")


def test_merge_with_a_descendant_keeps_the_descendants_content() -> None:
    """Merging ``a`` with its own descendant ``b`` must give ``b``'s content.

    ``a`` changes k 0 -> 1; ``b`` descends from ``a`` (via a branch that reverts k to
    0, then two empty versions) and also, through a merge, from an untouched sibling
    of ``a``.  ``a`` is a common ancestor of ``a`` and ``b`` (distance 0 + 4), but the
    root X scores 1 + 2 and is chosen as the base: against X only ``a`` changed k, so
    the merge takes k = 1, losing the revert that ``b`` already contains.
    """
    svc, kv = _svc()
    x = svc.create_repo("r")
    svc.new_instance(x, "kv", "keyvalue")

    def put(u: str, key: str, value: bytes) -> None:
        at = svc.resolve(u)
        kv.put_many(at, svc.instance(at, "kv"), {key: value}, "POST")

    def content(u: str) -> dict[str, bytes]:
        at = svc.resolve(u)
        return dict(kv.items(at, svc.instance(at, "kv")))

    put(x, "k", b"0")
    svc.commit(x)
    a = svc.new_child(x)
    put(a, "k", b"1")
    svc.commit(a)
    b1 = svc.new_child(a, branch="b")
    put(b1, "k", b"0")  # revert
    svc.commit(b1)
    b2 = svc.new_child(b1)
    svc.commit(b2)
    b3 = svc.new_child(b2)
    svc.commit(b3)
    q = svc.new_child(x, branch="q")
    svc.commit(q)
    b = svc.merge(x, [q, b3])
    svc.commit(b)
    assert content(b) == {"k": b"0"}

    m = svc.merge(x, [a, b])
    assert content(m) == content(b)  # a too-old base gave {"k": b"1"}
