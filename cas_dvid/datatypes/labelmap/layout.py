"""Settings of the label types (labelmap, labelarray, labelblk) and the info DVID shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cas_dvid.datatypes.base import parse_bool
from cas_dvid.datatypes.geometry import Point3, parse_block_size, parse_floats, parse_int
from cas_dvid.datatypes.labelmap.keys import LABEL_BLOCK_CLASS
from cas_dvid.datatypes.regions import Spatial
from cas_dvid.errors import InvalidInputError
from cas_dvid.versions import Instance

KINDS = ("labelmap", "labelarray", "labelblk")
DEFAULT_BLOCKS = {"labelmap": Point3(64, 64, 64), "labelarray": Point3(64, 64, 64)}
LEGACY_BLOCK = Point3(32, 32, 32)
MAX_DOWNRES = 10


@dataclass(frozen=True, slots=True)
class LabelLayout:
    """A label instance's settings, parsed once.

    ``mapped``: supervoxels map to bodies (labelmap); labelarray and labelblk read
    supervoxels as they are.  ``indexed``: the label index is kept (DVID's
    IndexedLabels; labelblk never has one).
    """

    kind: str
    block: Point3
    voxel_size: tuple[float, float, float]
    units: tuple[str, str, str]
    indexed: bool
    max_downres: int

    @property
    def mapped(self) -> bool:
        """Whether supervoxels map to bodies."""
        return self.kind == "labelmap"

    @property
    def block_shape(self) -> tuple[int, int, int]:
        """Numpy (z, y, x) shape of a block."""
        return self.block.z, self.block.y, self.block.x

    @property
    def block_voxels(self) -> int:
        """Voxels in one block."""
        return self.block.x * self.block.y * self.block.z

    @property
    def spatial(self) -> Spatial:
        """How the instance keys its blocks."""
        return Spatial(LABEL_BLOCK_CLASS, self.block)


def label_layout(kind: str, settings: dict[str, str]) -> LabelLayout:
    """Parse settings as DVID names them (keys lower-cased)."""
    default = DEFAULT_BLOCKS.get(kind, LEGACY_BLOCK)
    # NOTE: DVID asks for multiples of 16; the Block codec needs whole 8^3 sub-blocks.
    block = parse_block_size(settings.get("blocksize"), default, multiple_of=16)
    voxel = parse_floats(settings.get("voxelsize", "8,8,8"), 3, "VoxelSize")
    text = settings.get("voxelunits", "nanometers,nanometers,nanometers")
    units = tuple(u.strip() for u in text.split(","))
    if len(units) == 1:
        units = units * 3
    if len(units) != 3:
        raise InvalidInputError(f"VoxelUnits must have 1 or 3 names, got {text!r}")
    indexed = parse_bool(settings.get("indexedlabels", "true"), "IndexedLabels")
    levels = parse_int(settings.get("maxdownreslevel", "0"), "MaxDownresLevel")
    if not 0 <= levels <= MAX_DOWNRES:
        raise InvalidInputError(
            f"illegal number of down-res levels specified ({levels}): must be 0 <= n <= "
            f"{MAX_DOWNRES}"
        )
    return LabelLayout(
        kind,
        block,
        (voxel[0], voxel[1], voxel[2]),
        (units[0], units[1], units[2]),
        indexed and kind != "labelblk",
        levels,
    )


def layout_of(inst: Instance) -> LabelLayout:
    """Return the layout of a label instance."""
    if inst.typename not in KINDS:
        raise InvalidInputError(f"instance {inst.name!r} is a {inst.typename}, not a label type")
    return label_layout(inst.typename, inst.settings)


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else v


def extended_info(inst: Instance) -> dict[str, Any]:
    """DVID's ``Extended`` of a label instance, without what needs I/O (extents, max labels)."""
    lay = layout_of(inst)
    b = lay.block
    label = "labelarray" if lay.kind == "labelarray" else lay.kind
    doc: dict[str, Any] = {
        "Values": [{"DataType": "uint64", "Label": label}],
        "Interpolable": False,
        "BlockSize": [b.x, b.y, b.z],
        "VoxelSize": [_number(v) for v in lay.voxel_size],
        "VoxelUnits": list(lay.units),
        "MinPoint": None,
        "MaxPoint": None,
        "MinIndex": None,
        "MaxIndex": None,
        "Background": 0,
        "GridStore": "",
        "ScaleLevel": 0,
    }
    if lay.kind != "labelblk":
        doc.update(
            MaxLabel={},
            MaxRepoLabel=0,
            NextLabel=0,
            IndexedLabels=lay.indexed,
            MaxDownresLevel=lay.max_downres,
        )
    return doc


def compression_text(inst: Instance) -> str:
    """Base.Compression as DVID shows label types (its default is gzip)."""
    return "gzip compression, level -1"
