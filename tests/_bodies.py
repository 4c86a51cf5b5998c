"""Label volumes, brute-force answers and independent decoders for the label index tests.

The decoders follow dvid-api.md section 6 (and DVID's labelidx.go / compressed.go
comments), not cas_dvid's encoders.
"""

from __future__ import annotations

import struct
from collections import defaultdict

import falcon.testing
import numpy as np
from numpy.typing import NDArray

from cas_dvid.proto.labelops_pb2 import LabelIndex, MappingOps

Client = falcon.testing.TestClient
Blocks = dict[tuple[int, int, int], dict[int, int]]


def voronoi(shape: tuple[int, int, int], nseeds: int, seed: int) -> NDArray[np.uint64]:
    """Each voxel takes the random uint64 id of its nearest seed (supervoxel-like regions)."""
    rng = np.random.default_rng(seed)
    seeds = (rng.uniform(0, 1, (nseeds, 3)) * np.array(shape)).astype(np.float32)
    ids = (rng.choice(2**40, nseeds, replace=False) + 1).astype(np.uint64)
    z, y, x = shape
    yy, xx = np.mgrid[0:y, 0:x].astype(np.float32)
    out = np.empty(shape, np.uint64)
    for iz in range(z):
        d = (
            (iz - seeds[:, 0, None, None]) ** 2
            + (yy - seeds[:, 1, None, None]) ** 2
            + (xx - seeds[:, 2, None, None]) ** 2
        )
        out[iz] = ids[np.argmin(d, axis=0)]
    return out


def new_labelmap(c: Client, typename: str = "labelmap", **settings: str) -> tuple[str, str]:
    root = c.simulate_post("/api/repos", json={}).json["root"]
    r = c.simulate_post(
        f"/api/repo/{root}/instance", json={"typename": typename, "dataname": "seg", **settings}
    )
    assert r.status_code == 200, r.text
    return root, f"/api/node/{root}/seg"


def post_volume(
    c: Client, base: str, vol: NDArray[np.uint64], offset: tuple[int, int, int] = (0, 0, 0)
) -> None:
    z, y, x = vol.shape
    r = c.simulate_post(
        f"{base}/raw/0_1_2/{x}_{y}_{z}/{offset[0]}_{offset[1]}_{offset[2]}",
        body=np.ascontiguousarray(vol, "<u8").tobytes(),
    )
    assert r.status_code == 200, r.text


def mapping_ops(mapping: dict[int, int]) -> bytes:
    """A MappingOps grouping supervoxels by their target."""
    by_target: dict[int, list[int]] = defaultdict(list)
    for sv, body in mapping.items():
        by_target[body].append(sv)
    ops = MappingOps()
    for i, (body, svs) in enumerate(sorted(by_target.items())):
        op = ops.mappings.add()
        op.mutid, op.mapped = i + 1, body
        op.original.extend(sorted(svs))
    return ops.SerializeToString()


def post_mappings(c: Client, base: str, mapping: dict[int, int]) -> None:
    r = c.simulate_post(f"{base}/mappings", body=mapping_ops(mapping))
    assert r.status_code == 200, r.text


def apply_mapping(vol: NDArray[np.uint64], mapping: dict[int, int]) -> NDArray[np.uint64]:
    """The body volume: each supervoxel replaced by its body (itself when unmapped)."""
    uniq, inverse = np.unique(vol, return_inverse=True)
    bodies = np.array([mapping.get(int(s), int(s)) for s in uniq], np.uint64)
    return bodies[inverse].reshape(vol.shape)


