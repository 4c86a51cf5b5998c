"""Crash matrix (issue 12): SIGKILL during a large load, labelmap merges, a push and a gc.

Each job is killed at several points, chosen by its progress (acknowledged writes, or
objects arrived or removed), not by the clock.  Afterwards ``cas-dvid verify --all``
passes on the store (blocks, trees, commits and the labelmap invariants), every write
the client saw acknowledged is there, and rerunning the job finishes it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cas_dvid.backends import open_backend
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.imageblk import ImageStore
from cas_dvid.objects import ObjectStore
from cas_dvid.testing.process import ServerProcess
from cas_dvid.versions.stores import init_store

CLI = [sys.executable, "-m", "cas_dvid.cli"]
SLAB = (64, 128, 128)  # z, y, x: 1 MiB of uint8, 32 blocks of 32^3
SLABS = 16


def call(srv: ServerProcess, method: str, path: str, body: bytes | None = None) -> int:
    """Return the HTTP status, or -1 when the server died under the request."""
    conn = srv.connection()
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        r.read()
        return int(r.status)
    except OSError:
        return -1
    finally:
        conn.close()


def post_json(srv: ServerProcess, path: str, doc: object) -> dict:  # type: ignore[type-arg]
    conn = srv.connection()
    try:
        conn.request("POST", path, body=json.dumps(doc).encode())
        r = conn.getresponse()
        body = r.read()
        assert r.status == 200, body
        return json.loads(body) if body.strip() else {}
    finally:
        conn.close()


def verify_all(store: Path) -> None:
    r = subprocess.run(
        [*CLI, "verify", "--all", "--store", str(store), "--quiet"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def kill_frozen_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    """SIGKILL ``proc`` once ``ready()``, judged while it is stopped (SIGSTOP).

    A job that deletes a thousand files in tens of milliseconds can finish between
    a count taken while it runs and the kill; counted while it is frozen, the kill
    lands at most one short run after the point.
    """
    deadline = time.monotonic() + 60
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        while _state(proc.pid) not in ("T", "t", "Z", None):
            time.sleep(0.0005)
        if ready() or proc.poll() is not None:
            proc.kill()
            return
        assert time.monotonic() < deadline, "the job never reached the kill point"
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.002)


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def kill_when(srv_kill: Callable[[], None], ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "the job never reached the kill point"
        time.sleep(0.005)
    srv_kill()


def object_files(store: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(store / "objects"))


def new_repo(srv: ServerProcess, *instances: dict[str, str]) -> str:
    root = str(post_json(srv, "/api/repos", {})["root"])
    for inst in instances:
        post_json(srv, f"/api/repo/{root}/instance", inst)
    return root


def slab(i: int, salt: int = 0) -> np.ndarray:
    return np.random.default_rng(1000 * salt + i).integers(0, 256, SLAB, dtype=np.uint8)


GREY = {"typename": "uint8blk", "dataname": "grey", "BlockSize": "32,32,32"}


@pytest.mark.parametrize("after", [1, 6])
def test_kill_during_a_large_load(tmp_path: Path, after: int) -> None:
    store = tmp_path / "store"
    init_store(str(store))
    srv = ServerProcess(store).start()
    acked: list[int] = []
    try:
        root = new_repo(srv, GREY)
        url = f"/api/node/{root}/grey/raw/0_1_2/{SLAB[2]}_{SLAB[1]}_{SLAB[0]}"

        def load() -> None:
            for i in range(SLABS):
                if call(srv, "POST", f"{url}/0_0_{i * SLAB[0]}", slab(i).tobytes()) != 200:
                    return
                acked.append(i)

        t = threading.Thread(target=load)
        t.start()
        kill_when(srv.kill, lambda: len(acked) >= after)
        t.join(60)
    finally:
        srv.kill()
    assert len(acked) < SLABS, "the load finished before the kill: nothing was tested"
    verify_all(store)
    versions = open_versions(ObjectStore(open_backend(f"file://{store}")))
    images = ImageStore.on(versions)
    at = versions.resolve(root)
    grey = at.instance("grey")
    for i in acked:
        box = Box3.at(Point3(0, 0, i * SLAB[0]), Point3(SLAB[2], SLAB[1], SLAB[0]))
        assert np.array_equal(images.read(at, grey, box), slab(i)), f"acknowledged slab {i} lost"
    with srv.start():  # the rerun finishes the job
        for i in range(SLABS):
            assert call(srv, "POST", f"{url}/0_0_{i * SLAB[0]}", slab(i).tobytes()) == 200
    at = versions.resolve(root)
    whole = images.read(
        at, grey, Box3.at(Point3(0, 0, 0), Point3(SLAB[2], SLAB[1], SLAB[0] * SLABS))
    )
    assert np.array_equal(whole, np.concatenate([slab(i) for i in range(SLABS)]))


def supervoxels(srv: ServerProcess, root: str, body: int) -> list[int]:
    conn = srv.connection()
    try:
        conn.request("GET", f"/api/node/{root}/seg/supervoxels/{body}")
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, data
        return sorted(json.loads(data))
    finally:
        conn.close()


def cells(n: int = 128, cell: int = 16) -> np.ndarray:
    """Supervoxels 1..(n/cell)^3, one per cell."""
    k = n // cell
    ids = np.arange(1, k**3 + 1, dtype=np.uint64).reshape(k, k, k)
    return ids.repeat(cell, 0).repeat(cell, 1).repeat(cell, 2)


@pytest.mark.parametrize("after", [2, 12])
def test_kill_during_labelmap_merges(tmp_path: Path, after: int) -> None:
    store = tmp_path / "store"
    init_store(str(store))
    srv = ServerProcess(store).start()
    acked: list[tuple[int, int]] = []
    pairs = [(2 * k + 1, 2 * k + 2) for k in range(200)]
    try:
        seg = {"typename": "labelmap", "dataname": "seg", "BlockSize": "32,32,32"}
        root = new_repo(srv, seg)
        vol = cells()
        assert (
            call(srv, "POST", f"/api/node/{root}/seg/raw/0_1_2/128_128_128/0_0_0", vol.tobytes())
            == 200
        )

        def merge() -> None:
            for target, other in pairs:
                body = json.dumps([target, other]).encode()
                if call(srv, "POST", f"/api/node/{root}/seg/merge", body) != 200:
                    return
                acked.append((target, other))

        t = threading.Thread(target=merge)
        t.start()
        kill_when(srv.kill, lambda: len(acked) >= after)
        t.join(60)
    finally:
        srv.kill()
    assert len(acked) < len(pairs), "the merges finished before the kill: nothing was tested"
    verify_all(store)  # labelmap invariants included: index, counts and mapping agree
    with srv.start():
        for target, other in acked:
            assert supervoxels(srv, root, target) == [target, other], f"merge {target}+{other} lost"
        done = {t for t, _ in acked}
        for target, other in pairs:  # the rerun: merge what was not acknowledged
            if target in done:
                continue
            if supervoxels(srv, root, target) == [target, other]:
                continue  # the merge in flight at the kill had landed, unacknowledged
            body = json.dumps([target, other]).encode()
            assert call(srv, "POST", f"/api/node/{root}/seg/merge", body) == 200
    verify_all(store)


def build_source(path: Path) -> str:
    """A store with one locked version of 4 MiB of grey (128 blocks) and return its UUID."""
    init_store(str(path))
    versions = open_versions(ObjectStore(open_backend(f"file://{path}")))
    root = versions.create_repo()
    inst = versions.new_instance(root, "grey", "uint8blk", settings={"BlockSize": "32,32,32"})
    images = ImageStore.on(versions)
    for i in range(4):
        images.write(versions.resolve(root), inst, Point3(0, 0, i * SLAB[0]), slab(i, 7), "src")
    versions.commit(root, "to push")
    versions.store.close()
    return root


@pytest.mark.parametrize("fraction", [0.2, 0.6])
def test_kill_the_receiving_server_during_a_push(tmp_path: Path, fraction: float) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    uuid = build_source(src)
    total = object_files(src)
    init_store(str(dst))
    srv = ServerProcess(dst).start()
    empty = object_files(dst)
    push = [*CLI, "push", srv.url, uuid, "--store", str(src), "--quiet", "--batch-mb", "0.25"]
    proc = subprocess.Popen(push, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        kill_when(srv.kill, lambda: object_files(dst) - empty >= fraction * total)
        out, err = proc.communicate(timeout=120)
    finally:
        srv.kill()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0, "the push finished before the kill: nothing was tested"
    verify_all(dst)  # what arrived is sound; the version is not there until the rerun
    with srv.start():
        r = subprocess.run(push, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "already there" in r.stdout
    verify_all(dst)
    versions = open_versions(ObjectStore(open_backend(f"file://{dst}")))
    at = versions.resolve(uuid)
    got = ImageStore.on(versions).read(
        at, at.instance("grey"), Box3.at(Point3(0, 0, 0), Point3(SLAB[2], SLAB[1], 4 * SLAB[0]))
    )
    assert np.array_equal(got, np.concatenate([slab(i, 7) for i in range(4)]))


OVERWRITES = 40


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_kill_during_a_gc(tmp_path: Path, fraction: float, loose_objects: None) -> None:
    store = tmp_path / "store"
    init_store(str(store))
    versions = open_versions(ObjectStore(open_backend(f"file://{store}")))
    root = versions.create_repo()
    inst = versions.new_instance(root, "grey", "uint8blk", settings={"BlockSize": "16,16,16"})
    images = ImageStore.on(versions)
    for salt in range(
        OVERWRITES
    ):  # each overwrite of the open version leaves the last one's garbage
        images.write(versions.resolve(root), inst, Point3(0, 0, 0), slab(0, salt), "overwrite")
    versions.store.close()
    before = object_files(store)
    gc = [*CLI, "gc", "--store", str(store), "--grace", "0"]
    dry = subprocess.run([*gc, "--dry-run"], capture_output=True, text=True, timeout=120)
    garbage = int(re.search(r"would remove (\d+)", dry.stdout).group(1))  # type: ignore[union-attr]
    assert garbage > 1000, dry.stdout
    proc = subprocess.Popen(gc, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        kill_frozen_when(proc, lambda: before - object_files(store) >= fraction * garbage)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert object_files(store) > before - garbage, "the gc finished before the kill"
    verify_all(store)
    r = subprocess.run(gc, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    verify_all(store)
    versions = open_versions(ObjectStore(open_backend(f"file://{store}")))
    at = versions.resolve(root)
    got = ImageStore.on(versions).read(
        at, at.instance("grey"), Box3.at(Point3(0, 0, 0), Point3(SLAB[2], SLAB[1], SLAB[0]))
    )
    assert np.array_equal(got, slab(0, OVERWRITES - 1))
    dry = subprocess.run([*gc, "--dry-run"], capture_output=True, text=True, timeout=120)
    assert "would remove 0 " in dry.stdout, dry.stdout
