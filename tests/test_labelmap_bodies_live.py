"""The label index endpoints over a real waitress server, one test per endpoint family."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import numpy as np
import pytest
from _bodies import (
    apply_mapping,
    brute_index,
    index_blocks,
    mapping_ops,
    paint_blocks,
    paint_runs,
    runs_of_rles,
    runs_of_srles,
    voronoi,
)

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.proto.labelops_pb2 import LabelIndex, LabelIndices
from cas_dvid.testing.live import LiveServer

SHAPE = (64, 64, 128)


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[LiveServer, str, np.ndarray, dict[int, int]]]:
    svs = voronoi(SHAPE, 20, 5)
    ids = sorted(int(s) for s in np.unique(svs))
    mapping = {sv: ids[0] for sv in ids[1:4]}
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        srv.request("POST", f"/api/repo/{root}/instance", b'{"typename":"labelmap","dataname":"s"}')
        base = f"/api/node/{root}/s"
        status, _, body = srv.request("POST", f"{base}/raw/0_1_2/128_64_64/0_0_0", svs.tobytes())
        assert status == 200, body
        status, _, body = srv.request("POST", f"{base}/mappings", mapping_ops(mapping))
        assert status == 200, body
        yield srv, base, svs, mapping


def test_mapping_family(live: tuple[LiveServer, str, np.ndarray, dict[int, int]]) -> None:
    srv, base, svs, mapping = live
    query = sorted(int(s) for s in np.unique(svs))
    status, headers, body = srv.request("GET", f"{base}/mapping", json.dumps(query).encode())
    assert status == 200
    assert json.loads(body) == [mapping.get(s, s) for s in query]
    status, _, body = srv.request("GET", f"{base}/mappings")
    assert body.decode() == "".join(f"{a} {b}\n" for a, b in sorted(mapping.items()))


def test_size_family(live: tuple[LiveServer, str, np.ndarray, dict[int, int]]) -> None:
    srv, base, svs, mapping = live
    bodies = apply_mapping(svs, mapping)
    labels, counts = np.unique(bodies, return_counts=True)
    status, headers, body = srv.request("GET", f"{base}/listlabels?sizes=true")
    assert headers["content-type"] == "application/octet-stream"
    assert np.frombuffer(body, "<u8").reshape(-1, 2).tolist() == [
        [int(a), int(b)] for a, b in zip(labels, counts, strict=True)
    ]
    status, _, body = srv.request("GET", f"{base}/size/{labels[0]}")
    assert json.loads(body) == {"voxels": int(counts[0])}
    status, _, body = srv.request("GET", f"{base}/sizes", json.dumps(labels.tolist()).encode())
    assert json.loads(body) == counts.tolist()
    status, _, body = srv.request("GET", f"{base}/supervoxels/{labels[0]}")
    assert json.loads(body) == sorted([int(labels[0]), *mapping])
    assert srv.request("GET", f"{base}/lastmod/{labels[0]}")[0] == 200
    status, _, body = srv.request("GET", f"{base}/size/12345")
    assert status == 404
    assert b"12345" in body


def test_sparsevol_family(live: tuple[LiveServer, str, np.ndarray, dict[int, int]]) -> None:
    srv, base, svs, mapping = live
    bodies = apply_mapping(svs, mapping)
    body = int(next(iter(mapping.values())))
    want = bodies == body
    status, _, data = srv.request("GET", f"{base}/sparsevol/{body}")
    assert np.array_equal(paint_runs(runs_of_rles(data), SHAPE), want)
    _, _, data = srv.request("GET", f"{base}/sparsevol/{body}?format=srles")
    assert np.array_equal(paint_runs(runs_of_srles(data), SHAPE), want)
    _, _, data = srv.request("GET", f"{base}/sparsevol/{body}?format=blocks")
    assert np.array_equal(paint_blocks(data, SHAPE)[1], want)
    assert srv.request("HEAD", f"{base}/sparsevol/{body}")[0] == 200
    assert srv.request("HEAD", f"{base}/sparsevol/99")[0] == 204
    status, _, data = srv.request("GET", f"{base}/sparsevol-coarse/{body}")
    assert struct.unpack_from("<I", data, 8)[0] >= 1
    status, _, data = srv.request("GET", f"{base}/sparsevol-size/{body}")
    assert json.loads(data)["voxels"] == int(want.sum())
    assert srv.request("GET", f"{base}/sparsevol/{body}?format=nope")[0] == 400


def test_index_family(live: tuple[LiveServer, str, np.ndarray, dict[int, int]]) -> None:
    srv, base, svs, mapping = live
    body = int(next(iter(mapping.values())))
    expected = brute_index(svs, mapping, 64)[body]
    status, _, data = srv.request("GET", f"{base}/index/{body}")
    idx, blocks = index_blocks(data)
    assert blocks == expected
    idx.label = 2**40 + 3
    status, _, _ = srv.request("POST", f"{base}/index/{idx.label}", idx.SerializeToString())
    assert status == 200
    status, _, data = srv.request("GET", f"{base}/indices", f"[{idx.label}, 77]".encode())
    msg = LabelIndices()
    msg.ParseFromString(data)
    assert index_blocks(msg.indices[0].SerializeToString())[1] == expected
    assert msg.indices[1] == LabelIndex(label=77)
    status, _, data = srv.request("GET", f"{base}/indices-compressed", f"[{idx.label}]".encode())
    assert struct.unpack_from("<QQ", data)[1] == idx.label
    status, _, data = srv.request("POST", f"{base}/index/5", b"\xff")
    assert status == 400
