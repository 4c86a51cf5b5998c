"""labelmap label index endpoints against brute force on a Voronoi volume with merged bodies.

Mapping, sizes, supervoxels, lastmod, listlabels, index/indices, and the writes that
keep the index in step with the mapping (POST mappings, POST index/indices).
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from dataclasses import dataclass

import falcon.testing
import lz4.block
import numpy as np
import pytest
from _bodies import (
    Blocks,
    brute_index,
    index_blocks,
    mapping_ops,
    new_labelmap,
    post_mappings,
    post_volume,
    voronoi,
)
from numpy.typing import NDArray

from cas_dvid.api import ServerConfig, create_app
from cas_dvid.datatypes.labelmap.labelindex import make_label_index
from cas_dvid.proto.labelops_pb2 import LabelIndex, LabelIndices

SHAPE = (128, 128, 128)
BS = 64
FRESH = 2**41 + 7  # a body id that is no supervoxel


@dataclass
class World:
    c: falcon.testing.TestClient
    base: str
    vol: NDArray[np.uint64]
    mapping: dict[int, int]
    index: dict[int, Blocks]

    def body_of(self, sv: int) -> int:
        return self.mapping.get(sv, sv)


@functools.cache
def world_data(seed: int) -> tuple[NDArray[np.uint64], dict[int, int], dict[int, Blocks]]:
    rng = np.random.default_rng(seed)
    vol = voronoi(SHAPE, 60, seed)
    svs = np.unique(vol)
    holes = rng.choice(svs, 3, replace=False)
    vol[np.isin(vol, holes)] = 0
    perm = [int(s) for s in rng.permutation(np.setdiff1d(svs, holes))]
    mapping: dict[int, int] = {}
    at = 0
    for n in (2, 3, 5, 2, 4, 2, 3, 2, 6, 2):
        group, at = perm[at : at + n], at + n
        mapping.update({sv: group[0] for sv in group[1:]})
    mapping.update({sv: FRESH for sv in perm[at : at + 3]})
    vol.flags.writeable = False
    return vol, mapping, brute_index(vol, mapping, BS)


def make_world(seed: int) -> World:
    vol, mapping, index = world_data(seed)
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    _, base = new_labelmap(c)
    post_volume(c, base, vol)
    post_mappings(c, base, mapping)
    return World(c, base, vol, dict(mapping), index)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(11)


@pytest.fixture
def fresh() -> World:
    return make_world(12)


def sizes_of(blocks: Blocks) -> dict[int, int]:
    out: dict[int, int] = {}
    for counts in blocks.values():
        for sv, n in counts.items():
            out[sv] = out.get(sv, 0) + n
    return out


def get(w: World, path: str, **kw: object) -> falcon.testing.Result:
    return w.c.simulate_get(f"{w.base}/{path}", **kw)  # type: ignore[arg-type]


def check_index(w: World, index: dict[int, Blocks]) -> None:
    """Every body's GET index, size and supervoxels agree with ``index``; nothing else exists."""
    listed = np.frombuffer(get(w, "listlabels?sizes=true").content, "<u8").reshape(-1, 2)
    assert listed[:, 0].tolist() == sorted(index)
    for body, blocks in index.items():
        r = get(w, f"index/{body}")
        assert r.status_code == 200, (body, r.text)
        idx, got = index_blocks(r.content)
        assert idx.label == body
        assert got == blocks
        total = sum(sizes_of(blocks).values())
        assert get(w, f"size/{body}").text == f'{{"voxels": {total}}}'
    assert dict(listed.tolist()) == {b: sum(sizes_of(v).values()) for b, v in index.items()}


# -- reads --------------------------------------------------------------------------------


def test_index_of_every_body_matches_brute_force(world: World) -> None:
    check_index(world, world.index)


