"""Proofreading over HTTP: DVID's replies and error texts, in-process and on real waitress."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import falcon.testing
import numpy as np
import pytest
from _bodies import new_labelmap, post_volume, voronoi
from _mutations import rle_body

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.testing.live import LiveServer

SHAPE = (32, 32, 64)


@pytest.fixture
def world() -> Iterator[tuple[falcon.testing.TestClient, str, str, np.ndarray]]:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://", allow_split=True)))
    root, base = new_labelmap(c, blocksize="16,16,16")
    vol = voronoi(SHAPE, 8, 3)
    post_volume(c, base, vol)
    yield c, root, base, vol


def ids(vol: np.ndarray) -> list[int]:
    return sorted(int(s) for s in np.unique(vol))


def test_merge_reply_and_errors(
    world: tuple[falcon.testing.TestClient, str, str, np.ndarray],
) -> None:
    c, root, base, vol = world
    a, b, d = ids(vol)[:3]
    r = c.simulate_post(f"{base}/merge?u=alice&app=neu3", body=json.dumps([a, b]))
    assert r.status_code == 200, r.text
    mid = r.json["MutationID"]
    assert r.text == f'{{"MutationID": {mid}}}'
    lastmod = c.simulate_get(f"{base}/lastmod/{a}").json
    assert lastmod["mutation id"] == mid and lastmod["last mod user"] == "alice"
    assert lastmod["last mod app"] == "neu3"
    for body, text in [
        ("[1, 2", "Bad merge op JSON"),
        (json.dumps([a]), f"invalid merge tuple [{a}], need at least target and to-merge labels"),
        (json.dumps([a, 0]), "cannot contain background label 0"),
        (json.dumps([a, -1]), "Bad merge op JSON"),
        (json.dumps([a, 2**60]), f"Error on merge: can't merge non-existent label {2**60}"),
        (json.dumps([2**60, d]), f"Error on merge: can't merge into a non-existent label {2**60}"),
        (json.dumps([a, b]), f"Error on merge: can't merge non-existent label {b}"),
    ]:
        r = c.simulate_post(f"{base}/merge", body=body)
        assert r.status_code == 400 and text in r.text, (body, r.text)
    assert c.simulate_get(f"{base}/merge").status_code == 400
    records = c.simulate_get(f"{base}/mutations").json
    assert [x["MutationID"] for x in records] == [mid]


def test_cleave_renumber_and_log(
    world: tuple[falcon.testing.TestClient, str, str, np.ndarray],
) -> None:
    c, root, base, vol = world
    a, b, d = ids(vol)[:3]
    c.simulate_post(f"{base}/merge", body=json.dumps([a, b, d]))
    r = c.simulate_post(f"{base}/cleave/{a}?u=bob", body=json.dumps([d]))
    assert r.status_code == 200, r.text
    new, mid = r.json["CleavedLabel"], r.json["MutationID"]
    assert r.text == f'{{"CleavedLabel": {new}, "MutationID": {mid}}}'
    assert c.simulate_get(f"{base}/mapping", body=json.dumps([d])).json == [new]
    assert c.simulate_get(f"{base}/size/{new}").json == {"voxels": int((vol == d).sum())}
    assert c.simulate_post(f"{base}/cleave/0", body="[1]").text.startswith(
        "Label 0 is protected background value and cannot be used as cleave target"
    )
    assert "no cleave supervoxels JSON" in c.simulate_post(f"{base}/cleave/{a}").text
    assert "bad cleave supervoxels JSON" in c.simulate_post(f"{base}/cleave/{a}", body="{").text
    r = c.simulate_post(f"{base}/renumber", body=json.dumps([2**50, new, 2**50 + 1, a]))
    assert r.status_code == 200 and r.text == ""
    assert c.simulate_get(f"{base}/mapping", body=json.dumps([a, b, d])).json == [
        2**50 + 1,
        2**50 + 1,
        2**50,
    ]
    r = c.simulate_post(f"{base}/renumber", body=json.dumps([2**50, 2**50 + 1]))
    assert r.status_code == 400
    assert "target label for renumber (1125899906842624) already exists" in r.text
    assert "must be even list" in c.simulate_post(f"{base}/renumber", body="[1,2,3]").text
    log = c.simulate_get(f"{base}/mutations").json
    assert [x["Action"] for x in log] == [
        "merge-complete",
        "cleave-complete",
        "renumber-complete",
        "renumber-complete",
    ]
    mids = [x["MutationID"] for x in log]
    assert mids == sorted(mids) and len(set(mids)) == 4
    after = c.simulate_get(f"{base}/mutations?since={mids[1]}").json
    assert [x["MutationID"] for x in after] == mids[2:]
    rng = c.simulate_get(f"{base}/mutations-range/{mids[1]}/{mids[2]}?rangefmt=mutids").json
    assert [x["MutationID"] for x in rng] == mids[1:3]
    raw = c.simulate_get(f"{base}/mutations").text
    assert raw.startswith('[{"Action":"merge-complete"') and ", " not in raw.split('"Labels"')[0]


def test_split_supervoxel_and_split(
    world: tuple[falcon.testing.TestClient, str, str, np.ndarray],
) -> None:
    c, root, base, vol = world
    sv = max(ids(vol), key=lambda s: int((vol == s).sum()))
    mask = np.zeros(vol.shape, bool)
    mask[:16] = True
    if not ((vol == sv) & mask).any() or not ((vol == sv) & ~mask).any():
        mask = np.zeros(vol.shape, bool)
        mask[:, :, :32] = True
    r = c.simulate_post(f"{base}/split-supervoxel/{sv}?downres=false", body=rle_body(mask))
    assert r.status_code == 200, r.text
    doc = r.json
    assert r.text == (
        f'{{"SplitSupervoxel": {doc["SplitSupervoxel"]}, "RemainSupervoxel": '
        f'{doc["RemainSupervoxel"]}, "MutationID": {doc["MutationID"]}}}'
    )
    z, y, x = vol.shape
    got = np.frombuffer(
        c.simulate_get(f"{base}/raw/0_1_2/{x}_{y}_{z}/0_0_0?supervoxels=true").content, "<u8"
    ).reshape(vol.shape)
    want = vol.copy()
    want[(vol == sv) & mask] = doc["SplitSupervoxel"]
    want[(vol == sv) & ~mask] = doc["RemainSupervoxel"]
    assert np.array_equal(got, want)
    r = c.simulate_post(f"{base}/split-supervoxel/{sv}", body=rle_body(mask))
    assert r.status_code == 400 and "has been split and doesn't exist anymore" in r.text
    assert r.text.startswith(f"split supervoxel {sv} -> 0, 0: ")
    assert "bad split query string" in c.simulate_post(f"{base}/split-supervoxel/1?split=x").text
    # split/{label}: the left half of one body
    body = sv  # split and remain both stay in sv's body, whose label is sv
    part = np.isin(got, [doc["SplitSupervoxel"], doc["RemainSupervoxel"]])
    part[:, :, 40:] = False
    r = c.simulate_post(f"{base}/split/{body}", body=rle_body(part))
    assert r.status_code == 200, r.text
    assert r.text == f'{{"label": {r.json["label"]}, "MutationID": {r.json["MutationID"]}}}'
    assert c.simulate_get(f"{base}/size/{r.json['label']}").json == {"voxels": int(part.sum())}


def test_split_is_off_by_default() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    root, base = new_labelmap(c, blocksize="16,16,16")
    r = c.simulate_post(f"{base}/split/5", body=b"")
    assert r.status_code == 400
    assert r.text.startswith("Split endpoint deactivated in this DVID server's configuration.")


def test_history_and_versions(
    world: tuple[falcon.testing.TestClient, str, str, np.ndarray],
) -> None:
    c, root, base, vol = world
    a, b, d, e = ids(vol)[:4]
    c.simulate_post(f"{base}/merge", body=json.dumps([a, b]))
    c.simulate_post(f"/api/node/{root}/commit", json={"note": "one"})
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    cbase = f"/api/node/{child}/seg"
    c.simulate_post(f"{cbase}/merge", body=json.dumps([d, e]))
    c.simulate_post(f"{cbase}/merge", body=json.dumps([a, d]))
    assert [x["Target"] for x in c.simulate_get(f"{cbase}/mutations").json] == [d, a]
    seq = c.simulate_get(f"{cbase}/mutations-range/{root}/{child}").json
    assert [x["Target"] for x in seq] == [a, d, a]
    hist = c.simulate_get(f"{cbase}/history/{a}/{root}/{child}").json
    assert [x["Target"] for x in hist] == [a, d, a]
    hist = c.simulate_get(f"{cbase}/history/{b}/{root}/{child}")
    assert hist.status_code == 400
    assert "ERROR: DVID requires label ID" in c.simulate_get(f"{cbase}/history/{a}").text
    r = c.simulate_post(f"{base}/merge", body=json.dumps([a, e]))
    assert r.status_code == 400 and "locked node" in r.text


def test_live_proofreading_with_concurrent_editors() -> None:
    """Real waitress, two threads merging different bodies at once: every edit lands."""
    vol = voronoi(SHAPE, 24, 9)
    labels = ids(vol)
    with LiveServer(create_app(ServerConfig("memory://"))) as srv:
        root = json.loads(srv.request("POST", "/api/repos", b"{}")[2])["root"]
        srv.request(
            "POST",
            f"/api/repo/{root}/instance",
            b'{"typename":"labelmap","dataname":"s","BlockSize":"16,16,16"}',
        )
        base = f"/api/node/{root}/s"
        z, y, x = vol.shape
        status, _, body = srv.request("POST", f"{base}/raw/0_1_2/{x}_{y}_{z}/0_0_0", vol.tobytes())
        assert status == 200, body
        halves = [labels[: len(labels) // 2], labels[len(labels) // 2 :]]
        mids: list[int] = []
        errors: list[bytes] = []

        def editor(group: list[int]) -> None:
            for other in group[1:]:
                status, _, body = srv.request(
                    "POST", f"{base}/merge", json.dumps([group[0], other]).encode()
                )
                if status != 200:
                    errors.append(body)
                else:
                    mids.append(json.loads(body)["MutationID"])

        threads = [threading.Thread(target=editor, args=(g,)) for g in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(set(mids)) == len(labels) - 2
        status, _, body = srv.request("GET", f"{base}/mutations")
        log = json.loads(body)
        assert sorted(r["MutationID"] for r in log) == sorted(mids)
        assert [r["MutationID"] for r in log] == sorted(mids)
        for g in halves:
            status, _, body = srv.request("GET", f"{base}/supervoxels/{g[0]}")
            assert sorted(json.loads(body)) == g
        status, _, body = srv.request(
            "POST", f"{base}/cleave/{halves[0][0]}", b"[%d]" % halves[0][1]
        )
        assert status == 200 and b"CleavedLabel" in body
        sv = halves[1][1]
        mask = np.zeros(vol.shape, bool)
        mask[:, :, :32] = True
        status, _, body = srv.request("POST", f"{base}/split-supervoxel/{sv}", rle_body(mask))
        assert status in (200, 400), body
        status, _, body = srv.request("GET", f"{base}/mutations-range/{root}/{root}")
        assert status == 200 and len(json.loads(body)) >= len(mids) + 1


def test_diff_reports_changed_bodies(
    world: tuple[falcon.testing.TestClient, str, str, np.ndarray],
) -> None:
    c, root, base, vol = world
    a, b, d = ids(vol)[:3]
    c.simulate_post(f"/api/node/{root}/commit", json={"note": "before"})
    child = c.simulate_post(f"/api/node/{root}/newversion", json={}).json["child"]
    cbase = f"/api/node/{child}/seg"
    mid = c.simulate_post(f"{cbase}/merge", body=json.dumps([a, b])).json["MutationID"]
    new = c.simulate_post(f"{cbase}/cleave/{a}", body=json.dumps([a])).json["CleavedLabel"]
    doc = c.simulate_get(f"/api/cas/diff/{root}/{child}/seg").json
    assert doc["bodies"] == {"created": [new], "deleted": [b], "changed": [a]}
    assert doc["remapped_supervoxels"] == 2 and doc["mutations"][0] == mid
    assert not [k for k in doc["changed"] if k.startswith("block")]
