"""imagetile (and its old name multiscale2d): precomputed 2-D tiles of a uint8blk source."""

from __future__ import annotations

from cas_dvid.datatypes.base import DataType
from cas_dvid.datatypes.imagetile.layout import OLD_NAME, check_settings, show_key
from cas_dvid.datatypes.imagetile.store import TileStore

HELP = """{name}: precomputed XY, XZ and YZ tiles at several scales of a uint8blk source.

Settings (POST /api/repo/{{uuid}}/instance, any case, values as strings):
  Source       the uint8blk (grayscale8) instance to tile
  TileSize     pixels per tile side (default 512; the seed's example uses 128)
  Format       png (default) or jpg
  Placeholder  true: raw slices show DVID's placeholder (white, rulers, a caption) where
               a scale-0 tile is missing; false (default): black

Tile space: {space}

  GET|POST .../metadata    {{"MinTileCoord":[x,y,z],"MaxTileCoord":[x,y,z],
                            "Levels":{{"0":{{"Resolution":[..],"TileSize":[..]}},...}}}}
                           (GET is 400 until set)
  GET  .../tile/{{plane}}/{{scale}}/{{x_y_z}}[/png|jpg][?noblanks=true]
       the stored tile; a missing tile is a black one, or 404 with noblanks=true
  POST .../tile/{{plane}}/{{scale}}/{{x_y_z}}     store the body as that tile
  GET  .../tilekey/{{plane}}/{{scale}}/{{x_y_z}}  {{"key": "<hex of DVID's 21-byte TKey>"}}
  GET  .../raw/{{plane}}/{{w_h}}/{{x_y_z}}[/png|jpg|raw]   a slice stitched from scale-0 tiles
  GET  .../isotropic/...   as raw, the plane's resolution anisotropy scaled out (as DVID)
  POST .../generate[?planes=xy,xz&scales=N]   start generating tiles (cas_dvid extension)
  GET  .../generate        {{"Status":"none|running|done|failed","Done":n,"Total":N,...}}

  plane: xy (tileX, tileY, z), xz (tileX, y, tileZ), yz (x, tileY, tileZ): two tile
  indices and one voxel slice.  Scale s halves the image s times (truncating 2x2 mean).
"""
ABSOLUTE = """DVID's current imagetile addressing: tile indices count from voxel 0
  (tile x = voxel x / (TileSize * 2^scale)) and the slice number is the absolute voxel."""
RELATIVE = """the old multiscale2d addressing of DVID's README: tile space starts at the
  source's minimum point, so tile/xy/0/0_0_0 is the upper left tile of the first slice."""

DATATYPES = [
    DataType(
        "imagetile",
        "imagetile/imagetile.go",
        "0.1",
        TileStore,
        check_settings=check_settings,
        show_key=show_key,
        help=HELP.format(name="imagetile", space=ABSOLUTE),
    ),
    DataType(
        OLD_NAME,
        "multiscale2d/multiscale2d.go",
        "0.1",
        TileStore,
        check_settings=check_settings,
        show_key=show_key,
        help=HELP.format(name=OLD_NAME, space=RELATIVE),
    ),
]

__all__ = ["DATATYPES", "TileStore"]