def test_mapping_batch(world: World) -> None:
    svs = [int(s) for s in np.unique(world.vol) if s]
    unknown = 2**50 + 1
    query = [*svs, unknown, 0, FRESH]
    body = json.dumps(query).encode()
    r = get(world, "mapping", body=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    # an unknown id and a body id that is no supervoxel map to 0 unless nolookup
    assert json.loads(r.text) == [world.body_of(s) for s in svs] + [0, 0, 0]
    r = get(world, "mapping?nolookup=true", body=body)
    assert json.loads(r.text) == [world.body_of(s) for s in svs] + [unknown, 0, FRESH]
    md5 = hashlib.md5(body).hexdigest()
    assert get(world, f"mapping?hash={md5}", body=body).status_code == 200
    r = get(world, "mapping?hash=abc", body=body)
    assert r.status_code == 400
    assert "content hash incorrect.  expected abc, got " + md5 in r.text
    assert r.text.startswith("content hash")


def test_mappings_text_and_binary(world: World) -> None:
    want = sorted(world.mapping.items())
    r = get(world, "mappings")
    assert r.status_code == 200
    assert r.text == "".join(f"{a} {b}\n" for a, b in want)
    r = get(world, "mappings?format=binary")
    assert np.frombuffer(r.content, "<u8").reshape(-1, 2).tolist() == [list(p) for p in want]


def test_supervoxels_sizes_and_supervoxel_sizes(world: World) -> None:
    for body, blocks in world.index.items():
        svsizes = sizes_of(blocks)
        assert json.loads(get(world, f"supervoxels/{body}").text) == sorted(svsizes)
        r = get(world, f"supervoxel-sizes/{body}")
        expect = (
            f'{{\n  "supervoxels": [{",".join(map(str, sorted(svsizes)))}],'
            f'\n  "sizes": [{",".join(str(svsizes[s]) for s in sorted(svsizes))}]\n}}'
        )
        assert r.text == expect
        for sv, n in svsizes.items():
            assert get(world, f"size/{sv}?supervoxels=true").text == f'{{"voxels": {n}}}'
    bodies = sorted(world.index)
    query = [*bodies, 2**50, 5]
    r = get(world, "sizes", body=json.dumps(query).encode())
    assert json.loads(r.text) == [sum(sizes_of(world.index[b]).values()) for b in bodies] + [0, 0]
    svs = [int(s) for s in np.unique(world.vol) if s] + [2**50]
    r = get(world, "sizes?supervoxels=true", body=json.dumps(svs).encode())
    counts = {sv: n for b in world.index.values() for sv, n in sizes_of(b).items()}
    assert json.loads(r.text) == [counts.get(s, 0) for s in svs]


def test_sparsevol_size_and_lastmod(world: World) -> None:
    for body, blocks in world.index.items():
        xs, ys, zs = zip(*blocks, strict=True)
        total = sum(sizes_of(blocks).values())
        lo = [min(xs) * BS, min(ys) * BS, min(zs) * BS]
        hi = [(max(xs) + 1) * BS - 1, (max(ys) + 1) * BS - 1, (max(zs) + 1) * BS - 1]
        assert get(world, f"sparsevol-size/{body}").text == (
            f'{{"voxels": {total}, "numblocks": {len(blocks)}, '
            f'"minvoxel": [{lo[0]}, {lo[1]}, {lo[2]}], "maxvoxel": [{hi[0]}, {hi[1]}, {hi[2]}]}}'
        )
        r = get(world, f"lastmod/{body}")
        assert r.text == (
            '{"mutation id": 0, "last mod user": "", "last mod app": "", "last mod time": "" }'
        )
    sv = next(s for s in world.mapping if s in sizes_of(world.index[world.mapping[s]]))
    blocks = [c for c, counts in world.index[world.mapping[sv]].items() if sv in counts]
    doc = json.loads(get(world, f"sparsevol-size/{sv}?supervoxels=true").text)
    assert doc["numblocks"] == len(blocks)


def test_listlabels_paging(world: World) -> None:
    bodies = sorted(world.index)
    r = get(world, "listlabels")
    assert r.headers["content-type"] == "application/octet-stream"
    assert np.frombuffer(r.content, "<u8").tolist() == bodies
    page = np.frombuffer(get(world, f"listlabels?start={bodies[3]}&number=4").content, "<u8")
    assert page.tolist() == bodies[3:7]
    assert get(world, "listlabels?number=0").content == b""
    assert get(world, "listlabels?start=x").status_code == 400


def test_indices_and_indices_compressed(world: World) -> None:
    bodies = sorted(world.index)[:5]
    query = json.dumps([*bodies, 2**50]).encode()
    msg = LabelIndices()
    msg.ParseFromString(get(world, "indices", body=query).content)
    assert [i.label for i in msg.indices] == [*bodies, 2**50]
    assert not msg.indices[-1].blocks
    for i, body in zip(msg.indices, bodies, strict=False):
        assert index_blocks(i.SerializeToString())[1] == world.index[body]
    data = get(world, "indices-compressed", body=query).content
    pos = 0
    for label in [*bodies, 2**50]:
        size, got_label = struct.unpack_from("<QQ", data, pos)
        pos += 16
        assert got_label == label
        if label == 2**50:
            assert size == 0
            continue
        stored = data[pos : pos + size]
        pos += size
        assert stored[0] == 0x80  # DVID's LZ4 value header
        (n,) = struct.unpack_from("<I", stored, 1)
        raw = lz4.block.decompress(stored[5:], uncompressed_size=n)
        assert index_blocks(raw)[1] == world.index[label]
    assert pos == len(data)


def test_index_metadata_only(world: World) -> None:
    body = sorted(world.index)[0]
    total = sum(sizes_of(world.index[body]).values())
    r = get(world, f"index/{body}?metadata-only=true")
    assert r.text == (
        f'{{"num_voxels":{total},"last_mutid":0,"last_mod_time":"",'
        '"last_mod_user":"","last_mod_app":""}'
    )
    assert get(world, f"index/{body}?mutid=3").status_code == 404


# -- writes ---------------------------------------------------------------------------------


def test_post_mappings_moves_index_entries(fresh: World) -> None:
    w = fresh
    rng = np.random.default_rng(3)
    svs = [int(s) for s in np.unique(w.vol) if s]
    bodies = sorted(set(w.index))
    changes: dict[int, int] = {}
    merged_away = bodies[1]  # every supervoxel of one body joins another
    for sv in svs:
        if w.body_of(sv) == merged_away:
            changes[sv] = bodies[0]
    picked = [int(s) for s in rng.choice(svs, 12, replace=False) if int(s) not in changes]
    changes[picked[0]] = picked[0]  # split out to itself (identity: entry removed)
    changes[picked[1]] = 2**42  # to a new body
    changes[picked[2]] = 2**42
    changes[picked[3]] = 0  # retired
    changes[picked[4]] = bodies[-1]
    post_mappings(w.c, w.base, changes)
    mapping = {**w.mapping, **changes}
    mapping = {sv: b for sv, b in mapping.items() if sv != b}
    expected = brute_index(w.vol, mapping, BS)
    check_index(w, expected)
    r = get(w, "mappings?format=binary")
    assert dict(np.frombuffer(r.content, "<u8").reshape(-1, 2).tolist()) == mapping
    assert get(w, f"size/{merged_away}").status_code == 404
    # later voxel writes keep the moved index right
    block = w.vol[:64, :64, 64:].copy()
    block[:32] = picked[5]
    post_volume(w.c, w.base, block, (64, 0, 0))
    vol = w.vol.copy()
    vol[:64, :64, 64:] = block
    check_index(World(w.c, w.base, vol, mapping, {}), brute_index(vol, mapping, BS))


def test_post_index_round_trip_replace_and_delete(fresh: World) -> None:
    w = fresh
    body = sorted(w.index)[0]
    data = get(w, f"index/{body}").content
    new_label = 2**43
    idx = LabelIndex()
    idx.ParseFromString(data)
    idx.label, idx.last_mutid, idx.last_mod_user = new_label, 77, "alice"
    idx.last_mod_time, idx.last_mod_app = "2024-01-02T03:04:05Z", "neu3"
    r = w.c.simulate_post(f"{w.base}/index/{new_label}", body=idx.SerializeToString())
    assert r.status_code == 200, r.text
    assert index_blocks(get(w, f"index/{new_label}").content)[1] == w.index[body]
    assert get(w, f"lastmod/{new_label}").text == (
        '{"mutation id": 77, "last mod user": "alice", "last mod app": "neu3", '
        '"last mod time": "2024-01-02T03:04:05Z" }'
    )
    assert json.loads(get(w, "maxlabel").text)["maxlabel"] >= new_label
    # a smaller index replaces the whole of the old one
    small = make_label_index(new_label, {(0, 0, 0): {5: 10}, (-1, 2, 3): {6: 4}})
    w.c.simulate_post(f"{w.base}/index/{new_label}", body=small.SerializeToString())
    assert index_blocks(get(w, f"index/{new_label}").content)[1] == {
        (0, 0, 0): {5: 10},
        (-1, 2, 3): {6: 4},
    }
    assert get(w, f"size/{new_label}").text == '{"voxels": 14}'
    empty = LabelIndex(label=new_label)
    assert w.c.simulate_post(f"{w.base}/index/{new_label}", body=empty.SerializeToString())
    assert get(w, f"index/{new_label}").status_code == 404
    assert get(w, f"size/{new_label}").status_code == 404
    check_index(w, w.index)  # the other bodies are untouched


def test_post_indices_then_mappings_is_dvid_ingest_order(fresh: World) -> None:
    """DVID's bulk load: POST indices for the agglomerated bodies, then POST mappings."""
    c = fresh.c
    _, base = new_labelmap(c)
    post_volume(c, base, fresh.vol)  # every supervoxel indexed as its own body
    msg = LabelIndices()
    for body, blocks in fresh.index.items():
        msg.indices.append(make_label_index(body, blocks))
    gone = sorted(fresh.index)[0]
    msg.indices.append(LabelIndex(label=2**45))  # deleting an absent index is fine
    r = c.simulate_post(f"{base}/indices", body=msg.SerializeToString())
    assert r.status_code == 200, r.text
    r = c.simulate_post(f"{base}/mappings", body=mapping_ops(fresh.mapping))
    assert r.status_code == 200, r.text
    check_index(World(c, base, fresh.vol, fresh.mapping, {}), fresh.index)
    delete = LabelIndices()
    delete.indices.append(LabelIndex(label=gone))
    c.simulate_post(f"{base}/indices", body=delete.SerializeToString())
    assert c.simulate_get(f"{base}/size/{gone}").status_code == 404


# -- bad input ------------------------------------------------------------------------------

AS_BODY = "Label 0 is protected background value and cannot be queried as body.\n"
AS_SPARSEVOL = "Label 0 is protected background value and cannot be used as sparse volume.\n"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        pytest.param("supervoxels/0", AS_BODY, id="supervoxels"),
        pytest.param("size/0", AS_BODY, id="size"),
        pytest.param("supervoxel-sizes/0", AS_BODY, id="supervoxel-sizes"),
        pytest.param("lastmod/0", AS_BODY, id="lastmod"),
        pytest.param("sparsevol/0", AS_SPARSEVOL, id="sparsevol"),
        pytest.param("sparsevol-size/0", AS_SPARSEVOL, id="sparsevol-size"),
        pytest.param("sparsevol-coarse/0", AS_SPARSEVOL, id="sparsevol-coarse"),
        pytest.param("sparsevols-coarse/0/5", AS_SPARSEVOL, id="sparsevols-coarse"),
        pytest.param("index/0", "there is no index for protected label 0", id="index"),
    ],
)
def test_label_zero_is_a_400_with_dvids_text(world: World, path: str, text: str) -> None:
    r = get(world, path)
    assert r.status_code == 400
    assert r.text == f"{text} ({world.base}/{path}).\n"


