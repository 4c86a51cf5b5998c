"""DVID's roi datatype: a set of blocks stored as x-runs (spans); kernels in ``spans``.

Modules: ``spans`` (parse, order, merge, keys), ``query`` (ptquery, mask),
``partition`` (subvolumes), each with a plain twin (``_reference``,
``_partition_ref``); ``store`` is the datatype at a version.
"""

from __future__ import annotations

from cas_dvid.datatypes.base import DataType
from cas_dvid.datatypes.geometry import parse_block_size
from cas_dvid.datatypes.roi.spans import SPAN_KEY_SIZE, parse_span_key
from cas_dvid.datatypes.roi.store import DEFAULT_BLOCK, ROI_SPAN_CLASS, RoiStore

HELP = """roi: a region of interest as runs of blocks (DVID's roi).

Settings: BlockSize "x,y,z" (default 32,32,32).
  GET    .../roi                 [[z, y, x0, x1], ...] in block coordinates, x1 inclusive,
                                 sorted (exact duplicates once, overlaps kept, as DVID)
  POST   .../roi                 the same JSON: replaces the ROI at this version
  DELETE .../roi                 removes it at this version
  POST   .../ptquery             [[x, y, z], ...] voxel points -> [true, false, ...]
  GET    .../mask/0_1_2/{size}/{offset}   uint8 voxels, 1 inside the ROI's blocks
  GET    .../partition?batchsize=N[&optimized=true]   DVID's subvolumes JSON
"""


def _check(settings: dict[str, str]) -> dict[str, str]:
    parse_block_size(settings.get("blocksize"), DEFAULT_BLOCK)
    return settings


def _show(key: bytes) -> str:
    if key[:1] == ROI_SPAN_CLASS and len(key) == 1 + SPAN_KEY_SIZE:
        z, y, x0, x1 = parse_span_key(key[1:])
        return f"span z={z} y={y} x={x0}..{x1}"
    return key.hex()


DATATYPES = [
    DataType("roi", "roi/roi.go", "0.1", RoiStore, check_settings=_check, show_key=_show, help=HELP)
]

__all__ = ["DATATYPES", "RoiStore"]
