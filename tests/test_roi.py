"""The roi datatype over HTTP against the plain twins (``roi/_reference.py``), and on waitress."""

from __future__ import annotations

import json

import falcon.testing
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.roi import RoiStore
from cas_dvid.datatypes.roi import _reference as ref
from cas_dvid.objects import ObjectStore
from cas_dvid.testing.live import LiveServer
from cas_dvid.versions import VersionService

SPANS = [[0, 0, 5, 9], [0, 0, 0, 6], [0, 0, 5, 9], [2, 1, -3, 1], [1, 4, 2, 2]]


def new_roi(c: falcon.testing.TestClient, bs: str = "32,32,32") -> tuple[str, str]:
    root = c.simulate_post("/api/repos", json={}).json["root"]
    body = {"typename": "roi", "dataname": "r", "BlockSize": bs}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    return root, f"/api/node/{root}/r"


def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://")))


def test_roi_round_trip_sorted_as_dvid() -> None:
    c = client()
    root, base = new_roi(c)
    assert c.simulate_get(f"{base}/roi").text == "[]"
    assert c.simulate_post(f"{base}/roi", body=json.dumps(SPANS)).status_code == 200
    want = sorted({tuple(s) for s in SPANS})
    assert c.simulate_get(f"{base}/roi").json == [list(s) for s in want]
    assert c.simulate_post(f"{base}/roi", body="[[7,7,0,0]]").status_code == 200
    assert c.simulate_get(f"{base}/roi").json == [[7, 7, 0, 0]]  # POST replaces
    c.simulate_post(f"/api/node/{root}/commit", json={"note": "one"})
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    assert c.simulate_delete(f"/api/node/{child}/r/roi").status_code == 200
    assert c.simulate_get(f"/api/node/{child}/r/roi").json == []
    assert c.simulate_get(f"{base}/roi").json == [[7, 7, 0, 0]]  # the parent keeps it
    r = c.simulate_post(f"{base}/ptquery", body="[[0,224,224]]")  # allowed on a locked node
    assert r.status_code == 200 and r.json == [True]


@settings(max_examples=25, deadline=None)
@given(
    spans=st.lists(
        st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.integers(-4, 4), st.integers(0, 3)),
        max_size=12,
    ),
    points=st.lists(st.tuples(*[st.integers(-150, 150)] * 3), max_size=30),
)
def test_ptquery_and_mask_match_the_reference(
    spans: list[tuple[int, int, int, int]], points: list[tuple[int, int, int]]
) -> None:
    c = client()
    _, base = new_roi(c, "16,16,16")
    rows = [[z, y, x0, x0 + n] for z, y, x0, n in spans]
    assert c.simulate_post(f"{base}/roi", body=json.dumps(rows)).status_code == 200
    got = c.simulate_post(f"{base}/ptquery", body=json.dumps(points)).json
    stored = ref.normalize(rows)
    want = list(ref.point_query(stored, points, (16, 16, 16))) if points else []
    assert got == want
    size, offset = (40, 36, 20), (-70, -50, -30)
    mask = np.frombuffer(
        c.simulate_get(f"{base}/mask/0_1_2/40_36_20/-70_-50_-30").content, np.uint8
    ).reshape(20, 36, 40)
    assert np.array_equal(mask, ref.get_mask(stored, (16, 16, 16), offset, size))


def test_bad_input_is_400_and_changes_nothing() -> None:
    c = client()
    _, base = new_roi(c)
    c.simulate_post(f"{base}/roi", body="[[0,0,0,3]]")
    for body in ["[[0,0,5,1]]", "[[0,0,0]]", "{", '[["a",0,0,1]]', "[[0,0,0,3000000000]]"]:
        r = c.simulate_post(f"{base}/roi", body=body)
        assert r.status_code == 400, (body, r.text)
    assert c.simulate_get(f"{base}/roi").json == [[0, 0, 0, 3]]
    assert c.simulate_post(f"{base}/ptquery", body="[[1,2]]").status_code == 400
    assert c.simulate_get(f"{base}/mask/0_1_2/0_4_4/0_0_0").status_code == 400
    assert c.simulate_get(f"{base}/partition?batchsize=0").status_code == 400