@pytest.mark.parametrize(
    "path",
    [
        "supervoxels/99",
        "size/99",
        "size/99?supervoxels=true",
        "supervoxel-sizes/99",
        "lastmod/99",
        "sparsevol/99",
        "sparsevol-size/99",
        "sparsevol-coarse/99",
        "index/99",
        "index/99?metadata-only=true",
    ],
)
def test_unknown_label_is_a_404_with_text(world: World, path: str) -> None:
    r = get(world, path)
    assert r.status_code == 404
    assert "99" in r.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("size/abc", None, id="label-not-a-number"),
        pytest.param("size/-3", None, id="negative-label"),
        pytest.param("size", None, id="no-label"),
        pytest.param("mapping", b"[1, 2", id="mapping-bad-json"),
        pytest.param("mapping", b'["a"]', id="mapping-not-ints"),
        pytest.param("mapping", b"[-1]", id="mapping-negative"),
        pytest.param("sizes", b"{}", id="sizes-not-a-list"),
        pytest.param("indices", b"[1.5]", id="indices-float"),
        pytest.param("indices-compressed", b"nope", id="indices-compressed-bad-json"),
        pytest.param("indices", json.dumps(list(range(50001))).encode(), id="indices-too-many"),
    ],
)
def test_bad_requests_are_400(world: World, path: str, body: bytes | None) -> None:
    r = get(world, path, body=body)
    assert r.status_code == 400, r.text


