"""The vectorised label index planner against a plain per-entry twin.

``BlockPlanner._index_ops`` computes the index entries and summary moves of a block
write over all its blocks at once with numpy.  ``_reference_ops`` below is the plain
version it replaced (one dict entry per supervoxel, body and block); both run on the
same real tree (blocks, mappings after merges, index, summaries) and must return
exactly the same ops.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from _mutations import make_world
from hypothesis import given, settings
from hypothesis import strategies as st

from cas_dvid.datatypes.labelmap import keys as K
from cas_dvid.datatypes.labelmap.codec import encode_block_with_counts
from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.datatypes.labelmap.writes import BlockWrite, NewBlock, Ops, nonzero
from cas_dvid.objects import Kind
from cas_dvid.trees.keys import block_key
from cas_dvid.versions.heads import Reader

Coord = tuple[int, int, int]
Counts = tuple[np.ndarray, np.ndarray]


def _reference_ops(
    planner, read: Reader, write: BlockWrite, olds: Mapping[Coord, bytes | None]
) -> Ops:
    old_counts = planner.old_counts(olds)
    svs = {int(s) for c in old_counts.values() for s in c[0]}
    svs |= {int(s) for b in write.blocks.values() for s in b.counts[0]}
    found = read([K.mapping_key(sv) for sv in svs]) if write.mapped else {}
    bodies = {}
    for sv in svs:
        value = found.get(K.mapping_key(sv))
        bodies[sv] = (K.decode_label_value(value) if value is not None else 0) or sv

    def by_body(counts: Counts) -> dict[int, Counts]:
        out: dict[int, list[tuple[int, int]]] = {}
        for sv, n in zip(counts[0].tolist(), counts[1].tolist(), strict=True):
            out.setdefault(bodies[sv], []).append((sv, n))
        return {
            b: (np.array([p[0] for p in v], np.uint64), np.array([p[1] for p in v], np.int64))
            for b, v in out.items()
        }

    new_entries: dict[tuple[int, Coord], Counts] = {}
    touched: set[tuple[int, Coord]] = set()
    for coord, new in write.blocks.items():
        for body, entry in by_body(new.counts).items():
            new_entries[(body, coord)] = entry
        for body in by_body(old_counts.get(coord, (np.zeros(0, np.uint64), np.zeros(0)))):
            touched.add((body, coord))
    touched |= set(new_entries)
    pairs = sorted(touched, key=lambda p: K.index_key(p[0], *p[1]))
    ops: Ops = {}
    dvox: dict[int, int] = {}
    dblk: dict[int, int] = {}
    for body, coord in pairs:
        key = K.index_key(body, *coord)
        stored = read([key]).get(key)
        had = 0
        if stored is not None:
            payload = planner.store.get(K_blob(stored), Kind.BLOB) if stored[0] else stored[1:]
            had = int(K.decode_pairs(bytes(payload))["n"].sum())
        entry = new_entries.get((body, coord))
        now = int(entry[1].sum()) if entry is not None else 0
        if now:
            order = np.argsort(entry[0], kind="stable")
            rows = sorted(zip(entry[0].tolist(), entry[1].tolist(), strict=True))
            assert [r[0] for r in rows] == entry[0][order].tolist()
            payload = b"".join(
                int(sv).to_bytes(8, "little") + int(n).to_bytes(4, "little") for sv, n in rows
            )
            ops[key] = bytes([0]) + payload if len(payload) < 1024 else ("blob", payload)
        elif stored is not None:
            ops[key] = None
        dvox[body] = dvox.get(body, 0) + now - had
        dblk[body] = dblk.get(body, 0) + (1 if now else 0) - (1 if stored is not None else 0)
    for body in sorted(dvox):
        if not (dvox[body] or dblk[body]):
            continue
        key = K.body_key(body)
        old = read([key]).get(key)
        s = K.decode_summary(old) if old is not None else K.Summary(0, 0)
        voxels, blocks = max(0, s.voxels + dvox[body]), max(0, s.blocks + dblk[body])
        summary = K.Summary(voxels, blocks, s.mutid, s.time, s.user, s.app)
        ops[key] = K.encode_summary(summary) if voxels else None
    return ops


def K_blob(value: bytes):  # noqa: N802 - the blob id of a tree value
    from cas_dvid.objects import ObjectId

    return ObjectId(value[1:])


def _comparable(store, ops: Ops) -> Ops:
    """Blob-valued entries as their payload, so both sides compare by content."""
    out: Ops = {}
    for k, v in ops.items():
        if isinstance(v, bytes) and v[:1] == b"\x01":
            out[k] = ("blob", bytes(store.get(K_blob(v), Kind.BLOB)))
        else:
            out[k] = v
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    nblocks=st.integers(1, 6),
    pool=st.integers(1, 40),
    merges=st.integers(0, 3),
)
def test_vectorised_index_ops_equal_the_reference(
    seed: int, nblocks: int, pool: int, merges: int
) -> None:
    w = make_world(shape=(32, 32, 32), seeds=12, seed=seed % 7, block=16)
    rng = np.random.default_rng(seed)
    svs = np.unique(w.model.vol)
    for _ in range(merges):  # mapped supervoxels: bodies differ from their supervoxels
        bodies = sorted(w.model.bodies())
        if len(bodies) < 2:
            break
        a, b = (int(v) for v in rng.choice(bodies, 2, replace=False))
        w.labels.mutations.merge(w.at, w.inst, a, [b], ModInfo(user="test"))
        w.model.merge(a, [b])
    # New blocks over old ones (and beyond the volume): labels from the old volume's
    # supervoxels and fresh ones; a big pool of one block makes entries over 1 KiB.
    labels = np.concatenate([svs, rng.choice(2**40, pool).astype(np.uint64) + 1])
    blocks = {}
    for _ in range(nblocks):
        coord = tuple(int(v) for v in rng.integers(-1, 3, 3))
        arr = rng.choice(labels[: rng.integers(1, len(labels) + 1)], (16, 16, 16))
        arr[rng.random((16, 16, 16)) < 0.1] = 0
        data, lab, counts = encode_block_with_counts(arr.astype(np.uint64))
        oid = w.labels.store.put(Kind.BLOB, data)
        blocks[coord] = NewBlock(oid, nonzero((lab, counts)))
    write = BlockWrite(blocks, 0, True, True, None)
    read = w.labels.reader(w.labels.root(w.at, w.inst))
    keys = [K.LABEL_BLOCK_CLASS + block_key(0, z, y, x) for x, y, z in blocks]
    found = read(keys)
    olds = {c: found.get(k) for c, k in zip(blocks, keys, strict=True)}
    planner = w.labels.planner
    got = _comparable(planner.store, planner._index_ops(read, write, olds))
    assert got == _reference_ops(planner, read, write, olds)
