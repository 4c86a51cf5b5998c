"""imageblk: voxel volumes (uint8blk/grayscale8, uint16blk, uint32blk, uint64blk, float32blk)."""

from __future__ import annotations

from cas_dvid.datatypes.base import DataType
from cas_dvid.datatypes.imageblk.layout import (
    BLOCK_CLASS,
    EXTENTS_KEY,
    VOXEL_TYPES,
    Layout,
    VoxelType,
    compression_text,
    extended_info,
    layout,
    layout_of,
    show_key,
)
from cas_dvid.datatypes.imageblk.store import ImageStore
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.datatypes.streams import Coord
from cas_dvid.versions import Instance

HELP = """{name}: a versioned volume of {label} voxels in blocks (DVID's imageblk family).

Settings (POST /api/repo/{{uuid}}/instance, values as strings):
  BlockSize   "x,y,z" voxels per block (default 32,32,32)
  VoxelSize   "x,y,z" (default 8,8,8)     VoxelUnits  (default nanometers)
  Background  value of unwritten voxels in GET blocks (default 0)
  Compression lz4 (default), zstd, none{jpeg}

  GET  .../raw/0_1_2/{{x_y_z size}}/{{x_y_z offset}}[/format]
       packed voxels, ZYX with X fastest, little-endian; unwritten voxels are 0;
       any offset and size; format jpg gives one JPEG of width X, height Y*Z
  GET  .../raw/{{xy|xz|yz}}/{{w_h}}/{{x_y_z}}[/png|jpg[:q]|tif|bmp|raw]   a 2-D slice
       (also written .../xy/raw/..., the plane first, as DVID's README does)
  GET  .../isotropic/...   as raw, Z resampled to the X voxel size
       raw/isotropic take ?roi=NAME[&attenuation=1..7] (voxels outside the ROI zeroed or
       dimmed) and ?scale=N (read from the pyramid level NAME_N)
  GET  .../arb/{{top left}}/{{top right}}/{{bottom left}}/{{res}}[/png|jpg[:q]]
       an arbitrarily oriented slice; points in world units (VoxelSize), trilinear
  POST .../downres[?levels=N]   build NAME_1..NAME_N by 2x2x2 means (uint8/uint16),
       recomputing only over changed blocks; GET .../downres is the job's status
  POST .../raw/0_1_2/{{size}}/{{offset}}   block-aligned voxels of exactly that size
  GET|POST .../blocks/{{bx_by_bz}}/{{spanX}}   raw blocks along X
  GET  .../subvolblocks/{{size}}/{{offset}}[?compression=uncompressed|jpeg]
  GET  .../specificblocks?blocks=x,y,z,x,y,z...[&compression=uncompressed|jpeg]
       record streams: int32 bx, by, bz, nbytes (LE), then the block
  GET  .../metadata        nd-data axes and properties
  POST .../extents         {{"MinPoint": [x,y,z], "MaxPoint": [x,y,z]}}
  POST .../resolution      [x, y, z]
  GET  .../info
"""


def _spatial(inst: Instance) -> Spatial:
    return layout_of(inst).spatial


def _check(vtype: VoxelType) -> DataType:
    def check(settings: dict[str, str]) -> dict[str, str]:
        layout(vtype, settings)
        return settings

    jpeg = ", jpeg[:quality] (lossy)" if vtype.name == "uint8blk" else ""
    return DataType(
        vtype.name,
        f"imageblk/{vtype.label}.go",
        "0.2",
        ImageStore,
        aliases=("grayscale8",) if vtype.name == "uint8blk" else (),
        check_settings=check,
        spatial=_spatial,
        help=HELP.format(name=vtype.name, label=vtype.label, jpeg=jpeg),
        extended=extended_info,
        compression=compression_text,
        show_key=show_key,
    )


DATATYPES = [_check(t) for t in VOXEL_TYPES.values()]

__all__ = [
    "BLOCK_CLASS",
    "DATATYPES",
    "EXTENTS_KEY",
    "VOXEL_TYPES",
    "Coord",
    "ImageStore",
    "Layout",
    "VoxelType",
    "layout_of",
]