def test_bad_posts_change_nothing(fresh: World) -> None:
    w = fresh
    before = get(w, "mappings?format=binary").content
    posts = [
        ("mappings", b"\xff\xff\xff"),
        ("index/5", b"\x0a\x05\x01"),
        ("index/5", make_label_index(6, {(0, 0, 0): {1: 1}}).SerializeToString()),
        ("indices", b"\x0a\xff"),
    ]
    bad = LabelIndices()
    bad.indices.append(make_label_index(2**44, {(0, 0, 0): {1: 1}}))
    bad.indices.append(LabelIndex(label=0))
    posts.append(("indices", bad.SerializeToString()))
    for path, body in posts:
        r = w.c.simulate_post(f"{w.base}/{path}", body=body)
        assert r.status_code == 400, (path, r.text)
    assert "index 1 had label 0, which is a reserved label" in r.text
    assert get(w, f"size/{2**44}").status_code == 404
    assert get(w, "mappings?format=binary").content == before
    check_index(w, w.index)


def test_retired_supervoxel_queries(fresh: World) -> None:
    w = fresh
    sv = next(iter(w.mapping))
    post_mappings(w.c, w.base, {sv: 0})
    assert json.loads(get(w, "mapping", body=f"[{sv}]".encode()).text) == [0]
    r = get(w, f"size/{sv}?supervoxels=true")
    assert r.status_code == 400
    assert "which has been split and doesn't exist anymore" in r.text
    assert get(w, f"sparsevol/{sv}?supervoxels=true").status_code == 400


