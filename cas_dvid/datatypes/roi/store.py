"""The roi datatype at a version: spans in the instance tree, and what they answer.

One tree key per stored span (``ROI_SPAN_CLASS`` + ``spans.span_key``, empty value),
so GET lists them in DVID's stored order with one range scan, a POST that replaces
the ROI is one batch, and a point query reads only the (z, y) rows its points fall
in: one key range per row, O(log n + k) tree nodes, never the whole ROI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.datatypes.base import TypeService
from cas_dvid.datatypes.geometry import Box3, Point3, parse_block_size
from cas_dvid.datatypes.roi import partition as part
from cas_dvid.datatypes.roi import query
from cas_dvid.datatypes.roi import spans as S
from cas_dvid.errors import InvalidInputError
from cas_dvid.objects import ObjectId
from cas_dvid.trees import Tree
from cas_dvid.trees.keys import prefix_range
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Reader

ROI_SPAN_CLASS = b"\x52"
DEFAULT_BLOCK = Point3(32, 32, 32)  # DVID's roi default BlockSize
_EMPTY = b""


def block_size(inst: Instance) -> tuple[int, int, int]:
    """Return the ROI's block size, x, y, z."""
    b = parse_block_size(inst.settings.get("blocksize"), DEFAULT_BLOCK)
    return b.x, b.y, b.z


def _keys_of(spans: S.SpanArray) -> list[bytes]:
    return [ROI_SPAN_CLASS + k for k in S.span_keys(spans)]


