"""Repo, node and keyvalue endpoints: DVID's shapes, messages and status codes."""

from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile
from collections.abc import Iterator

import falcon.testing
import pytest

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.api import protobuf
from cas_dvid.testing.live import LiveServer


@pytest.fixture
def client() -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(ServerConfig("memory://", max_body_bytes=1 << 20)))


def new_repo(c: falcon.testing.TestClient, kv: str = "kv") -> str:
    root = c.simulate_post("/api/repos", json={"alias": "r", "description": "d"}).json["root"]
    r = c.simulate_post(f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": kv})
    assert r.status_code == 200, r.text
    return root


def post(
    c: falcon.testing.TestClient, path: str, body: bytes | None = None, **kw: object
) -> falcon.testing.Result:
    return c.simulate_post(path, body=body, **kw)  # type: ignore[arg-type]


# -- repos -----------------------------------------------------------------------------


def test_repo_info_shape(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    info = client.simulate_get(f"/api/repo/{root[:4]}/info").json
    assert info["Root"] == root and info["Alias"] == "r" and info["Description"] == "d"
    assert set(info) >= {
        "Log",
        "Properties",
        "DataInstances",
        "DAG",
        "MutationID",
        "Created",
        "Updated",
    }
    node = info["DAG"]["Nodes"][root]
    assert node["VersionID"] == 1 and node["Locked"] is False and node["Branch"] == ""
    assert node["Parents"] == [] and node["Children"] == []
    base = info["DataInstances"]["kv"]["Base"]
    assert base["TypeName"] == "keyvalue" and base["RepoUUID"] == root and base["Versioned"] is True
    assert client.simulate_get("/api/repos/info").json[root]["Root"] == root
    assert client.simulate_head(f"/api/repo/{root}").status_code == 200


def test_repo_info_post_and_log(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    assert client.simulate_post(f"/api/repo/{root}/info", json={"alias": "new"}).status_code == 200
    assert client.simulate_get(f"/api/repo/{root}/info").json["Alias"] == "new"
    client.simulate_post(f"/api/repo/{root}/log", json={"log": ["one", "two"]})
    log = client.simulate_get(f"/api/repo/{root}/log").json["log"]
    assert log[0].split("  ", 1)[1].startswith('New data instance "kv" of type "keyvalue"')
    assert [x.split("  ", 1)[1] for x in log[1:]] == ["one", "two"]
    missing = client.simulate_post(f"/api/repo/{root}/log", json={"lines": ["x"]})
    assert missing.status_code == 400 and "Could not find 'log' value" in missing.text


def test_create_repo_with_given_root(client: falcon.testing.TestClient) -> None:
    uuid = "0123456789abcdef0123456789abcdef"
    assert client.simulate_post("/api/repos", json={"root": uuid}).json == {"root": uuid}
    r = client.simulate_post("/api/repos", json={"root": uuid})
    assert r.status_code == 400 and "already exists" in r.text


# -- nodes: commit, newversion, branch, tag, merge --------------------------------------


def test_commit_newversion_branch(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    assert client.simulate_get(f"/api/node/{root}/status").json == {"Locked": False}
    r = client.simulate_post(f"/api/node/{root}/newversion", json={})
    assert r.status_code == 400 and "can't branch an unlocked node" in r.text
    done = client.simulate_post(f"/api/node/{root}/commit", json={"note": "v1", "log": ["l1"]}).json
    assert done["committed"] == root and len(done["commit_id"]) == 64
    assert client.simulate_get(f"/api/node/{root}/commit").json == {"Locked": True}
    again = client.simulate_post(f"/api/node/{root}/commit", json={})
    assert again.status_code == 400 and f"Cannot do post on locked node {root}" in again.text
    child = client.simulate_post(f"/api/node/{root}/newversion", json={"note": "c"}).json["child"]
    second = client.simulate_post(f"/api/node/{root}/newversion", json={})
    assert second.status_code == 400 and "branch already exists with given name" in second.text
    side = client.simulate_post(f"/api/node/{root}/branch", json={"branch": "side"}).json["child"]
    reuse = client.simulate_post(f"/api/node/{root}/branch", json={"branch": "side"})
    assert reuse.status_code == 400 and "branch already exists" in reuse.text
    for bad in ("", "master"):
        assert (
            client.simulate_post(f"/api/node/{root}/branch", json={"branch": bad}).status_code
            == 400
        )
    info = client.simulate_get(f"/api/repo/{root}/info").json
    nodes = info["DAG"]["Nodes"]
    assert nodes[child]["Parents"] == [1] and nodes[side]["Branch"] == "side"
    assert sorted(nodes[root]["Children"]) == [2, 3]
    assert nodes[root]["CommitID"] == done["commit_id"]
    assert client.simulate_get(f"/api/repo/{root}/branch-versions/side").json == [side, root]
    assert client.simulate_get(f"/api/repo/{root}/branch-versions/master").json == [child, root]
    assert client.simulate_get(f"/api/node/{root}:side/status").json == {"Locked": False}


def test_note_and_log_at_node(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    client.simulate_post(f"/api/node/{root}/note", json={"note": "hello"})
    assert client.simulate_get(f"/api/node/{root}/note").json == {"note": "hello"}
    client.simulate_post(f"/api/node/{root}/log", json={"log": ["x"]})
    assert client.simulate_get(f"/api/node/{root}/log").json["log"][0].endswith("  x")
    client.simulate_post(f"/api/node/{root}/commit", json={})
    assert client.simulate_post(f"/api/node/{root}/note", json={"note": "no"}).status_code == 400


def test_tag_creates_committed_child(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    client.simulate_post(f"/api/node/{root}/commit", json={})
    r = client.simulate_post(f"/api/node/{root}/tag", json={"tag": "v1", "note": "release"})
    child = r.json["child"]
    node = client.simulate_get(f"/api/repo/{root}/info").json["DAG"]["Nodes"][child]
    assert node["Branch"] == "tag-v1" and node["Locked"] is True


def test_merge_conflict_free_and_conflicts(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    post(client, f"/api/node/{root}/kv/key/shared", b"base")
    client.simulate_post(f"/api/node/{root}/commit", json={})
    a = client.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    b = client.simulate_post(f"/api/node/{root}/branch", json={"branch": "b"}).json["child"]
    post(client, f"/api/node/{a}/kv/key/only-a", b"A")
    post(client, f"/api/node/{b}/kv/key/only-b", b"B")
    unlocked = client.simulate_post(
        f"/api/repo/{root}/merge", json={"mergeType": "conflict-free", "parents": [a, b]}
    )
    assert unlocked.status_code == 400 and "unlocked" in unlocked.text
    for n in (a, b):
        client.simulate_post(f"/api/node/{n}/commit", json={})
    bad_type = client.simulate_post(
        f"/api/repo/{root}/merge", json={"mergeType": "tree", "parents": [a, b]}
    )
    assert bad_type.status_code == 400
    one = client.simulate_post(
        f"/api/repo/{root}/merge", json={"mergeType": "conflict-free", "parents": [a]}
    )
    assert one.status_code == 400
    m = client.simulate_post(
        f"/api/repo/{root}/merge", json={"mergeType": "conflict-free", "parents": [a, b]}
    ).json["child"]
    assert client.simulate_get(f"/api/node/{m}/kv/keys").json == ["only-a", "only-b", "shared"]
    node = client.simulate_get(f"/api/repo/{root}/info").json["DAG"]["Nodes"][m]
    assert node["Locked"] is False and node["Branch"] == "" and len(node["Parents"]) == 2
    # now a real conflict: both sides change "shared" differently
    client.simulate_post(f"/api/node/{m}/commit", json={})
    x = client.simulate_post(f"/api/node/{m}/newversion", json={}).json["child"]
    y = client.simulate_post(f"/api/node/{m}/branch", json={"branch": "y"}).json["child"]
    post(client, f"/api/node/{x}/kv/key/shared", b"X")
    post(client, f"/api/node/{y}/kv/key/shared", b"Y")
    for n in (x, y):
        client.simulate_post(f"/api/node/{n}/commit", json={})
    before = len(client.simulate_get(f"/api/repo/{root}/info").json["DAG"]["Nodes"])
    r = client.simulate_post(
        f"/api/repo/{root}/merge", json={"mergeType": "conflict-free", "parents": [x, y]}
    )
    assert r.status_code == 400 and "kv:shared" in r.text and "1 conflicting" in r.text
    assert len(client.simulate_get(f"/api/repo/{root}/info").json["DAG"]["Nodes"]) == before


# -- uuids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("zzzz", "could not find UUID", id="non-hex"),
        pytest.param("ffffffffffffffff", "could not find UUID", id="unknown"),
        pytest.param("{root}:nobranch", 'branch "nobranch" not found in repo', id="bad-branch"),
        pytest.param(
            "{root}:master~5", 'parent 5 is out of range for branch "master"', id="past-root"
        ),
        pytest.param(
            "{root}:master~x", 'can\'t parse parent "x" in branch "master"', id="bad-offset"
        ),
        pytest.param("a:b:c", 'bad UUID specification "a:b:c"', id="two-colons"),
    ],
)
def test_bad_uuids(client: falcon.testing.TestClient, spec: str, message: str) -> None:
    root = new_repo(client)
    r = client.simulate_get(f"/api/node/{spec.format(root=root)}/status")
    assert r.status_code == 400 and message in r.text
    assert r.headers["content-type"].startswith("text/plain")


def test_ambiguous_prefix(client: falcon.testing.TestClient) -> None:
    a = client.simulate_post("/api/repos", json={"root": "abc00000000000000000000000000000"}).json[
        "root"
    ]
    client.simulate_post("/api/repos", json={"root": "abc11111111111111111111111111111"})
    r = client.simulate_get("/api/repo/abc/info")
    assert r.status_code == 400 and "more than one UUID matches abc" in r.text
    assert client.simulate_get("/api/repo/abc0/info").json["Root"] == a
    assert client.simulate_get("/api/node/:master/status").status_code == 400  # two repos


# -- instances: bad input -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(b"{not json", "Malformed JSON request in body", id="malformed"),
        pytest.param(b"[1, 2]", "must be a JSON object", id="not-object"),
        pytest.param(
            json.dumps({"typename": "keyvalue"}).encode(),
            "requires specification of valid 'dataname'",
            id="no-name",
        ),
        pytest.param(
            json.dumps({"dataname": "x"}).encode(),
            "requires specification of valid 'typename'",
            id="no-type",
        ),
        pytest.param(
            json.dumps({"typename": "nosuch", "dataname": "x"}).encode(),
            "Data type 'nosuch' is not supported",
            id="unknown-type",
        ),
        pytest.param(
            json.dumps({"typename": "keyvalue", "dataname": "x", "Compression": 5}).encode(),
            "Setting for 'Compression' was not a string: 5",
            id="non-string",
        ),
        pytest.param(
            json.dumps({"typename": "keyvalue", "dataname": "kv"}).encode(),
            'Data named "kv" already exists in repo',
            id="duplicate",
        ),
        pytest.param(
            json.dumps({"typename": "keyvalue", "dataname": "log"}).encode(),
            'cannot use reserved name "log"',
            id="reserved",
        ),
        pytest.param(
            json.dumps({"typename": "keyvalue", "dataname": "x", "versioned": "maybe"}).encode(),
            "Illegal setting for 'versioned'",
            id="bad-bool",
        ),
    ],
)
def test_bad_instance_requests(
    client: falcon.testing.TestClient, body: bytes, message: str
) -> None:
    root = new_repo(client)
    r = post(client, f"/api/repo/{root}/instance", body)
    assert r.status_code == 400 and message in r.text, r.text
    assert list(client.simulate_get(f"/api/repo/{root}/info").json["DataInstances"]) == ["kv"]


def test_instance_at_locked_node_refused(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    client.simulate_post(f"/api/node/{root}/commit", json={})
    r = client.simulate_post(
        f"/api/repo/{root}/instance", json={"typename": "keyvalue", "dataname": "x"}
    )
    assert (
        r.status_code == 400
        and f"New data instance cannot be created on locked node {root}" in r.text
    )


def test_unknown_instance(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    r = client.simulate_get(f"/api/node/{root}/nope/keys")
    assert r.status_code == 400 and "invalid data instance name" in r.text


def test_tags(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    client.simulate_post(f"/api/node/{root}/kv/tags", json={"a": "1"})
    client.simulate_post(f"/api/node/{root}/kv/tags", json={"b": "2"})
    assert client.simulate_get(f"/api/node/{root}/kv/tags").json == {"Tags": {"a": "1", "b": "2"}}
    client.simulate_post(f"/api/node/{root}/kv/tags", json={"c": "3"}, params={"replace": "true"})
    assert client.simulate_get(f"/api/node/{root}/kv/tags").json == {"Tags": {"c": "3"}}


def test_unversioned_instance_writable_everywhere(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    client.simulate_post(
        f"/api/repo/{root}/instance",
        json={"typename": "keyvalue", "dataname": "u", "versioned": "false"},
    )
    client.simulate_post(f"/api/node/{root}/commit", json={})
    child = client.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    assert post(client, f"/api/node/{root}/u/key/k", b"at-locked-root").status_code == 200
    assert client.simulate_get(f"/api/node/{child}/u/key/k").text == "at-locked-root"
    post(client, f"/api/node/{child}/u/key/k", b"from-child")
    assert client.simulate_get(f"/api/node/{root}/u/key/k").text == "from-child"


# -- keyvalue ---------------------------------------------------------------------------------


def test_key_round_trip_and_locking(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    big = bytes(range(256)) * 40
    assert post(client, f"/api/node/{root}/kv/key/small", b"v").status_code == 200
    post(client, f"/api/node/{root}/kv/key/big", big)
    post(client, f"/api/node/{root}/kv/key/empty", b"")
    assert client.simulate_get(f"/api/node/{root}/kv/key/big").content == big
    assert client.simulate_get(f"/api/node/{root}/kv/key/empty").content == b""
    assert client.simulate_head(f"/api/node/{root}/kv/key/small").status_code == 200
    assert client.simulate_head(f"/api/node/{root}/kv/key/none").status_code == 404
    missing = client.simulate_get(f"/api/node/{root}/kv/key/none")
    assert missing.status_code == 404 and 'Key "none" not found' in missing.text
    client.simulate_post(f"/api/node/{root}/commit", json={})
    locked = post(client, f"/api/node/{root}/kv/key/small", b"w")
    assert locked.status_code == 400
    assert f'Cannot do POST on endpoint "key" of locked node {root}' in locked.text
    assert client.simulate_delete(f"/api/node/{root}/kv/key/small").status_code == 400
    assert client.simulate_get(f"/api/node/{root}/kv/key/small").text == "v"


def test_delete_at_child_hides_key_only_there(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    post(client, f"/api/node/{root}/kv/key/a", b"1")
    post(client, f"/api/node/{root}/kv/key/b", b"2")
    client.simulate_post(f"/api/node/{root}/commit", json={})
    child = client.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    assert client.simulate_delete(f"/api/node/{child}/kv/key/a").status_code == 200
    assert client.simulate_delete(f"/api/node/{child}/kv/key/never").status_code == 200
    assert client.simulate_get(f"/api/node/{child}/kv/keys").json == ["b"]
    assert client.simulate_get(f"/api/node/{root}/kv/keys").json == ["a", "b"]
    assert client.simulate_get(f"/api/node/{child}/kv/key/a").status_code == 404
    diff = client.simulate_get(f"/api/cas/diff/{root}/{child}/kv").json
    assert diff["removed"] == ["a"] and diff["added"] == [] and diff["changed"] == []


@pytest.mark.parametrize(
    ("headers", "params", "status", "body", "content_range"),
    [
        pytest.param({"Range": "bytes=2-4"}, {}, 206, b"234", "bytes 2-4/10", id="range"),
        pytest.param({"Range": "bytes=7-"}, {}, 206, b"789", "bytes 7-9/10", id="open-range"),
        pytest.param({"Range": "bytes=-2"}, {}, 206, b"89", "bytes 8-9/10", id="suffix"),
        pytest.param({"Range": "bytes=5-100"}, {}, 206, b"56789", "bytes 5-9/10", id="past-end"),
        pytest.param({"Range": "bytes=20-"}, {}, 416, None, "bytes */10", id="unsatisfiable"),
        pytest.param({}, {"byte_start": "1", "byte_end": "3"}, 200, b"123", None, id="byte-params"),
        pytest.param(
            {},
            {"byte_start": "x", "byte_end": "2"},
            400,
            b"byte_start must be an unsigned integer",
            None,
            id="bad-param",
        ),
        pytest.param(
            {},
            {"byte_start": "1"},
            400,
            b"requires both byte_start and byte_end",
            None,
            id="half-param",
        ),
        pytest.param(
            {},
            {"byte_start": "5", "byte_end": "2"},
            400,
            b"byte_start 5 must be <= byte_end 2",
            None,
            id="reversed",
        ),
        pytest.param(
            {},
            {"byte_start": "3", "byte_end": "10"},
            400,
            b"byte_end 10 is outside value",
            None,
            id="end-outside",
        ),
        pytest.param({"Range": "lines=1-2"}, {}, 400, None, None, id="bad-unit"),
    ],
)
def test_key_byte_ranges(
    client: falcon.testing.TestClient,
    headers: dict[str, str],
    params: dict[str, str],
    status: int,
    body: bytes | None,
    content_range: str | None,
) -> None:
    root = new_repo(client)
    post(client, f"/api/node/{root}/kv/key/digits", b"0123456789")
    r = client.simulate_get(f"/api/node/{root}/kv/key/digits", headers=headers, params=params)
    assert r.status_code == status, r.text
    if body is not None:
        assert r.content == body if status < 400 else body in r.content
    assert r.headers.get("content-range") == content_range


@pytest.mark.parametrize(
    "key", ["with space", "ünïcödé", "a+b=c&d", "semi;colon", "100%", "q?x", "#hash"]
)
def test_keys_with_escaped_characters(client: falcon.testing.TestClient, key: str) -> None:
    from urllib.parse import quote

    root = new_repo(client)
    path = f"/api/node/{root}/kv/key/{quote(key, safe='')}"
    assert post(client, path, b"v").status_code == 200
    assert client.simulate_get(path).text == "v"
    assert client.simulate_get(f"/api/node/{root}/kv/keys").json == [key]


def test_key_with_encoded_slash_is_refused(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    r = post(client, f"/api/node/{root}/kv/key/a%2Fb", b"v")
    assert r.status_code == 400 and "must not contain '/'" in r.text
    assert client.simulate_get(f"/api/node/{root}/kv/keys").json == []


def test_keyrange_inclusive_and_values(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    for k in ("a", "b", "c", "d"):
        post(client, f"/api/node/{root}/kv/key/{k}", json.dumps({"k": k}).encode())
    assert client.simulate_get(f"/api/node/{root}/kv/keyrange/b/c").json == ["b", "c"]
    assert client.simulate_get(f"/api/node/{root}/kv/keyrange/b/bz").json == ["b"]
    pb = client.simulate_get(f"/api/node/{root}/kv/keyrangevalues/b/d")
    assert protobuf.decode_keyvalues(pb.content) == [
        (k, json.dumps({"k": k}).encode()) for k in "bcd"
    ]
    js = client.simulate_get(f"/api/node/{root}/kv/keyrangevalues/a/b", params={"json": "true"})
    assert js.json == {"a": {"k": "a"}, "b": {"k": "b"}}
    tar = client.simulate_get(f"/api/node/{root}/kv/keyrangevalues/c/d", params={"tar": "true"})
    with tarfile.open(fileobj=io.BytesIO(tar.content)) as t:
        assert {m.name: t.extractfile(m).read() for m in t.getmembers()} == {  # type: ignore[union-attr]
            "c": b'{"k": "c"}',
            "d": b'{"k": "d"}',
        }


def test_keyvalues_get_and_post(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    body = protobuf.encode_keyvalues([("x", b"1"), ("y", b"2"), ("z", b"3" * 3000)])
    assert post(client, f"/api/node/{root}/kv/keyvalues", body).status_code == 200
    r = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues", body=protobuf.encode_keys(["y", "missing"])
    )
    assert protobuf.decode_keyvalues(r.content) == [("y", b"2"), ("missing", b"")]
    r = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues",
        body=protobuf.encode_keys(["x"], [("z", 10, 12), ("y", 0, 0)]),
    )
    assert protobuf.decode_keyvalues(r.content) == [("x", b"1"), ("z", b"333"), ("y", b"2")]
    out = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues", body=protobuf.encode_keys([], [("y", 0, 5)])
    )
    assert (
        out.status_code == 400
        and 'byte_end 5 is outside value for key "y" with 1 bytes' in out.text
    )
    post(client, f"/api/node/{root}/kv/key/j", b'{"a": 1}')
    r = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues", body=b'["j", "nope"]', params={"json": "true"}
    )
    assert r.content == b'{"j":{"a": 1},"nope":{}}'
    both = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues", body=b'["j"]', params={"json": "true", "tar": "true"}
    )
    assert both.status_code == 400 and "can only specify tar or json output, not both" in both.text
    bad = client.simulate_get(
        f"/api/node/{root}/kv/keyvalues", body=b'{"j": 1}', params={"json": "true"}
    )
    assert bad.status_code == 400
    garbage = post(client, f"/api/node/{root}/kv/keyvalues", b"\xff\xff\xff")
    assert garbage.status_code == 400 and "protobuf" in garbage.text


def test_body_over_limit_is_413(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    r = post(client, f"/api/node/{root}/kv/key/huge", b"x" * ((1 << 20) + 1))
    assert r.status_code == 413 and "limit" in r.text
    assert client.simulate_get(f"/api/node/{root}/kv/keys").json == []


def test_unknown_keyvalue_endpoint(client: falcon.testing.TestClient) -> None:
    root = new_repo(client)
    r = client.simulate_get(f"/api/node/{root}/kv/nonsense")
    assert r.status_code == 400
    assert r.text.startswith(
        f'Bad API call (/api/node/{root}/kv/nonsense) for data "kv".  See API help at http://'
    )


# -- a real waitress server: every endpoint family once, and cut-off bodies ------------------


@pytest.fixture
def live() -> Iterator[LiveServer]:
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        yield srv


def _json(srv: LiveServer, method: str, path: str, doc: object | None = None) -> object:
    status, _, body = srv.request(method, path, None if doc is None else json.dumps(doc).encode())
    assert status == 200, body
    return json.loads(body) if body else None


def test_families_over_waitress(live: LiveServer) -> None:
    root = _json(live, "POST", "/api/repos", {"alias": "w"})["root"]  # type: ignore[index]
    _json(live, "POST", f"/api/repo/{root}/instance", {"typename": "keyvalue", "dataname": "kv"})
    assert live.request("POST", f"/api/node/{root}/kv/key/k", b"value")[0] == 200
    assert live.request("GET", f"/api/node/{root}/kv/key/k")[2] == b"value"
    assert _json(live, "GET", f"/api/node/{root}/kv/info")["Base"]["Name"] == "kv"  # type: ignore[index]
    assert root in _json(live, "GET", "/api/repos/info")  # type: ignore[operator]
    _json(live, "POST", f"/api/node/{root}/commit", {"note": "n"})
    child = _json(live, "POST", f"/api/node/{root}/newversion", {})["child"]  # type: ignore[index]
    assert _json(live, "GET", f"/api/cas/diff/{root}/{child}/kv")["changed"] == []  # type: ignore[index]
    status, headers, body = live.request("GET", "/api/node/ffff/status")
    assert status == 400 and headers["content-type"].startswith("text/plain")
    assert body.endswith(b"(/api/node/ffff/status).\n")


def test_request_cut_off_mid_body_stores_nothing(live: LiveServer) -> None:
    root = _json(live, "POST", "/api/repos", {})["root"]  # type: ignore[index]
    _json(live, "POST", f"/api/repo/{root}/instance", {"typename": "keyvalue", "dataname": "kv"})
    with socket.create_connection(("127.0.0.1", live.port)) as s:
        s.sendall(
            f"POST /api/node/{root}/kv/key/partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".encode()
            + b"x" * 5000
        )
    assert _json(live, "GET", f"/api/node/{root}/kv/keys") == []
    conn = http.client.HTTPConnection("127.0.0.1", live.port)
    conn.request("GET", f"/api/node/{root}/kv/key/partial")
    assert conn.getresponse().status == 404
