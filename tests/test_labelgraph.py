"""labelgraph over HTTP against a plain dict model of DVID's graph semantics."""

from __future__ import annotations

import json

import falcon.testing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer


class Model:
    """DVID's labelgraph, as ``labelgraph.go`` describes it, on two dicts."""

    def __init__(self) -> None:
        self.v: dict[int, float] = {}
        self.e: dict[tuple[int, int], float] = {}

    @staticmethod
    def key(a: int, b: int) -> tuple[int, int]:
        return (min(a, b), max(a, b))

    def nbrs(self, v: int) -> list[int]:
        return sorted({b if a == v else a for a, b in self.e if v in (a, b)})

    def post(self, verts: list, edges: list) -> bool:
        have = set(self.v) | {i for i, _ in verts}
        if any(a not in have or b not in have for a, b, _ in edges):
            return False
        self.v.update(dict(verts))
        for a, b, w in edges:
            self.e[self.key(a, b)] = w
        return True

    def remove(self, v: int) -> None:
        for n in self.nbrs(v):
            self.e.pop(self.key(v, n))
        self.v.pop(v)

    def weight(self, verts: list, edges: list) -> bool:
        have = set(self.v) | {i for i, _ in verts}
        if any(a not in have or b not in have for a, b, _ in edges):
            return False
        for i, w in verts:
            self.v[i] = self.v.get(i, 0.0) + w
        for a, b, w in edges:
            self.e[self.key(a, b)] = self.e.get(self.key(a, b), 0.0) + w
        return True

    def merge(self, ids: list[int]) -> bool:
        if len(ids) < 2 or any(i not in self.v for i in ids):
            return False
        keep = ids[-1]
        total = sum(self.v[i] for i in ids)
        over: dict[int, float] = {}
        for i in ids[:-1] + [keep]:
            for n in self.nbrs(i):
                over[n] = over.get(n, 0.0) + self.e[self.key(i, n)]
        for n, w in over.items():
            if n not in ids:
                self.e[self.key(keep, n)] = w
        self.v[keep] = total
        for i in ids[:-1]:
            if i != keep and i in self.v:
                self.remove(i)
        return True

    def doc(self) -> dict:
        def num(w: float) -> float | int:
            return int(w) if w.is_integer() else w

        return {
            "Transactions": [],
            "Vertices": [{"Id": i, "Weight": num(w)} for i, w in sorted(self.v.items())],
            "Edges": [
                {"Id1": a, "Id2": b, "Weight": num(w)} for (a, b), w in sorted(self.e.items())
            ],
        }


def client() -> tuple[falcon.testing.TestClient, str]:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    root = c.simulate_post("/api/repos", json={}).json["root"]
    body = {"typename": "labelgraph", "dataname": "g"}
    assert c.simulate_post(f"/api/repo/{root}/instance", json=body).status_code == 200
    return c, f"/api/node/{root}/g"


def body(verts: list, edges: list) -> str:
    return json.dumps(
        {
            "Vertices": [{"Id": i, "Weight": w} for i, w in verts],
            "Edges": [{"Id1": a, "Id2": b, "Weight": w} for a, b, w in edges],
        }
    )


IDS = st.integers(1, 8)
W = st.integers(-3, 9).map(float)
VERTS = st.lists(st.tuples(IDS, W), max_size=4)
EDGES = st.lists(st.tuples(IDS, IDS, W).filter(lambda e: e[0] != e[1]), max_size=4)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("post"), VERTS, EDGES),
        st.tuples(st.just("weight"), VERTS, EDGES),
        st.tuples(
            st.just("merge"), st.lists(IDS, min_size=1, max_size=3, unique=True), st.just([])
        ),
        st.tuples(st.just("delete"), st.lists(IDS, max_size=2), st.just([])),
    ),
    max_size=12,
)