class RoiStore(TypeService):
    """roi instances: GET/POST/DELETE roi, ptquery, mask, partition."""

    def spans(self, at: At, inst: Instance) -> S.SpanArray:
        """Return the stored spans, in DVID's order (sorted, exact duplicates once)."""
        return stored_spans(self.tree, self.versions.root_at(at, inst))

    def put(self, at: At, inst: Instance, body: bytes) -> int:
        """POST roi: the posted spans replace the ROI at this version; return their count."""
        new = S.sort_unique_spans(S.check_spans(S.parse_spans_json(body)))
        keys = _keys_of(new)

        def plan(read: Reader) -> dict[bytes, Any]:
            ops: dict[bytes, Any] = {k: None for k, _ in read.range(*prefix_range(ROI_SPAN_CLASS))}
            ops.update(dict.fromkeys(keys, _EMPTY))
            return ops

        self.versions.write(at, inst, plan, 'POST on endpoint "roi"')
        return len(new)

    def delete(self, at: At, inst: Instance) -> None:
        """DELETE roi: no spans at this version (ancestors keep theirs)."""

        def plan(read: Reader) -> dict[bytes, Any]:
            return {k: None for k, _ in read.range(*prefix_range(ROI_SPAN_CLASS))}

        self.versions.write(at, inst, plan, 'DELETE on endpoint "roi"')

    def rows(self, at: At, inst: Instance, rows: Sequence[tuple[int, int]]) -> S.SpanArray:
        """Return the spans of the given (z, y) block rows only (one key range each)."""
        root = self.versions.root_at(at, inst)
        keys: list[bytes] = []
        for z, y in rows:
            lo, hi = S.span_row_range(z, y)
            keys += [
                k[1:] for k, _ in self.tree.range(root, ROI_SPAN_CLASS + lo, ROI_SPAN_CLASS + hi)
            ]
        return S.parse_span_keys(keys)

    def ptquery(self, at: At, inst: Instance, body: bytes) -> npt.NDArray[np.bool_]:
        """POST ptquery: for each voxel point, whether its block is in the ROI."""
        pts = query.parse_points_json(body)
        size = np.asarray(block_size(inst), np.int64)
        blocks = pts.reshape(-1, 3) // size
        ok = ((blocks >= -(1 << 31)) & (blocks < (1 << 31))).all(axis=1)
        rows = sorted({(int(b[2]), int(b[1])) for b in blocks[ok]})
        return query.points_in_roi(self.rows(at, inst, rows), pts, block_size(inst))

    def mask(
        self, at: At, inst: Instance, size: Sequence[int], offset: Sequence[int]
    ) -> npt.NDArray[np.uint8]:
        """GET mask/0_1_2/{size}/{offset}: uint8 ZYX, 1 inside the ROI's blocks.

        Reads only the spans of the block rows the box covers.
        """
        self.check_voxel_bytes(int(np.prod(size)))
        bs = block_size(inst)
        lo = [int(o) // b for o, b in zip(offset, bs, strict=True)]
        hi = [(int(o) + int(n) - 1) // b for o, n, b in zip(offset, size, bs, strict=True)]
        # One row of margin each side: DVID's truncating division may name a row
        # next to the floor-divided range for negative coordinates.
        rows = [(z, y) for z in range(lo[2] - 1, hi[2] + 2) for y in range(lo[1] - 1, hi[1] + 2)]
        return query.roi_mask(self.rows(at, inst, rows), bs, offset, size)

    def apply(self, at: At, name: str, box: Box3, vol: npt.NDArray[Any], attenuation: int) -> None:
        """Zero ``vol``'s voxels outside ROI ``name`` (uint8: shift right ``attenuation`` bits).

        ``vol`` is the ZYX array of ``box``: DVID's ``?roi=name[&attenuation=N]`` on raw reads.
        """
        roi = at.instance(name)
        if roi.typename != "roi":
            raise InvalidInputError(f"roi={name!r} is a {roi.typename}, not a roi instance")
        if not 0 <= attenuation <= 7:
            raise InvalidInputError(f"attenuation must be 1..7, got {attenuation}")
        size, start = box.size, box.start
        inside = self.mask(at, roi, (size.x, size.y, size.z), (start.x, start.y, start.z))
        outside = inside == 0
        if attenuation and vol.dtype == np.uint8:
            vol[outside] >>= attenuation
        else:
            vol[outside] = 0

    def partition(
        self, at: At, inst: Instance, batchsize: str | None, optimized: str | None
    ) -> bytes:
        """GET partition?batchsize=N[&optimized=true]: DVID's subvolumes JSON."""
        result = part.partition(
            self.spans(at, inst),
            block_size(inst),
            part.parse_batchsize(batchsize),
            optimized=part.is_optimized(optimized),
        )
        return part.partition_json(result)


def stored_spans(tree: Tree, root: ObjectId) -> S.SpanArray:
    """Return the spans stored in a roi instance's tree ``root`` (any tree: local or a peer's)."""
    keys = [k[1:] for k, _ in tree.range(root, *prefix_range(ROI_SPAN_CLASS))]
    return S.parse_span_keys(keys)


def roi_boxes(spans: S.SpanArray, block_xyz: Sequence[int]) -> tuple[Box3, ...]:
    """Return voxel boxes (upper corner exclusive) covering exactly the ROI's blocks.

    Spans are merged first, then runs of the same ``x0..x1`` over consecutive ``y``
    in a z-plane become one box, so a blob-like ROI gives far fewer boxes than spans.
    """
    bx, by, bz = (int(v) for v in block_xyz)
    merged = S.merge_spans(spans) if len(spans) else spans
    open_: dict[tuple[int, int, int], list[int]] = {}  # (z, x0, x1) -> [y0, y1]
    out: list[Box3] = []

    def close(z: int, x0: int, x1: int, y0: int, y1: int) -> None:
        out.append(
            Box3(
                Point3(x0 * bx, y0 * by, z * bz), Point3((x1 + 1) * bx, (y1 + 1) * by, (z + 1) * bz)
            )
        )

    for z, y, x0, x1 in (tuple(int(v) for v in row) for row in merged):
        run = open_.get((z, x0, x1))
        if run is not None and run[1] == y - 1:
            run[1] = y
            continue
        if run is not None:
            close(z, x0, x1, *run)
        open_[(z, x0, x1)] = [y, y]
    for (z, x0, x1), (y0, y1) in open_.items():
        close(z, x0, x1, y0, y1)
    return tuple(sorted(out, key=lambda b: (b.start.z, b.start.y, b.start.x)))
