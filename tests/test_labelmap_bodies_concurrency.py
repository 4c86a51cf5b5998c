"""Index writes racing other writes: a stale scan is redone, and racing threads end consistent."""

from __future__ import annotations

import threading

import numpy as np
from _bodies import brute_index, voronoi

from cas_dvid.backends import MemoryBackend
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.bodywrites import Scan
from cas_dvid.objects import ObjectStore
from cas_dvid.proto.labelops_pb2 import MappingOps
from cas_dvid.versions import At, Instance, VersionService

Coord = tuple[int, int, int]


def setup() -> tuple[LabelStore, At, Instance]:
    versions = VersionService(ObjectStore(MemoryBackend()))
    labels = LabelStore.on(versions)
    uuid = versions.create_repo()
    versions.new_instance(uuid, "seg", "labelmap", settings={"blocksize": "16,16,16"})
    at = versions.resolve(uuid)
    return labels, at, at.instance("seg")


def blocks_of(vol: np.ndarray) -> dict[Coord, np.ndarray]:
    z, y, x = (n // 16 for n in vol.shape)
    return {
        (bx, by, bz): np.ascontiguousarray(
            vol[bz * 16 : bz * 16 + 16, by * 16 : by * 16 + 16, bx * 16 : bx * 16 + 16]
        )
        for bz in range(z)
        for by in range(y)
        for bx in range(x)
    }


def ops_of(mapping: dict[int, int]) -> MappingOps:
    ops = MappingOps()
    for sv, body in mapping.items():
        op = ops.mappings.add()
        op.mapped = body
        op.original.append(sv)
    return ops


def index_now(labels: LabelStore, at: At, inst: Instance) -> dict[int, dict[Coord, dict]]:
    root = labels.root(at, inst)
    out = {}
    for body, _ in labels.index.listlabels(at, inst, 0, 1 << 30, False):
        found = labels.index.body(root, body)
        assert found is not None
        out[body] = dict(found.per_block())
        summary = labels.index.summary(root, body)
        assert summary is not None
        assert (summary.voxels, summary.blocks) == (found.voxels, len(found.coords))
    return out


def test_a_scan_gone_stale_is_redone() -> None:
    labels, at, inst = setup()
    vol = np.zeros((16, 16, 48), np.uint64)
    vol[:, :, :16] = 5
    vol[:, :, 16:32] = 6
    labels.writer.write_arrays(at, inst, blocks_of(vol), "setup")
    writes = labels.index.writes
    real_scan = writes.scan
    calls = []

    def racing_scan(root: object, bodies: object) -> Scan:
        scan = real_scan(root, bodies)  # type: ignore[arg-type]
        if not calls:  # another writer adds a block of supervoxel 5 after the scan
            block = np.full((16, 16, 16), 5, np.uint64)
            labels.writer.write_arrays(at, inst, {(2, 0, 0): block}, "race")
        calls.append(scan)
        return scan

    writes.scan = racing_scan  # type: ignore[method-assign]
    writes.post_mappings(at, inst, ops_of({5: 6}))
    assert len(calls) == 2  # the first plan saw the new block and asked for a rescan
    vol[:, :, 32:] = 5
    assert index_now(labels, at, inst) == brute_index(vol, {5: 6}, 16)


def test_racing_mappings_and_voxel_writes_end_consistent() -> None:
    labels, at, inst = setup()
    vol = voronoi((32, 32, 64), 12, 9)
    labels.writer.write_arrays(at, inst, blocks_of(vol), "setup")
    svs = [int(s) for s in np.unique(vol)]
    rng = np.random.default_rng(1)
    steps = [{int(sv): int(rng.choice(svs[:4]))} for sv in rng.choice(svs, 30)]
    mapping: dict[int, int] = {}
    for step in steps:
        mapping.update(step)
    mapping = {sv: b for sv, b in mapping.items() if sv != b}
    final = vol.copy()
    rewrites = []
    for i in range(20):
        coord = (int(rng.integers(0, 4)), int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        block = np.full((16, 16, 16), svs[i % len(svs)], np.uint64)
        block[:8] = svs[(i + 5) % len(svs)]
        rewrites.append((coord, block))
        x, y, z = coord
        final[z * 16 : z * 16 + 16, y * 16 : y * 16 + 16, x * 16 : x * 16 + 16] = block

    def remap() -> None:
        for step in steps:
            labels.index.writes.post_mappings(at, inst, ops_of(step))

    def rewrite() -> None:
        for coord, block in rewrites:
            labels.writer.write_arrays(at, inst, {coord: block}, "race")

    threads = [threading.Thread(target=remap), threading.Thread(target=rewrite)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert index_now(labels, at, inst) == brute_index(final, mapping, 16)