def test_roi_endpoints_over_waitress() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        srv.request("POST", f"/api/repo/{root}/instance", b'{"typename":"roi","dataname":"r"}')
        base = f"/api/node/{root}/r"
        spans = [[z, y, 0, 7] for z in range(4) for y in range(4)]
        assert srv.request("POST", f"{base}/roi", json.dumps(spans).encode())[0] == 200
        status, _, body = srv.request("GET", f"{base}/roi")
        assert json.loads(body) == spans
        status, _, body = srv.request("GET", f"{base}/partition?batchsize=2")
        doc = json.loads(body)
        assert status == 200 and doc["NumTotalBlocks"] == 4 * 4 * 8
        status, _, body = srv.request("POST", f"{base}/ptquery", b"[[0,0,0],[0,0,200]]")
        assert json.loads(body) == [True, False]
        status, _, body = srv.request("GET", f"{base}/mask/0_1_2/64_64_64/0_0_0")
        assert status == 200 and len(body) == 64**3 and set(body) == {1}


def test_raw_reads_masked_by_a_roi() -> None:
    c = client()
    root, base = new_roi(c, "32,32,32")
    body = {"typename": "uint8blk", "dataname": "g", "BlockSize": "32,32,32"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    vol = np.random.default_rng(5).integers(1, 255, (64, 64, 64), dtype=np.uint8)
    g = f"/api/node/{root}/g"
    assert c.simulate_post(f"{g}/raw/0_1_2/64_64_64/0_0_0", body=vol.tobytes()).status_code == 200
    c.simulate_post(f"{base}/roi", body="[[0,0,0,0],[1,1,0,1]]")
    inside = ref.get_mask([[0, 0, 0, 0], [1, 1, 0, 1]], (32, 32, 32), (8, 4, 0), (48, 60, 64))
    got = np.frombuffer(
        c.simulate_get(f"{g}/raw/0_1_2/48_60_64/8_4_0?roi=r").content, np.uint8
    ).reshape(64, 60, 48)
    want = vol[0:64, 4:64, 8:56].copy()
    want[inside == 0] = 0
    assert np.array_equal(got, want)
    att = np.frombuffer(
        c.simulate_get(f"{g}/raw/0_1_2/48_60_64/8_4_0?roi=r&attenuation=2").content, np.uint8
    ).reshape(64, 60, 48)
    want = vol[0:64, 4:64, 8:56].copy()
    want[inside == 0] >>= 2
    assert np.array_equal(att, want)
    assert c.simulate_get(f"{g}/raw/0_1_2/8_8_8/0_0_0?roi=g").status_code == 400
    assert c.simulate_get(f"{g}/raw/0_1_2/8_8_8/0_0_0?roi=nope").status_code == 400


def test_point_query_and_mask_read_only_their_rows() -> None:
    """10,000 spans in ~2,000 rows: one point, or a one-block mask, loads O(depth) nodes."""
    from _counting import CountingBackend

    backend = CountingBackend()
    store = ObjectStore(backend, cache_bytes=0)
    versions = VersionService(store)
    rois = RoiStore.on(versions)
    uuid = versions.create_repo()
    versions.new_instance(uuid, "r", "roi")
    at = versions.resolve(uuid)
    inst = at.instance("r")
    spans = [[z, y, 4 * i, 4 * i + 1] for z in range(40) for y in range(50) for i in range(5)]
    rois.put(at, inst, json.dumps(spans).encode())
    at = versions.resolve(uuid)
    root = versions.root_at(at, inst)
    height = rois.tree.height(root)
    nodes = sum(1 for _ in rois.tree.iter_node_ids(root))
    assert nodes > 50

    def loads(fn: object) -> int:
        rois.tree.clear_cache()
        store.cache.clear()
        before = backend.gets
        fn()  # type: ignore[operator]
        return backend.gets - before

    one = loads(lambda: rois.ptquery(at, inst, b"[[130, 300, 900]]"))
    assert one <= 2 * height + 4, (one, height, nodes)  # record + a root-to-leaf path or two
    spread = loads(lambda: rois.ptquery(at, inst, b"[[0, 0, 0], [130, 1500, 1200]]"))
    assert spread <= 4 * height + 4
    mask = loads(lambda: rois.mask(at, inst, (32, 32, 32), (128, 320, 640)))
    assert mask <= 20 * height, (mask, nodes)  # the 3 x 3 rows around one block
    everything = loads(lambda: rois.spans(at, inst))
    assert everything >= nodes  # the whole ROI, for comparison
