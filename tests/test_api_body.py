"""Answers sent in place (``BufferStream``): the file the WSGI server reads, and live answers."""

from __future__ import annotations

import io
import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api._body import SMALL_PIECE, BufferStream
from cas_dvid.api.budget import MemoryBudget
from cas_dvid.api.serve import in_place_bodies
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions.stores import init_store

MiB = 1 << 20
PARTS = [b"abc", b"", np.arange(10, dtype=np.uint16), memoryview(b"xyz"), b""]
WHOLE = b"abc" + np.arange(10, dtype=np.uint16).tobytes() + b"xyz"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 100])
def test_reads_of_any_size_give_the_parts_in_order(size: int) -> None:
    body = BufferStream(PARTS)
    assert body.size == len(WHOLE)
    got = []
    while chunk := body.read(size):
        assert isinstance(chunk, bytes)  # a WSGI iterable's chunks must be bytes
        assert 0 < len(chunk) <= size
        got.append(chunk)
    assert b"".join(got) == WHOLE
    assert body.read(5) == b""


@pytest.mark.parametrize("size", [1, 3, 7, 100])
def test_with_views_small_parts_are_still_read_in_order(size: int) -> None:
    body = BufferStream(PARTS)
    body.views = True
    got = []
    while chunk := body.read(size):
        assert 0 < len(chunk) <= size
        got.append(bytes(chunk))
    assert b"".join(got) == WHOLE
    body.seek(2)
    rest = body.read()  # read() of all that is left is bytes
    assert isinstance(rest, bytes)
    assert rest == WHOLE[2:]


def test_with_views_a_read_inside_a_big_part_is_a_view_of_it_not_a_copy() -> None:
    part = np.zeros(3 * SMALL_PIECE, dtype=np.uint8)
    body = BufferStream([b"head", part, b"tail"])
    body.views = True
    head = body.read(SMALL_PIECE)  # stops in the big part, soon: copied out, as bytes
    assert isinstance(head, bytes)
    assert head == b"head" + bytes(SMALL_PIECE - 4)
    chunk = body.read(SMALL_PIECE)
    assert isinstance(chunk, memoryview)
    assert chunk.nbytes == SMALL_PIECE
    part[SMALL_PIECE - 4 + 5] = 77  # the view shares the part's memory (writable here)
    assert chunk[5] == 77
    rest = body.read(4 * SMALL_PIECE)  # the part's end comes after SMALL_PIECE: a short view
    assert isinstance(rest, memoryview)
    assert rest.nbytes == SMALL_PIECE + 4
    last = body.read(100)  # the body's last bytes: a view too
    assert bytes(last) == b"tail"
    assert body.read(100) == b""


def test_seek_and_tell_as_a_file() -> None:
    body = BufferStream(PARTS)
    assert body.seekable()
    assert body.readable()
    assert body.seek(0, io.SEEK_END) == len(WHOLE)
    assert body.seek(4) == 4
    assert body.tell() == 4
    assert body.read(3) == WHOLE[4:7]
    assert body.seek(-2, io.SEEK_CUR) == 5
    assert body.read() == WHOLE[5:]
    assert body.seek(-100, io.SEEK_CUR) == 0  # clamped, as the size is known
    assert body.read(None) == WHOLE


def test_close_releases_the_holds_once_and_refuses_reads() -> None:
    budget = MemoryBudget(10 * MiB)
    body = BufferStream([b"x" * 10], [budget.reserve(3 * MiB), budget.reserve(2 * MiB)])
    assert budget.used == 5 * MiB
    body.close()
    body.close()
    assert budget.used == 0
    with pytest.raises(ValueError, match="closed"):
        body.read(1)


def _settled(budget: MemoryBudget) -> int:
    deadline = time.monotonic() + 5
    while budget.used and time.monotonic() < deadline:
        time.sleep(0.01)
    return budget.used