@settings(max_examples=30, deadline=None)
@given(OPS)
def test_operations_match_the_model(ops: list) -> None:
    c, g = client()
    m = Model()
    for op, a, b in ops:
        if op == "post":
            ok = m.post(a, b)
            r = c.simulate_post(f"{g}/subgraph", body=body(a, b))
        elif op == "weight":
            ok = m.weight(a, b)
            r = c.simulate_post(f"{g}/weight", body=body(a, b))
        elif op == "merge":
            ok = m.merge(a)
            r = c.simulate_post(f"{g}/merge", body=body([(i, 0.0) for i in a], []))
        else:
            ok = True
            if not a:  # no vertices or edges named: DVID deletes the whole graph
                m.v.clear()
                m.e.clear()
            for i in a:
                if i in m.v:
                    m.remove(i)
            r = c.simulate_delete(f"{g}/subgraph", body=body([(i, 0.0) for i in a], []))
        assert r.status_code == (200 if ok else 400), (op, a, b, r.text)
        assert c.simulate_get(f"{g}/subgraph").json == m.doc(), (op, a, b)
    for v in range(1, 9):
        r = c.simulate_get(f"{g}/neighbors/{v}")
        if v not in m.v:
            assert r.status_code == 400
            continue
        doc = r.json
        assert [x["Id"] for x in doc["Vertices"]] == [v, *m.nbrs(v)]
        got_edges = {(e["Id1"], e["Id2"]): e["Weight"] for e in doc["Edges"] or []}
        assert got_edges == {m.key(v, n): m.e[m.key(v, n)] for n in m.nbrs(v)}


def test_subgraph_of_vertices_takes_each_edge_once_in_dvids_order() -> None:
    c, g = client()
    verts = [(i, float(i)) for i in range(1, 6)]
    edges = [(1, 2, 1.5), (2, 3, 2.0), (3, 4, 3.0), (1, 5, 4.0)]
    assert c.simulate_post(f"{g}/subgraph", body=body(verts, edges)).status_code == 200
    doc = c.simulate_get(f"{g}/subgraph", body=body([(2, 0), (1, 0)], [])).json
    assert [v["Id"] for v in doc["Vertices"]] == [2, 1]
    # From 2: edges to 1 and 3 (neither used yet); from 1: only 1-5 (2 is used).
    assert [(e["Id1"], e["Id2"]) for e in doc["Edges"]] == [(1, 2), (2, 3), (1, 5)]
    assert doc["Edges"][0]["Weight"] == 1.5


def test_merge_sums_weights_and_explicit_weights_win() -> None:
    c, g = client()
    verts = [(1, 10.0), (2, 5.0), (3, 1.0), (4, 1.0)]
    edges = [(1, 3, 2.0), (2, 3, 3.0), (2, 4, 1.0), (1, 2, 7.0)]
    c.simulate_post(f"{g}/subgraph", body=body(verts, edges))
    merge = {"Vertices": [{"Id": 2}, {"Id": 1}], "Edges": [{"Id1": 1, "Id2": 4, "Weight": 9}]}
    assert c.simulate_post(f"{g}/merge", body=json.dumps(merge)).status_code == 200
    doc = c.simulate_get(f"{g}/subgraph").json
    assert doc["Vertices"] == [
        {"Id": 1, "Weight": 15},
        {"Id": 3, "Weight": 1},
        {"Id": 4, "Weight": 1},
    ]
    assert doc["Edges"] == [{"Id1": 1, "Id2": 3, "Weight": 5}, {"Id1": 1, "Id2": 4, "Weight": 9}]