def brute_index(vol: NDArray[np.uint64], mapping: dict[int, int], block: int) -> dict[int, Blocks]:
    """body -> block (x, y, z) -> {supervoxel: voxels}, counted voxel by voxel."""
    out: dict[int, Blocks] = defaultdict(dict)
    z, y, x = vol.shape
    for bz in range(z // block):
        for by in range(y // block):
            for bx in range(x // block):
                sub = vol[
                    bz * block : (bz + 1) * block,
                    by * block : (by + 1) * block,
                    bx * block : (bx + 1) * block,
                ]
                svs, n = np.unique(sub, return_counts=True)
                for sv, count in zip(svs.tolist(), n.tolist(), strict=True):
                    body = mapping.get(sv, sv)
                    if sv and body:
                        out[body].setdefault((bx, by, bz), {})[sv] = count
    return dict(out)


def index_blocks(data: bytes) -> tuple[LabelIndex, Blocks]:
    """Parse a LabelIndex; decode its block keys by dvid-api.md's 21-bit sign-magnitude rule."""
    idx = LabelIndex()
    idx.ParseFromString(data)
    out: Blocks = {}
    for key, svc in idx.blocks.items():
        coords = []
        for shift in (0, 21, 42):
            f = (key >> shift) & ((1 << 21) - 1)
            coords.append(-(f & 0xFFFFF) if f & (1 << 20) else f & 0xFFFFF)
        out[(coords[0], coords[1], coords[2])] = dict(svc.counts)
    return idx, out


# -- independent decoders of the sparse volume formats ------------------------------------


def runs_of_rles(data: bytes) -> NDArray[np.int32]:
    """Legacy RLE: u8 0, u8 3, u8 0, u8 0, u32 0, u32 nspans, then nspans x (x, y, z, len)."""
    assert data[:4] == b"\x00\x03\x00\x00"
    assert data[4:8] == b"\x00" * 4
    (n,) = struct.unpack_from("<I", data, 8)
    assert len(data) == 12 + 16 * n
    return np.frombuffer(data, "<i4", 4 * n, 12).reshape(n, 4)


def runs_of_srles(data: bytes) -> NDArray[np.int32]:
    assert len(data) % 16 == 0
    return np.frombuffer(data, "<i4").reshape(-1, 4)


def paint_runs(runs: NDArray[np.int32], shape: tuple[int, int, int]) -> NDArray[np.bool_]:
    """Rasterise runs into a (z, y, x) mask, insisting no voxel is given twice."""
    mask = np.zeros(shape, bool)
    for x, y, z, n in runs.tolist():
        assert n > 0
        assert not mask[z, y, x : x + n].any(), "a voxel is in two runs"
        mask[z, y, x : x + n] = True
    return mask


def paint_blocks(data: bytes, shape: tuple[int, int, int]) -> tuple[int, NDArray[np.bool_]]:
    """Binary blocks: u32 gx, gy, gz, u64 label; per block i32 x, y, z, u8 flag [sub-blocks]."""
    mask = np.zeros(shape, bool)
    if not data:
        return 0, mask
    gx, gy, gz, label = struct.unpack_from("<IIIQ", data)
    pos = 20
    while pos < len(data):
        x0, y0, z0, flag = struct.unpack_from("<iiiB", data, pos)
        pos += 13
        if flag == 1:
            mask[z0 : z0 + 8 * gz, y0 : y0 + 8 * gy, x0 : x0 + 8 * gx] = True
            continue
        assert flag == 2, flag
        for sz in range(gz):
            for sy in range(gy):
                for sx in range(gx):
                    sub_flag = data[pos]
                    pos += 1
                    z, y, x = z0 + 8 * sz, y0 + 8 * sy, x0 + 8 * sx
                    if sub_flag == 1:
                        mask[z : z + 8, y : y + 8, x : x + 8] = True
                    elif sub_flag == 2:
                        bits = np.unpackbits(
                            np.frombuffer(data, np.uint8, 64, pos), bitorder="little"
                        )
                        pos += 64
                        mask[z : z + 8, y : y + 8, x : x + 8] = bits.reshape(8, 8, 8).astype(bool)
    return label, mask


def coarse_blocks(spans: NDArray[np.int32]) -> set[tuple[int, int, int]]:
    """Block coordinates of coarse spans (x, y, z, length along x)."""
    return {(x + i, y, z) for x, y, z, n in spans.tolist() for i in range(n)}
