"""Random proofreading sessions against the plain model, and two servers on one store.

The state machine applies random merges, cleaves, renumbers and supervoxel splits
(refused ones included) to the store and to the model; after each step the volumes
agree, the invariant checker finds nothing, and mutation ids keep increasing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from _bodies import voronoi
from _mutations import World, make_world, rle_body
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.errors import InvalidInputError

WHO = ModInfo(user="model")


class Proofreading(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w: World = make_world(shape=(32, 32, 32), seeds=10, seed=4)
        self.last_mid = 0

    def _bodies(self) -> list[int]:
        return sorted(self.w.model.bodies())

    def _landed(self, mid: int) -> None:
        assert mid > self.last_mid
        self.last_mid = mid

    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        bodies = self._bodies()
        if len(bodies) < 2:
            return
        target = data.draw(st.sampled_from(bodies))
        others = data.draw(
            st.lists(st.sampled_from([b for b in bodies if b != target]), min_size=1, max_size=3)
        )
        self._landed(self.w.labels.mutations.merge(self.w.at, self.w.inst, target, others, WHO))
        self.w.model.merge(target, others)

    @rule(data=st.data())
    def cleave(self, data: st.DataObject) -> None:
        bodies = {b: svs for b, svs in self.w.model.bodies().items() if len(svs) > 1}
        if not bodies:
            return
        body = data.draw(st.sampled_from(sorted(bodies)))
        svs = sorted(bodies[body])
        part = data.draw(st.lists(st.sampled_from(svs), min_size=1, max_size=len(svs) - 1))
        if set(part) == set(svs):
            return
        new, mid = self.w.labels.mutations.cleave(self.w.at, self.w.inst, body, part, WHO)
        self._landed(mid)
        self.w.model.cleave(body, part, new)

    @rule(data=st.data())
    def renumber(self, data: st.DataObject) -> None:
        old = data.draw(st.sampled_from(self._bodies()))
        new = data.draw(st.integers(2**48, 2**48 + 50))
        if new in self.w.model.bodies() or (self.w.model.vol == np.uint64(new)).any():
            try:
                self.w.labels.mutations.renumber(self.w.at, self.w.inst, new, old, WHO)
            except InvalidInputError:
                return
            raise AssertionError("renumber onto an existing body was accepted")
        self._landed(self.w.labels.mutations.renumber(self.w.at, self.w.inst, new, old, WHO))
        self.w.model.renumber(new, old)

    @rule(data=st.data(), axis=st.integers(0, 2), cut=st.integers(4, 28))
    def split_supervoxel(self, data: st.DataObject, axis: int, cut: int) -> None:
        svs = sorted(int(s) for s in np.unique(self.w.model.vol) if s)
        sv = data.draw(st.sampled_from(svs))
        mask = np.zeros(self.w.model.vol.shape, bool)
        mask[(slice(None),) * axis + (slice(0, cut),)] = True
        is_sv = self.w.model.vol == np.uint64(sv)
        body = rle_body(mask & is_sv)
        if not (is_sv & mask).any() or not (is_sv & ~mask).any():
            root = self.w.labels.root(self.w.at, self.w.inst)
            try:
                self.w.labels.splits.split_supervoxel(self.w.at, self.w.inst, sv, body, WHO)
            except InvalidInputError:
                assert self.w.labels.root(self.w.at, self.w.inst) == root
                return
            raise AssertionError("a split leaving one side empty was accepted")
        out = self.w.labels.splits.split_supervoxel(self.w.at, self.w.inst, sv, body, WHO)
        self._landed(out.mutid)
        self.w.model.split_supervoxel(sv, mask, out.split, out.remain)

    @invariant()
    def agrees_with_model(self) -> None:
        self.w.check()


TestProofreading = Proofreading.TestCase
TestProofreading.settings = settings(
    max_examples=12,
    stateful_step_count=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, body: bytes | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_two_server_processes_share_mutation_ids(tmp_path: Path) -> None:
    """Two ``cas-dvid serve`` processes on one directory store, merging at once."""
    store = tmp_path / "store"
    exe = [sys.executable, "-m", "cas_dvid.cli"]
    subprocess.run([*exe, "init", str(store)], check=True, capture_output=True)
    ports = [_free_port(), _free_port()]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [*exe, "serve", str(store), "--port", str(p)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        for u in urls:
            for _ in range(200):
                try:
                    if _call(f"{u}/api/heartbeat")[0] == 200:
                        break
                except OSError:
                    time.sleep(0.05)
        status, body = _call(f"{urls[0]}/api/repos", b"{}")
        root = json.loads(body)["root"]
        inst = b'{"typename":"labelmap","dataname":"s","BlockSize":"16,16,16"}'
        assert _call(f"{urls[0]}/api/repo/{root}/instance", inst)[0] == 200
        vol = voronoi((32, 32, 32), 20, 11)
        assert _call(f"{urls[0]}/api/node/{root}/s/raw/0_1_2/32_32_32/0_0_0", vol.tobytes())[0] == 200
        labels = sorted(int(s) for s in np.unique(vol))
        groups = [labels[: len(labels) // 2], labels[len(labels) // 2 :]]
        mids: list[int] = []

        def editor(url: str, group: list[int]) -> None:
            for other in group[1:]:
                status, body = _call(
                    f"{url}/api/node/{root}/s/merge", json.dumps([group[0], other]).encode()
                )
                assert status == 200, body
                mids.append(json.loads(body)["MutationID"])

        threads = [threading.Thread(target=editor, args=a) for a in zip(urls, groups, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(mids) == len(labels) - 2 and len(set(mids)) == len(mids)
        status, body = _call(f"{urls[1]}/api/node/{root}/s/mutations")
        log = [r["MutationID"] for r in json.loads(body)]
        assert log == sorted(mids)
        for g in groups:
            status, body = _call(f"{urls[1]}/api/node/{root}/s/supervoxels/{g[0]}")
            assert sorted(json.loads(body)) == g
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(10)