def test_properties_versions_and_bad_input() -> None:
    c, g = client()
    root = g.split("/")[3]
    c.simulate_post(f"{g}/subgraph", body=body([(1, 1.0), (2, 2.0)], [(1, 2, 0.5)]))
    assert c.simulate_post(f"{g}/property/1/color", body=b"\x00red").status_code == 200
    assert c.simulate_post(f"{g}/property/2/1/kind", body=b"syn").status_code == 200
    assert c.simulate_get(f"{g}/property/1/color").content == b"\x00red"
    assert c.simulate_get(f"{g}/property/1/2/kind").content == b"syn"  # either order
    assert c.simulate_get(f"{g}/property/2/color").status_code == 400  # as DVID
    before = c.simulate_get(f"{g}/subgraph").json
    bad = [
        ("post", "subgraph", body([(3, 1.0)], [(3, 9, 1.0)]), "vertex 9 does not exist"),
        ("post", "subgraph", '{"Vertices": [{"Id": 0}], "Edges": []}', "vertex Id"),
        ("post", "subgraph", '{"Vertices": [{"Id": -4}], "Edges": []}', "vertex Id"),
        ("post", "subgraph", '{"Vertices": []}', "required"),
        ("post", "subgraph", '{"Vertices": [{"Id": 1, "Weight": "x"}], "Edges": []}', "Weight"),
        ("post", "subgraph", body([], [(1, 1, 1.0)]), "two different"),
        ("post", "subgraph", "[1,", "not valid JSON"),
        ("post", "merge", body([(1, 0)], []), "at least two"),
        ("post", "merge", body([(1, 0), (7, 0)], []), "vertex 7"),
        ("post", "weight", body([], [(1, 8, 1.0)]), "vertex 8"),
        ("get", "neighbors/abc", "", "Vertex number"),
        ("get", "neighbors/9", "", "vertex 9"),
        ("post", "property/9/x", "v", "no vertex 9"),
        ("post", "property/1/5/x", "v", "no edge 1-5"),
        ("post", "undomerge", "", "undomerge not yet implemented"),
        ("post", "propertytransaction/vertices/x", "", "not offered"),
    ]
    for method, path, text, message in bad:
        r = c.simulate_request(method.upper(), f"{g}/{path}", body=text)
        assert r.status_code == 400 and message in r.text, (path, text, r.text)
    assert c.simulate_get(f"{g}/subgraph").json == before
    # Versioned: a child's edits leave the locked parent as it was.
    c.simulate_post(f"/api/node/{root}/commit", json={"note": "graph v1"})
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    r = c.simulate_post(f"/api/node/{root}/g/subgraph", body=body([(5, 1.0)], []))
    assert r.status_code != 200  # locked
    assert (
        c.simulate_post(f"/api/node/{child}/g/merge", body=body([(2, 0), (1, 0)], [])).status_code
        == 200
    )
    assert c.simulate_get(f"/api/node/{child}/g/subgraph").json["Vertices"] == [
        {"Id": 1, "Weight": 3}
    ]
    assert c.simulate_get(f"{g}/subgraph").json == before
    assert c.simulate_get(f"/api/node/{child}/g/property/1/color").content == b"\x00red"
    assert c.simulate_get(f"/api/node/{child}/g/property/1/2/kind").status_code == 400  # edge gone
    diff = c.simulate_get(f"/api/cas/diff/{root}/{child}/g").json
    assert "vertex 2" in diff["removed"] and "vertex 1" in diff["changed"]
    assert c.simulate_delete(f"/api/node/{child}/g/subgraph").status_code == 200
    assert c.simulate_get(f"/api/node/{child}/g/subgraph").json == {
        "Transactions": [],
        "Vertices": [],
        "Edges": [],
    }


def test_labelgraph_over_waitress() -> None:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        srv.request(
            "POST", f"/api/repo/{root}/instance", b'{"typename":"labelgraph","dataname":"g"}'
        )
        g = f"/api/node/{root}/g"
        status, _, text = srv.request(
            "POST", f"{g}/subgraph", body([(1, 2.0), (2, 3.0)], [(2, 1, 0.25)]).encode()
        )
        assert status == 200, text
        assert (
            srv.request("POST", f"{g}/weight", body([(1, 1.0)], [(1, 2, 1.0)]).encode())[0] == 200
        )
        status, headers, data = srv.request("GET", f"{g}/neighbors/1")
        assert status == 200 and headers["content-type"].startswith("application/json")
        assert json.loads(data) == {
            "Transactions": None,
            "Vertices": [{"Id": 1, "Weight": 3}, {"Id": 2, "Weight": 3}],
            "Edges": [{"Id1": 1, "Id2": 2, "Weight": 1.25}],
        }
        assert srv.request("POST", f"{g}/property/1/note", b"hi")[0] == 200
        assert srv.request("GET", f"{g}/property/1/note")[2] == b"hi"
        assert (
            srv.request("POST", f"{g}/merge/nohistory", body([(2, 0), (1, 0)], []).encode())[0]
            == 200
        )
        status, _, data = srv.request("GET", f"{g}/subgraph")
        assert json.loads(data)["Vertices"] == [{"Id": 1, "Weight": 6}]
        status, _, data = srv.request("GET", "/api/help/labelgraph")
        assert status == 200 and b"labelgraph" in data


@pytest.mark.parametrize("case_key", ["id", "ID", "Id"])
def test_field_names_match_case_insensitively_as_go(case_key: str) -> None:
    c, g = client()
    doc = {"vertices": [{case_key: 4, "weight": 2}], "edges": []}
    assert c.simulate_post(f"{g}/subgraph", body=json.dumps(doc)).status_code == 200
    assert c.simulate_get(f"{g}/subgraph").json["Vertices"] == [{"Id": 4, "Weight": 2}]
