"""Writes computed from the tree (plans): they read what they write on, and rerun after a lost swap."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import pytest

from cas_dvid.backends import MemoryBackend
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService
from cas_dvid.versions.heads import Plan, Reader

KEY = b"\x01counter"


def counter_plan(step: int) -> Plan:
    def plan(read: Reader) -> Mapping[bytes, bytes | None]:
        old = read([KEY]).get(KEY, b"\x00" + (0).to_bytes(8, "little"))
        n = int.from_bytes(old[1:], "little") + step
        return {KEY: b"\x00" + n.to_bytes(8, "little")}

    return plan


def value(vs: VersionService, uuid: str) -> int:
    at = vs.resolve(uuid)
    raw = vs.tree.get(vs.root_at(at, at.instance("kv")), KEY)
    assert raw is not None
    return int.from_bytes(raw[1:], "little")


@pytest.fixture
def vs() -> VersionService:
    return VersionService(ObjectStore(MemoryBackend()))


def test_racing_plans_lose_nothing(vs: VersionService) -> None:
    root = vs.create_repo()
    vs.new_instance(root, "kv", "keyvalue")
    at = vs.resolve(root)
    inst = at.instance("kv")

    def bump() -> None:
        for _ in range(25):
            vs.write(at, inst, counter_plan(1))

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value(vs, root) == 200


def test_plan_reruns_on_the_winners_root() -> None:
    backend = MemoryBackend()
    a = VersionService(ObjectStore(backend))
    b = VersionService(ObjectStore(backend))  # another server on the same store
    root = a.create_repo()
    a.new_instance(root, "kv", "keyvalue")
    at = a.resolve(root)
    inst = at.instance("kv")
    calls: list[Sequence[bytes]] = []

    def plan(read: Reader) -> Mapping[bytes, bytes | None]:
        calls.append([KEY])
        current = read([KEY]).get(KEY)
        if len(calls) == 1:  # a rival moves the head between our read and our swap
            b.write(b.resolve(root), inst, counter_plan(10))
        n = 0 if current is None else int.from_bytes(current[1:], "little")
        return {KEY: b"\x00" + (n + 1).to_bytes(8, "little")}

    a.write(at, inst, plan)
    assert len(calls) == 2 and value(a, root) == 11


def test_a_failing_plan_fails_alone(vs: VersionService) -> None:
    root = vs.create_repo()
    vs.new_instance(root, "kv", "keyvalue")
    at = vs.resolve(root)
    inst = at.instance("kv")

    def refuse(read: Reader) -> Mapping[bytes, bytes | None]:
        raise InvalidInputError("label 7 not found")

    with pytest.raises(InvalidInputError, match="label 7"):
        vs.write(at, inst, refuse)
    vs.write(at, inst, counter_plan(3))
    assert value(vs, root) == 3


def test_a_plan_reads_key_ranges_of_the_tree_it_lands_on(vs: VersionService) -> None:
    root = vs.create_repo()
    vs.new_instance(root, "kv", "keyvalue")
    at = vs.resolve(root)
    inst = at.instance("kv")
    vs.write(at, inst, {b"\x02a": b"\x001", b"\x02b": b"\x002", b"\x03z": b"\x009"})

    def tally(read: Reader) -> Mapping[bytes, bytes | None]:
        rows = read.range(b"\x02", b"\x03")
        return {b"\x02n": b"\x00" + str(len(rows)).encode(), b"\x02a": None}

    vs.write(at, inst, tally)
    tree, now = vs.tree, vs.root_at(vs.resolve(root), inst)
    assert dict(tree.range(now)) == {b"\x02b": b"\x002", b"\x02n": b"\x002", b"\x03z": b"\x009"}
