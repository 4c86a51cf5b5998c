"""Per-request caps and the server-wide memory budget, against a live waitress server."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api.budget import MemoryBudget
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.testing.live import LiveServer

MiB = 1 << 20
RNG = np.random.default_rng(12)


def _volume(srv: LiveServer, typename: str = "uint8blk") -> str:
    root = srv.post("/api/repos", b"{}")["root"]
    doc = {"typename": typename, "dataname": "g"}
    srv.post(f"/api/repo/{root}/instance", json.dumps(doc).encode())
    return f"/api/node/{root}/g"


def _settled(budget: MemoryBudget) -> int:
    """Bytes still held once waitress has closed every answer (it closes just after sending)."""
    deadline = time.monotonic() + 5
    while budget.used and time.monotonic() < deadline:
        time.sleep(0.01)
    return budget.used


def _app(budget: MemoryBudget | None = None, **limits: object) -> object:
    return create_app(ServerConfig("memory://", **limits), budget=budget)  # type: ignore[arg-type]


def test_raw_post_over_the_body_cap_is_413_in_plain_text() -> None:
    with LiveServer(_app(max_body_bytes=1 * MiB)) as srv:
        base = _volume(srv)
        body = bytes(128 * 128 * 128)  # 2 MiB, within max_voxel_bytes
        status, headers, out = srv.request("POST", f"{base}/raw/0_1_2/128_128_128/0_0_0", body)
        assert status == 413, out
        assert headers["content-type"].startswith("text/plain")
        assert b"1048576-byte limit" in out
        status, _, out = srv.request("POST", f"{base}/blocks/0_0_0/40", bytes(40 * 32**3))
        assert status == 413, out


def test_raw_get_over_the_voxel_cap_is_refused_before_allocating() -> None:
    with LiveServer(_app(max_voxel_bytes=8 * MiB)) as srv:
        base = _volume(srv)
        t0 = time.monotonic()
        status, _, out = srv.request("GET", f"{base}/raw/0_1_2/100000_100000_100000/0_0_0")
        assert status == 400, out
        assert b"max_voxel_bytes" in out
        status, _, out = srv.request("GET", f"{base}/blocks/0_0_0/400")
        assert status == 400, out
        assert b"max_voxel_bytes" in out
        assert time.monotonic() - t0 < 2


def test_a_read_that_does_not_fit_the_budget_waits_then_gets_503_with_retry_after() -> None:
    budget = MemoryBudget(32 * MiB, wait=0.5)
    with LiveServer(_app(budget)) as srv:
        base = _volume(srv)
        path = f"{base}/raw/0_1_2/256_256_128/0_0_0"  # 8 MiB: claims 16 MiB
        held = budget.reserve(24 * MiB)  # another request's bytes in flight
        t0 = time.monotonic()
        status, headers, out = srv.request("GET", path)
        waited = time.monotonic() - t0
        assert status == 503, out
        assert headers["retry-after"] == "1"
        assert headers["content-type"].startswith("text/plain")
        assert b"memory budget" in out
        assert 0.4 < waited < 3
        # room freed within the wait: the request waits for it and is answered
        threading.Timer(0.2, held.release).start()
        status, _, out = srv.request("GET", path)
        assert status == 200
        assert len(out) == 8 * MiB
        assert _settled(budget) == 0  # every hold is given back once the answer is sent


def test_a_post_body_counts_against_the_budget() -> None:
    budget = MemoryBudget(8 * MiB, wait=0.2)
    with LiveServer(_app(budget)) as srv:
        base = _volume(srv)
        held = budget.reserve(6 * MiB)
        body = bytes(128 * 128 * 256)  # 4 MiB
        status, headers, out = srv.request("POST", f"{base}/raw/0_1_2/128_128_256/0_0_0", body)
        assert status == 503, out
        assert "retry-after" in headers
        held.release()
        status, _, out = srv.request("POST", f"{base}/raw/0_1_2/128_128_256/0_0_0", body)
        assert status == 200, out
        assert _settled(budget) == 0


def test_concurrent_large_reads_stay_within_the_budget_and_all_succeed() -> None:
    budget = MemoryBudget(40 * MiB, wait=20)
    with LiveServer(_app(budget), threads=8) as srv:
        base = _volume(srv)
        vol = RNG.integers(0, 255, (128, 256, 256), dtype=np.uint8)
        srv.post(f"{base}/raw/0_1_2/256_256_128/0_0_0", vol.tobytes())

        def read(i: int) -> tuple[int, bytes]:
            status, _, out = srv.request("GET", f"{base}/raw/0_1_2/256_256_128/0_0_0")
            return status, out

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(read, range(16)))
        assert all(status == 200 and out == vol.tobytes() for status, out in results)
        # each claims 16 MiB: at most two at a time fit in 40 MiB
        assert 16 * MiB <= budget.peak <= 40 * MiB
        assert _settled(budget) == 0


def test_concurrent_large_reads_past_the_wait_get_503_never_an_error() -> None:
    budget = MemoryBudget(16 * MiB, wait=0.0)
    with LiveServer(_app(budget), threads=8) as srv:
        base = _volume(srv)
        held = budget.reserve(1 * MiB)

        def read(i: int) -> int:
            return srv.request("GET", f"{base}/raw/0_1_2/256_256_128/0_0_0")[0]

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(read, range(8)))
        held.release()
        assert set(statuses) == {503}  # 16 MiB never fits beside the 1 MiB held
        assert _settled(budget) == 0


@pytest.mark.parametrize("typename", ["uint8blk", "labelmap"])
def test_streamed_raw_reads_are_the_bytes_of_a_whole_read(typename: str) -> None:
    whole = _app()
    streamed = _app(stream_bytes=1 * MiB)
    dtype = np.uint8 if typename == "uint8blk" else np.uint64
    vol = RNG.integers(0, 200, (192, 128, 128), dtype=dtype)
    boxes = ["128_128_192/0_0_0", "100_77_150/13_20_5", "128_128_20/0_0_100"]
    with LiveServer(whole) as a, LiveServer(streamed) as b:
        bases = [_volume(a, typename), _volume(b, typename)]
        for srv, base in zip((a, b), bases, strict=True):
            srv.post(f"{base}/raw/0_1_2/128_128_192/0_0_0", vol.tobytes())
        for box in boxes:
            got = [
                srv.request("GET", f"{base}/raw/0_1_2/{box}")
                for srv, base in zip((a, b), bases, strict=False)
            ]
            assert got[0][0] == got[1][0] == 200
            assert got[0][2] == got[1][2]
            assert got[1][1]["content-length"] == str(len(got[0][2]))


def test_z_slabs_cover_the_box_in_order_within_the_slab_size() -> None:
    box = Box3(Point3(3, 4, 5), Point3(100, 90, 300))
    slabs = list(box.z_slabs(64, 97 * 86, 97 * 86 * 40))
    zs = [(s.start.z, s.stop.z) for s in slabs]
    assert zs[0][0] == 5
    assert zs[-1][1] == 300
    assert all(a[1] == b[0] for a, b in zip(zs, zs[1:], strict=False))
    assert all(0 < hi - lo <= 40 and lo // 64 == (hi - 1) // 64 for lo, hi in zs)
    assert all(s.start.x == 3 and s.stop.y == 90 for s in slabs)
