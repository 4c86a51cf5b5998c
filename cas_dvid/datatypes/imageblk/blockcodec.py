"""How imageblk blocks travel and change form: stream payloads, JPEG blocks, Z resampling."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import Any

import lz4.block
import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.imageblk.layout import Layout
from cas_dvid.objects.ids import BytesLike

Array = npt.NDArray[Any]


def stream_encoder(compression: str) -> Callable[[Array], BytesLike]:
    """How a block travels in a stream: lz4 as ``u32 size`` + LZ4 block (DVID's), else raw.

    Raw is a view of the block's bytes (never copies a contiguous block): a block from
    the store is an immutable object, so the stream can send it in place.
    """

    def encode(arr: Array) -> BytesLike:
        raw = np.ascontiguousarray(arr).data.cast("B")
        if compression == "lz4":
            return struct.pack("<I", len(raw)) + bytes(lz4.block.compress(raw, store_size=False))
        if compression == "zstd":
            import zstandard

            return bytes(zstandard.ZstdCompressor(level=1).compress(raw))
        return raw

    return encode


def resample_z(vol: Array, lay: Layout, axis: int) -> Array:
    """Rescale Z to the X voxel size by nearest neighbour (no-op when isotropic)."""
    factor = lay.voxel_size[2] / lay.voxel_size[0]
    if abs(factor - 1.0) < 1e-9:
        return vol
    n = max(1, round(vol.shape[axis] * factor))
    idx = np.minimum((np.arange(n) / factor).astype(int), vol.shape[axis] - 1)
    return np.asarray(np.take(vol, idx, axis=axis))


def jpeg_encode(block: Array, quality: int) -> bytes:
    """Encode a uint8 block as one JPEG of its z*y rows (DVID's jpeg block layout)."""
    from PIL import Image

    z, y, x = block.shape
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(block).reshape(z * y, x), mode="L")
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def jpeg_decode(data: bytes | memoryview, shape: tuple[int, int, int]) -> Array:
    """Decode a jpeg block back to its ZYX shape."""
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(bytes(data))).convert("L"))
    return img.reshape(shape)
