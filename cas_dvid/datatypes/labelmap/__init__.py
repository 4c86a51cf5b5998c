"""labelmap (and labelarray, labelblk): DVID's uint64 segmentation with a label index.

Modules: ``keys`` (the instance tree's layout), ``layout`` (settings), ``codec``,
``counts``, ``downres``, ``rle``, ``sparsevol``, ``neuroglancer`` (numeric kernels
and wire formats, each with a plain twin in ``reference``), ``writes`` and
``ingest`` (writes as plans), ``store`` (reads), ``bodies`` (what the label index
answers), ``counters`` (repo-wide label counters).
"""

from __future__ import annotations

from cas_dvid.datatypes.base import DataType
from cas_dvid.datatypes.labelmap.branches import BodyDiff, resolve_conflict
from cas_dvid.datatypes.labelmap.keys import show_key
from cas_dvid.datatypes.labelmap.layout import (
    KINDS,
    compression_text,
    extended_info,
    label_layout,
    layout_of,
)
from cas_dvid.datatypes.labelmap.store import LabelStore
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.versions import Instance

HELP = """{name}: uint64 labels in blocks (DVID's {name}){extra}.

Settings (POST /api/repo/{{uuid}}/instance, values as strings):
  BlockSize        "x,y,z" voxels per block, multiples of 16 (default {block})
  VoxelSize        "x,y,z" (default 8,8,8)       VoxelUnits (default nanometers)
  IndexedLabels    "false" to keep no label index (default true)
  MaxDownresLevel  lower-resolution scales kept, each 2x coarser (default 0)

Voxels (8 bytes per voxel, little-endian, ZYX with X fastest; supervoxels=true reads
supervoxel ids instead of bodies, scale=N a lower resolution):
  GET  .../raw/0_1_2/{{size}}/{{offset}}[?compression=lz4|gzip|google|googlegzip]
  GET  .../raw/{{xy|xz|yz}}/{{w_h}}/{{x_y_z}}[/raw]   GET .../isotropic/...
       raw reads take ?roi=NAME (labels outside the ROI read as 0, scale 0)
  GET  .../arb/{{top left}}/{{top right}}/{{bottom left}}/{{res}}[/png|raw]   nearest labels
  POST .../raw/0_1_2/{{size}}/{{offset}}[?compression=lz4|gzip]   block-aligned
  GET  .../label/{{x_y_z}}            {{"Label": n}}
  GET  .../labels (body [[x,y,z],...])  [n, ...]
  GET  .../blocks/{{size}}/{{offset}} and .../specificblocks?blocks=x,y,z,...
       record streams (int32 bx, by, bz, nbytes; payload); compression=
       blocks (gzip of DVID's label Block), lz4, gzip, uncompressed
  POST .../blocks[?downres=true&noindexing=true&scale=N]   records of gzip(label Block)
  POST .../ingest-supervoxels[?scale=N]                    the same, not indexed
  POST .../downres   (cas_dvid) rebuild lower-res blocks marked stale by writes
Labels and bodies:
  GET  .../maxlabel, POST .../maxlabel/{{n}}; GET .../nextlabel, POST .../nextlabel/{{count}},
  POST .../set-nextlabel/{{label}}[?ceiling=n]
  GET  .../mapping (body [sv, ...]), .../mappings[?format=binary], POST .../mappings
  GET  .../supervoxels/{{label}}, .../size/{{label}}, .../sizes, .../supervoxel-sizes/{{label}}
  GET|HEAD .../sparsevol/{{label}}[?format=rles|srles|blocks&minx..maxz&exact&scale]
  GET  .../sparsevol-size/{{label}}, .../sparsevol-coarse/{{label}},
       .../sparsevols-coarse/{{a}}/{{b}}, .../sparsevol-by-point/{{x_y_z}}
  GET|POST .../index/{{label}}, .../indices; GET .../indices-compressed, .../listlabels
  GET  .../info, .../metadata
"""


def _spatial(inst: Instance) -> Spatial:
    return layout_of(inst).spatial


def _datatype(kind: str) -> DataType:
    def check(settings: dict[str, str]) -> dict[str, str]:
        label_layout(kind, settings)
        return settings

    extra = {
        "labelmap": ", a supervoxel -> body mapping and a label index",
        "labelarray": " with a label index, no mapping",
        "labelblk": ", legacy: no mapping, no index",
    }[kind]
    block = "32,32,32" if kind == "labelblk" else "64,64,64"
    return DataType(
        kind,
        f"{kind}/{kind}.go",
        "0.1",
        LabelStore,
        check_settings=check,
        spatial=_spatial,
        show_key=show_key,
        resolve=resolve_conflict,
        diff_summary=BodyDiff,
        has_tags=kind == "labelmap",
        help=HELP.format(name=kind, extra=extra, block=block),
        extended=extended_info,
        compression=compression_text,
    )


DATATYPES = [_datatype(kind) for kind in KINDS]

__all__ = ["DATATYPES", "LabelStore"]
