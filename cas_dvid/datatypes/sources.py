"""Volumes to load: image stacks (PNG/TIFF slices), zarr arrays or what tensorstore opens.

``slabs`` plans the block-aligned boxes a source placed at an offset covers (one
block thick in Z, tiled in XY), so any offset works: a loader reads the blocks only
partly covered first and merges (read-modify-write), the way DVID's loader does.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cas_dvid.errors import InvalidInputError

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
        # Every file's header first (cheap: no pixels), so a stray file fails the load
        # before anything is written, naming the file.
        sizes = {f: _image_size(f) for f in self.files}
        odd = [f for f, s in sizes.items() if s != sizes[self.files[0]]]
        if odd:
            raise InvalidInputError(
                f"{odd[0]} is {sizes[odd[0]][0]}x{sizes[odd[0]][1]} ({sizes[odd[0]][2]}), "
                f"but {self.files[0]} is {sizes[self.files[0]][0]}x{sizes[self.files[0]][1]} "
                f"({sizes[self.files[0]][2]}): every slice must match"
            )
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


def _image_size(path: str) -> tuple[int, int, str]:
    """Width, height and mode of an image file from its header; 400-style error if unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size[0], img.size[1], img.mode
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"{path} is not an image file this loader reads: {exc}") from None


class ZarrSource(Source):
    """A 3-D zarr array (v2 or v3), ZYX; a path or URL, with ``path::array`` for groups."""

    def __init__(self, url: str) -> None:
        import zarr

        where, _, inner = url.partition("::")
        if "://" not in where and not Path(where).exists():
            raise InvalidInputError(f"no zarr array or group at {where!r}: the path does not exist")
        try:
            node: Any = zarr.open(where, mode="r")
            if inner:
                node = node[inner]
        except KeyError:
            raise InvalidInputError(f"{where!r} has no array {inner!r} inside it") from None
        except (OSError, ValueError, TypeError) as exc:
            raise InvalidInputError(f"cannot open {url!r} as zarr: {exc}") from None
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


class TensorstoreSource(Source):
    """A volume tensorstore opens: neuroglancer precomputed, N5, or any tensorstore spec.

    Specs: ``precomputed:PATH[::SCALE]`` (a local folder or a kvstore URL such as
    ``gs://bucket/path``; SCALE is the scale's index or key, default the first),
    ``n5:PATH`` (a dataset folder), ``tensorstore:{JSON spec}``.  Precomputed volumes
    are x, y, z, channel with one channel, N5 datasets list x first (as N5 writers
    do): both are read as DVID's z, y, x.  A JSON spec must give a 3-D z, y, x array.
    """

    PREFIXES = ("precomputed:", "n5:", "tensorstore:")

    def __init__(self, spec: str) -> None:
        try:
            import tensorstore as ts
        except ImportError:
            raise InvalidInputError(
                f"{spec.partition(':')[0]}: sources need tensorstore: pip install 'cas-dvid[batch]'"
            ) from None
        kind, _, rest = spec.partition(":")
        if kind == "tensorstore":
            try:
                doc = json.loads(rest)
            except ValueError as exc:
                raise InvalidInputError(f"tensorstore: needs a JSON spec: {exc}") from None
            order: tuple[int, ...] = (0, 1, 2)
        else:
            path, _, scale = rest.partition("::")
            doc = {"driver": "neuroglancer_precomputed" if kind == "precomputed" else "n5"}
            doc["kvstore"] = path if "://" in path else {"driver": "file", "path": path}
            if kind == "precomputed" and scale:
                doc["scale_index" if scale.isdigit() else "scale_metadata"] = (
                    int(scale) if scale.isdigit() else {"key": scale}
                )
            order = (2, 1, 0)
        try:
            arr = ts.open(doc, read=True).result()
        except (ValueError, RuntimeError) as exc:
            raise InvalidInputError(f"cannot open {spec!r} with tensorstore: {exc}") from None
        if kind == "precomputed":
            if arr.shape[3] != 1:
                raise InvalidInputError(f"{spec} has {arr.shape[3]} channels; load one at a time")
            arr = arr[:, :, :, 0]
        if arr.rank != 3:
            raise InvalidInputError(f"{spec} is {arr.rank}-D, not a 3-D volume")
        self.array = arr.transpose(order) if order != (0, 1, 2) else arr
        self.array = self.array.translate_to[0, 0, 0]
        z, y, x = (int(v) for v in self.array.shape)
        self.shape = (z, y, x)
        self.dtype = np.dtype(self.array.dtype.numpy_dtype)

    def read(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """One tensorstore read of the box (z, y, x)."""
        return np.ascontiguousarray(self.array[z0:z1, y0:y1, x0:x1].read().result())


def open_source(spec: str) -> Source:
    """Open a volume: a tensorstore spec, a zarr array, or an image glob.

    Tensorstore: ``precomputed:``, ``n5:``, ``tensorstore:`` prefixes.  Zarr: a path
    ending in .zarr, holding zarr.json or .zarray, or a URL.
    """
    if spec.startswith(TensorstoreSource.PREFIXES):
        return TensorstoreSource(spec)
    p = Path(spec.partition("::")[0])
    is_zarr = (
        spec.rstrip("/").split("::")[0].endswith(".zarr")
        or (p / "zarr.json").exists()
        or (p / ".zarray").exists()
        or "://" in spec
    )
    return ZarrSource(spec) if is_zarr else ImageStack(spec)


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


def describe(source: Source) -> str:
    """One line about a source."""
    return json.dumps({"shape_zyx": list(source.shape), "dtype": str(source.dtype)})
