"""Loading a volume into a running server over HTTP: block-aligned slabs, read-modify-write.

Voxel instances take the source's own type; label instances (labelmap, labelarray,
labelblk) take any unsigned integer source, widened to uint64 supervoxels, and build
their label index as each slab lands (every POST raw updates blocks and index at once).

Blocks only partly covered by the source are read from the server first and merged,
the way DVID's own loader fills blocks, so any offset works.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.api.client import DvidClient, node_path
from cas_dvid.datatypes.sources import Source, slabs
from cas_dvid.errors import InvalidInputError

DTYPES = {"uint8": "<u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float32": "<f4"}


@dataclass(frozen=True, slots=True)
class Target:
    """The instance being loaded."""

    client: DvidClient
    uuid: str
    name: str
    block: tuple[int, int, int]  # x, y, z
    dtype: np.dtype[Any]
    labels: bool = False  # a label instance: partial blocks are read as supervoxels

    @classmethod
    def lookup(cls, client: DvidClient, uuid: str, name: str) -> Target:
        """Read BlockSize and voxel type from the instance's info."""
        info = client.get_json(node_path(uuid, name, "info"))
        ext: dict[str, Any] = info.get("Extended", {})
        if "BlockSize" not in ext:
            raise InvalidInputError(f"{name} is a {info['Base']['TypeName']}, not a voxel instance")
        label = ext["Values"][0]["DataType"]
        bx, by, bz = (int(v) for v in ext["BlockSize"])
        labels = info["Base"]["TypeName"] in ("labelmap", "labelarray", "labelblk")
        return cls(client, uuid, name, (bx, by, bz), np.dtype(DTYPES[label]), labels)

    def get(self, x0: int, y0: int, z0: int, nx: int, ny: int, nz: int) -> npt.NDArray[Any]:
        """GET raw of a box."""
        data = self.client.request(
            "GET",
            node_path(self.uuid, self.name, "raw", "0_1_2", f"{nx}_{ny}_{nz}", f"{x0}_{y0}_{z0}")
            + ("?supervoxels=true" if self.labels else ""),
        )
        return np.frombuffer(data, dtype=self.dtype).reshape(nz, ny, nx).copy()

    def post(self, x0: int, y0: int, z0: int, vol: npt.NDArray[Any]) -> None:
        """POST raw of an aligned box."""
        nz, ny, nx = vol.shape
        path = node_path(self.uuid, self.name, "raw", "0_1_2", f"{nx}_{ny}_{nz}", f"{x0}_{y0}_{z0}")
        self.client.request(
            "POST",
            path,
            np.ascontiguousarray(vol, dtype=self.dtype).tobytes(),
            {"Content-Type": "application/octet-stream"},
        )


def load(
    source: Source, target: Target, offset: tuple[int, int, int], progress: bool = True
) -> int:
    """Send ``source`` to ``target`` at ``offset``; return the number of voxels loaded."""
    from tqdm import tqdm

    widen = target.labels and source.dtype.kind == "u" and source.dtype.itemsize <= 8
    if source.dtype != target.dtype and not widen:
        raise InvalidInputError(
            f"source voxels are {source.dtype}, the instance stores {target.dtype}"
            + (" (label volumes: any unsigned integer type)" if target.labels else "")
        )
    ox, oy, oz = offset
    nz, ny, nx = source.shape
    boxes = list(slabs(source.shape, offset, target.block))
    bar = tqdm(
        total=nz * ny * nx * source.dtype.itemsize,
        unit="B",
        unit_scale=True,
        desc=f"load {target.name}",
        disable=not progress or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    with bar:
        for x0, x1, y0, y1, z0, z1 in boxes:
            # the part of the source inside this aligned box
            sx0, sx1 = max(x0, ox), min(x1, ox + nx)
            sy0, sy1 = max(y0, oy), min(y1, oy + ny)
            sz0, sz1 = max(z0, oz), min(z1, oz + nz)
            if sx0 >= sx1 or sy0 >= sy1 or sz0 >= sz1:
                continue
            part = source.read(sz0 - oz, sz1 - oz, sy0 - oy, sy1 - oy, sx0 - ox, sx1 - ox)
            part = part.astype(target.dtype, copy=False)  # (uint32 labels widen to uint64)
            covered = (sx0, sx1, sy0, sy1, sz0, sz1) == (x0, x1, y0, y1, z0, z1)
            vol = part if covered else target.get(x0, y0, z0, x1 - x0, y1 - y0, z1 - z0)
            if not covered:
                vol[sz0 - z0 : sz1 - z0, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = part
            target.post(x0, y0, z0, vol)
            bar.update(part.nbytes)
    return nz * ny * nx
