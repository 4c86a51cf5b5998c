"""A labelmap world for the proofreading tests, and a plain model of what edits do.

The model is a numpy volume of supervoxels and a dict mapping; every edit is
applied to it in the most direct way, and the store is compared with it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np
from _bodies import voronoi
from numpy.typing import NDArray

from cas_dvid.backends import MemoryBackend
from cas_dvid.datatypes import open_versions
from cas_dvid.datatypes.geometry import Box3, Point3
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.invariants import check_version
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import At, Instance, VersionService

Labels = NDArray[np.uint64]


def rle_body(mask: NDArray[np.bool_], offset: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """Encode a ZYX mask as DVID's legacy RLE body (x-runs), independently of cas_dvid."""
    runs = []
    zs, ys = np.nonzero(mask.any(axis=2))
    for z, y in zip(zs.tolist(), ys.tolist(), strict=True):
        row = np.concatenate(([False], mask[z, y], [False]))
        edges = np.flatnonzero(row[1:] != row[:-1])
        for a, b in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
            runs.append((a + offset[0], y + offset[1], z + offset[2], b - a))
    head = struct.pack("<BBBBII", 0, 3, 0, 0, int(mask.sum()), len(runs))
    return head + b"".join(struct.pack("<iiii", *r) for r in runs)


@dataclass
class Model:
    """What the volume should be: supervoxels per voxel and the mapping."""

    vol: Labels
    mapping: dict[int, int] = field(default_factory=dict)
    next_id: int = 0

    def body_of(self, sv: int) -> int:
        return self.mapping.get(sv, sv)

    def bodies(self) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for sv in np.unique(self.vol).tolist():
            if sv:
                out.setdefault(self.body_of(sv), set()).add(sv)
        return out

    def body_volume(self) -> Labels:
        uniq, inv = np.unique(self.vol, return_inverse=True)
        return np.array([self.body_of(int(s)) if s else 0 for s in uniq], np.uint64)[
            inv.reshape(self.vol.shape)
        ]

    def merge(self, target: int, others: list[int]) -> None:
        for body, svs in self.bodies().items():
            if body in others:
                for sv in svs:
                    self.mapping[sv] = target

    def cleave(self, label: int, svs: list[int], new: int) -> None:
        for sv in svs:
            self.mapping[sv] = new

    def renumber(self, new: int, old: int) -> None:
        for sv in self.bodies()[old]:
            self.mapping[sv] = new

    def split_supervoxel(self, sv: int, mask: NDArray[np.bool_], split: int, remain: int) -> None:
        body = self.body_of(sv)
        is_sv = self.vol == np.uint64(sv)
        self.vol[is_sv & mask] = split
        self.vol[is_sv & ~mask] = remain
        self.mapping[split] = body
        self.mapping[remain] = body
        self.mapping[sv] = 0


@dataclass
class World:
    labels: LabelStore
    versions: VersionService
    at: At
    inst: Instance
    model: Model

    def refresh(self) -> None:
        self.at = self.versions.resolve(self.at.uuid)

    def read(self, supervoxels: bool = False, scale: int = 0) -> Labels:
        z, y, x = (n >> scale for n in self.model.vol.shape)
        box = Box3.at(Point3(0, 0, 0), Point3(x, y, z))
        return self.labels.read_box(self.at, self.inst, box, scale=scale, supervoxels=supervoxels)

    def problems(self) -> list[str]:
        return check_version(self.labels, self.at, self.inst)

    def check(self) -> None:
        assert self.problems() == []
        assert np.array_equal(self.read(supervoxels=True), self.model.vol)
        assert np.array_equal(self.read(), self.model.body_volume())


def make_world(
    shape: tuple[int, int, int] = (64, 64, 64),
    seeds: int = 24,
    seed: int = 1,
    block: int = 16,
    downres: int = 0,
    store: ObjectStore | None = None,
) -> World:
    versions = open_versions(store or ObjectStore(MemoryBackend()))
    labels = LabelStore.on(versions)
    uuid = versions.create_repo()
    settings = {"blocksize": f"{block},{block},{block}", "maxdownreslevel": str(downres)}
    versions.new_instance(uuid, "seg", "labelmap", settings=settings)
    at = versions.resolve(uuid)
    inst = at.instance("seg")
    vol = voronoi(shape, seeds, seed)
    z, y, x = shape
    labels.writer.write_raw(
        at, inst, Box3.at(Point3(0, 0, 0), Point3(x, y, z)), vol.tobytes(), "", "POST raw"
    )
    if downres:
        labels.writer.downres_stale(at, inst, "downres")
    return World(labels, versions, at, inst, Model(vol.copy()))
