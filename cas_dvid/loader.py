"""Load image stacks (PNG/TIFF slices) or zarr arrays into a voxel instance over HTTP.

The volume is sent in block-aligned slabs (one block thick in Z, tiled in XY), so any
offset works: blocks only partly covered by the source are read from the server
first and merged (read-modify-write), the way DVID's own loader fills blocks.
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cas_dvid.client import DvidClient, node_path
from cas_dvid.errors import InvalidInputError

DTYPES = {"uint8": "<u1", "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float32": "<f4"}
TILE_BLOCKS = 16  # XY tile edge in blocks: 512 voxels for 32^3 blocks


class Source:
    """A ZYX volume read slab by slab."""

    shape: tuple[int, int, int]
    dtype: np.dtype

    def read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Voxels of a box in source coordinates."""
        raise NotImplementedError


class ImageStack(Source):
    """2-D image files in filename order, one per Z; slices are read as slabs need them."""

    def __init__(self, pattern: str) -> None:
        from PIL import Image

        self.files = sorted(glob.glob(pattern))
        if not self.files:
            raise InvalidInputError(f"no files match {pattern!r}")
        first = np.asarray(Image.open(self.files[0]))
        if first.ndim != 2:
            raise InvalidInputError(
                f"{self.files[0]} is not a single-channel image (shape {first.shape})"
            )
        self.shape = (len(self.files), first.shape[0], first.shape[1])
        self.dtype = first.dtype
        self._cache: dict[int, np.ndarray] = {}

    def _slice(self, z: int) -> np.ndarray:
        from PIL import Image

        if z not in self._cache:
            if len(self._cache) > 256:
                self._cache.pop(min(self._cache))
            img = np.asarray(Image.open(self.files[z]))
            if img.shape != self.shape[1:]:
                raise InvalidInputError(
                    f"{self.files[z]} is {img.shape}, expected {self.shape[1:]} like the first"
                )
            self._cache[z] = img
        return self._cache[z]

    def read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Stack the needed slices."""
        return np.stack([self._slice(z)[y0:y1, x0:x1] for z in range(z0, z1)])


class ZarrSource(Source):
    """A 3-D zarr array (v2 or v3), ZYX; a path or URL, with ``path::array`` for groups."""

    def __init__(self, url: str) -> None:
        import zarr

        where, _, inner = url.partition("::")
        node: Any = zarr.open(where, mode="r")
        if inner:
            node = node[inner]
        if not hasattr(node, "shape") or len(node.shape) != 3:
            raise InvalidInputError(
                f"{url} is not a 3-D zarr array (name one inside a group with path::array)"
            )
        self.array = node
        z, y, x = (int(s) for s in node.shape)
        self.shape = (z, y, x)
        self.dtype = np.dtype(node.dtype)

    def read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """One zarr read of the box."""
        return np.asarray(self.array[z0:z1, y0:y1, x0:x1])


def open_source(spec: str) -> Source:
    """A zarr array (a path ending in .zarr, a zarr.json/.zarray inside, or a URL) or an image glob."""
    p = Path(spec.partition("::")[0])
    is_zarr = (
        spec.rstrip("/").split("::")[0].endswith(".zarr")
        or (p / "zarr.json").exists()
        or (p / ".zarray").exists()
        or "://" in spec
    )
    return ZarrSource(spec) if is_zarr else ImageStack(spec)


@dataclass(frozen=True, slots=True)
class Target:
    """The instance being loaded."""

    client: DvidClient
    uuid: str
    name: str
    block: tuple[int, int, int]  # x, y, z
    dtype: np.dtype

    @classmethod
    def lookup(cls, client: DvidClient, uuid: str, name: str) -> Target:
        """Read BlockSize and voxel type from the instance's info."""
        info = client.get_json(node_path(uuid, name, "info"))
        ext: dict[str, Any] = info.get("Extended", {})
        if "BlockSize" not in ext:
            raise InvalidInputError(f"{name} is a {info['Base']['TypeName']}, not a voxel instance")
        label = ext["Values"][0]["DataType"]
        bx, by, bz = (int(v) for v in ext["BlockSize"])
        return cls(client, uuid, name, (bx, by, bz), np.dtype(DTYPES[label]))

    def get(self, x0: int, y0: int, z0: int, nx: int, ny: int, nz: int) -> np.ndarray:
        """GET raw of a box."""
        data = self.client.request(
            "GET",
            node_path(self.uuid, self.name, "raw", "0_1_2", f"{nx}_{ny}_{nz}", f"{x0}_{y0}_{z0}"),
        )
        return np.frombuffer(data, dtype=self.dtype).reshape(nz, ny, nx).copy()

    def post(self, x0: int, y0: int, z0: int, vol: np.ndarray) -> None:
        """POST raw of an aligned box."""
        nz, ny, nx = vol.shape
        path = node_path(self.uuid, self.name, "raw", "0_1_2", f"{nx}_{ny}_{nz}", f"{x0}_{y0}_{z0}")
        self.client.request(
            "POST",
            path,
            np.ascontiguousarray(vol, dtype=self.dtype).tobytes(),
            {"Content-Type": "application/octet-stream"},
        )


def _floor(v: int, b: int) -> int:
    return (v // b) * b


def _ceil(v: int, b: int) -> int:
    return -((-v) // b) * b


def slabs(
    shape: tuple[int, int, int], offset: tuple[int, int, int], block: tuple[int, int, int]
) -> Iterator[tuple[int, ...]]:
    """Aligned target boxes (x0, x1, y0, y1, z0, z1) covering the source placed at ``offset``."""
    (nz, ny, nx), (ox, oy, oz), (bx, by, bz) = shape, offset, block
    tx, ty = bx * TILE_BLOCKS, by * TILE_BLOCKS
    for z0 in range(_floor(oz, bz), _ceil(oz + nz, bz), bz):
        for y0 in range(_floor(oy, ty), _ceil(oy + ny, by), ty):
            for x0 in range(_floor(ox, tx), _ceil(ox + nx, bx), tx):
                x1 = min(x0 + tx, _ceil(ox + nx, bx))
                y1 = min(y0 + ty, _ceil(oy + ny, by))
                yield x0, max(x1, x0 + bx), max(y0, _floor(oy, by)), y1, z0, z0 + bz


def load(
    source: Source, target: Target, offset: tuple[int, int, int], progress: bool = True
) -> int:
    """Send ``source`` to ``target`` at ``offset``; return the number of voxels loaded."""
    from tqdm import tqdm

    if source.dtype != target.dtype:
        raise InvalidInputError(
            f"source voxels are {source.dtype}, the instance stores {target.dtype}"
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
            covered = (sx0, sx1, sy0, sy1, sz0, sz1) == (x0, x1, y0, y1, z0, z1)
            vol = part if covered else target.get(x0, y0, z0, x1 - x0, y1 - y0, z1 - z0)
            if not covered:
                vol[sz0 - z0 : sz1 - z0, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = part
            target.post(x0, y0, z0, vol)
            bar.update(part.nbytes)
    return nz * ny * nx


def describe(source: Source) -> str:
    """One line about a source."""
    return json.dumps({"shape_zyx": list(source.shape), "dtype": str(source.dtype)})
