"""Slices and images in DVID's URL forms: dims (``xy``, ``0_1_2``...), formats, encoders."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError
from cas_dvid.strconv import is_uint

DIMS_2D = {"xy": (0, 1), "0_1": (0, 1), "xz": (0, 2), "0_2": (0, 2), "yz": (1, 2), "1_2": (1, 2)}
DIMS_3D = {"0_1_2", "vol", "xyz"}
IMAGE_TYPES = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff", "bmp": "image/bmp"}
OCTET = "application/octet-stream"


def is_dims(text: str) -> bool:
    """Whether ``text`` names dims (a plane or a volume)."""
    dims = text.replace(",", "_")
    return dims in DIMS_2D or dims in DIMS_3D


def parse_dims(text: str) -> tuple[int, int] | None:
    """2-D axes for ``xy``-like dims, None for 3-D; 400 for anything else."""
    dims = text.replace(",", "_")
    if dims in DIMS_2D:
        return DIMS_2D[dims]
    if dims in DIMS_3D:
        return None
    raise InvalidInputError(
        f"unsupported dims {text!r}: expected xy, xz, yz, 0_1, 0_2, 1_2, 0_1_2 or vol"
    )


def parse_format(text: str) -> tuple[str, int]:
    """``png``, ``jpg[:q]``/``jpeg[:q]``, ``tif``, ``bmp`` or ``raw``."""
    name, _, q = text.lower().partition(":")
    name = {"jpeg": "jpg", "tiff": "tif"}.get(name, name)
    if name not in (*IMAGE_TYPES, "raw"):
        raise InvalidInputError(
            f"unsupported image format {text!r}: use png, jpg[:quality], tif, bmp or raw"
        )
    quality = 80
    if q:
        if name != "jpg" or not is_uint(q, digits=3) or not 1 <= int(q) <= 100:
            raise InvalidInputError(f"bad format {text!r}: only jpg takes a :quality of 1..100")
        quality = int(q)
    return name, quality


def volume_format(text: str | None) -> tuple[str, int]:
    """Return the format segment of a 3-D read: ``jpg``/``jpeg`` gives a JPEG, anything else raw.

    DVID answers raw voxels for any other word (``octet-stream`` included).
    """
    if text is None:
        return "raw", 80
    name, _, q = text.lower().partition(":")
    if name in ("jpg", "jpeg"):
        return parse_format(text)
    return "raw", 80


def encode_image(img: npt.NDArray[Any], fmt: str, quality: int, vtype: str) -> bytes:
    """Return a 2-D array as an image file.

    PERF: PNG at compress_level 1 is several times faster than Pillow's default and
    still a valid PNG (PERF-NOTES); slices are for viewing, not archiving.
    """
    from PIL import Image

    if img.dtype == np.uint8:
        pil = Image.fromarray(np.ascontiguousarray(img), mode="L")
    elif img.dtype == np.uint16 and fmt in ("png", "tif"):
        pil = Image.fromarray(np.ascontiguousarray(img.astype("<u2")), mode="I;16")
    else:
        raise InvalidInputError(f"format {fmt} is not available for {vtype} data; use raw")
    buf = io.BytesIO()
    if fmt == "png":
        pil.save(buf, "PNG", compress_level=1)
    elif fmt == "jpg":
        pil.save(buf, "JPEG", quality=quality)
    elif fmt == "tif":
        pil.save(buf, "TIFF")
    else:
        pil.save(buf, "BMP")
    return buf.getvalue()


def encode_label_png(img: npt.NDArray[Any]) -> bytes:
    """Return a 2-D uint64 label slice as DVID writes one: a 16-bit RGBA PNG of the label bytes.

    DVID wraps the slice's little-endian bytes as Go's NRGBA64 pixels, so each pixel's
    eight bytes are the label's, in order; PNG stores 16-bit samples big-endian, which
    Go's encoder does by copying those bytes as they are.  Pillow cannot write 16-bit
    RGBA, so the PNG is assembled here (one IDAT, filter 0 on every row).
    """
    h, w = img.shape
    raw = np.ascontiguousarray(img, dtype="<u8").view(np.uint8).reshape(h, w * 8)
    rows = np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(rows, 1)),
            chunk(b"IEND", b""),
        )
    )