def test_locked_node_refuses_index_writes(fresh: World) -> None:
    w = fresh
    uuid = w.base.split("/")[3]
    assert w.c.simulate_post(f"/api/node/{uuid}/commit", json={"note": "x"}).status_code == 200
    r = w.c.simulate_post(f"{w.base}/mappings", body=mapping_ops({5: 6}))
    assert r.status_code == 400
    assert "locked" in r.text
    r = w.c.simulate_post(
        f"{w.base}/index/9", body=make_label_index(9, {(0, 0, 0): {9: 1}}).SerializeToString()
    )
    assert r.status_code == 400


def test_labelarray_has_no_mapping_and_indexedlabels_false_no_index() -> None:
    c = falcon.testing.TestClient(create_app(ServerConfig("memory://")))
    _, base = new_labelmap(c, "labelarray")
    post_volume(c, base, np.full((64, 64, 64), 7, np.uint64))
    assert c.simulate_get(f"{base}/size/7").text == '{"voxels": 262144}'
    assert c.simulate_get(f"{base}/mapping", body=b"[7]").status_code == 400
    _, base = new_labelmap(c, IndexedLabels="false")
    post_volume(c, base, np.full((64, 64, 64), 7, np.uint64))
    r = c.simulate_get(f"{base}/sparsevol/7")
    assert r.status_code == 400
    assert "IndexedLabels=false" in r.text