@pytest.mark.parametrize("in_place", [False, True], ids=["copied", "in-place"])
def test_live_raw_and_block_answers_are_whole_and_give_their_claims_back(in_place: bool) -> None:
    budget = MemoryBudget(256 * MiB)
    app = create_app(ServerConfig("memory://"), budget=budget)
    rng = np.random.default_rng(5)
    vol = rng.integers(0, 256, (64, 128, 192), dtype=np.uint8)
    with LiveServer(in_place_bodies(app) if in_place else app) as srv:
        root = srv.post("/api/repos", b"{}")["root"]
        doc = {"typename": "uint8blk", "dataname": "g", "BlockSize": "32,32,32"}
        srv.post(f"/api/repo/{root}/instance", json.dumps(doc).encode())
        base = f"/api/node/{root}/g"
        srv.post(f"{base}/raw/0_1_2/192_128_64/0_0_0", vol.tobytes())
        status, headers, out = srv.request("GET", f"{base}/raw/0_1_2/150_100_60/3_5_2")
        assert status == 200
        assert int(headers["content-length"]) == len(out) == 150 * 100 * 60
        assert out == vol[2:62, 5:105, 3:153].tobytes()
        coords = [(5, 3, 1), (0, 0, 0), (2, 1, 0), (9, 9, 9)]  # the last is not stored
        q = ",".join(f"{x},{y},{z}" for x, y, z in coords)
        status, _, out = srv.request(
            "GET", f"{base}/specificblocks?blocks={q}&compression=uncompressed"
        )
        assert status == 200
        pos, seen = 0, []
        while pos < len(out):
            x, y, z, n = struct.unpack_from("<iiii", out, pos)
            pos += 16
            block = vol[z * 32 : z * 32 + 32, y * 32 : y * 32 + 32, x * 32 : x * 32 + 32]
            assert out[pos : pos + n] == block.tobytes(), (x, y, z)
            pos += n
            seen.append((x, y, z))
        assert sorted(seen) == sorted(coords[:3])
        assert budget.peak > 0  # the answers were claimed ...
        assert _settled(budget) == 0  # ... and given back once waitress closed them


def test_large_raw_reads_are_whole_and_store_damage_is_a_500(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'store'}"
    init_store(url)
    rng = np.random.default_rng(9)
    vol = rng.integers(0, 256, (128, 256, 256), dtype=np.uint8)  # random: stored raw
    with LiveServer(create_app(ServerConfig(url))) as srv:
        root = srv.post("/api/repos", b"{}")["root"]
        doc = {"typename": "uint8blk", "dataname": "g", "BlockSize": "64,64,64"}
        srv.post(f"/api/repo/{root}/instance", json.dumps(doc).encode())
        base = f"/api/node/{root}/g"
        srv.post(f"{base}/raw/0_1_2/256_256_128/0_0_0", vol.tobytes())
        path = f"{base}/raw/0_1_2/200_200_110/3_5_7"
        status, headers, out = srv.request("GET", path)
        assert status == 200
        assert int(headers["content-length"]) == len(out)
        assert out == vol[7:117, 5:205, 3:203].tobytes()
        status, _, out = srv.request("GET", f"{base}/raw/0_1_2/300_150_100/100_0_0")
        want = np.zeros((100, 150, 300), np.uint8)  # unwritten voxels read as 0
        want[:, :, :156] = vol[:100, :150, 100:]
        assert status == 200
        assert out == want.tobytes()
    objects = (tmp_path / "store" / "objects").rglob("*")
    blocks = [p for p in objects if p.is_file() and p.stat().st_size == 16 + 64**3]
    assert len(blocks) == 32  # 4 x 4 x 2, every one touched by the box
    victim = blocks[5]
    data = bytearray(victim.read_bytes())
    data[1000] ^= 0x40
    victim.write_bytes(bytes(data))
    with LiveServer(create_app(ServerConfig(url))) as srv:  # a fresh decoded-object cache
        status, headers, out = srv.request("GET", path)
    assert status == 500, out[:200]
    assert headers["content-type"].startswith("text/plain")
    assert (victim.parent.name + victim.name).encode() in out
