"""HTTP for label instances (labelmap, labelarray, labelblk): voxels, blocks and counters.

The label index endpoints (sizes, sparse volumes, index, mappings) are in
``labelmap_bodies``; both register here, under one handler.
"""

from __future__ import annotations

import gzip
import json

import falcon
import lz4.block
import numpy as np
from numpy.typing import NDArray

from cas_dvid.api._common import Services, read_body, read_json, send_json
from cas_dvid.api._images import OCTET, encode_label_png, is_dims, parse_dims, parse_format
from cas_dvid.api._instances import Endpoint, RoutedHandler, handles
from cas_dvid.api._voxels import SLAB_BYTES, stream_slabs, whole_claim
from cas_dvid.api.types.imageblk import parse_arb_args, parse_block_list
from cas_dvid.api.types.labelmap_bodies import body_routes
from cas_dvid.api.types.labelmap_mutations import mutation_routes
from cas_dvid.datatypes.geometry import Box3, Point3, parse_point, parse_size, plane_box
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.blockio import BLOCKS_DEFAULT, SPECIFIC_DEFAULT
from cas_dvid.datatypes.labelmap.layout import layout_of
from cas_dvid.datatypes.labelmap.neuroglancer import encode_google
from cas_dvid.datatypes.streams import pack_records
from cas_dvid.errors import InvalidInputError, MissingDataError
from cas_dvid.strconv import parse_uint
from cas_dvid.versions import At, Instance

U64_MAX = (1 << 64) - 1


def parse_label(text: str, what: str = "label") -> int:
    """Return a uint64 label from a path segment (Go's ParseUint: digits only)."""
    return parse_uint(text, what)


def scale_param(req: falcon.Request) -> int:
    """``scale=N`` (default 0)."""
    text = req.get_param("scale")
    return 0 if text is None else parse_label(text, "scale")


def flag(req: falcon.Request, name: str) -> bool:
    """Return a DVID boolean query parameter: true only when it is exactly ``true``."""
    return req.get_param(name) == "true"


@handles(LabelStore)
class LabelHandler(RoutedHandler):
    """HTTP for label instances: parse, one call to the LabelStore, render."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.labels = services.data.of(LabelStore)
        self.routes = {
            "raw": {"GET": self.get_raw, "POST": self.post_raw},
            "isotropic": {"GET": self.get_isotropic},
            "arb": {"GET": self.get_arb},
            "label": {"GET": self.get_label},
            "labels": {"GET": self.get_labels},
            "blocks": {"GET": self.get_blocks, "POST": self.post_blocks},
            "specificblocks": {"GET": self.get_specificblocks},
            "ingest-supervoxels": {"POST": self.post_ingest},
            "maxlabel": {"GET": self.get_maxlabel, "POST": self.post_maxlabel},
            "nextlabel": {"GET": self.get_nextlabel, "POST": self.post_nextlabel},
            "set-nextlabel": {"POST": self.post_set_nextlabel},
            "downres": {"POST": self.post_downres},
            "metadata": {"GET": self.get_metadata},
            **body_routes(services, self.labels),
            **mutation_routes(services, self.labels),
        }

    def route(
        self, req: falcon.Request, at: At, inst: Instance, endpoint: str, args: list[str]
    ) -> tuple[Endpoint, list[str]]:
        """Also take ``{plane}/raw/...``; labelblk and labelarray lack some endpoints."""
        if is_dims(endpoint) and args and args[0] in ("raw", "isotropic"):
            endpoint, args = args[0], [endpoint, *args[1:]]
        lay = layout_of(inst)
        if not lay.mapped and endpoint in MAPPED_ONLY or not lay.indexed and endpoint in INDEXED:
            raise InvalidInputError(
                f"{endpoint!r} is not available for {inst.typename} {inst.name!r}"
                + ("" if lay.mapped else " (it has no supervoxel mapping)")
                + ("" if lay.indexed else " (it keeps no label index: IndexedLabels=false)")
            )
        return super().route(req, at, inst, endpoint, args)

    # -- voxels ------------------------------------------------------------------------

    def get_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET raw/{dims}/{size}/{offset}[/{format}]."""
        self._get_voxels(req, resp, at, inst, args)

    def get_isotropic(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET isotropic/...: as raw (label volumes are served at their own voxel size)."""
        self._get_voxels(req, resp, at, inst, args)

    def _get_voxels(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        if not 3 <= len(args) <= 4 or not all(args[:3]):
            raise InvalidInputError("expected .../{dims}/{size}/{offset}[/{format}]")
        axes = parse_dims(args[0])
        offset = parse_point(args[2])
        scale, sv = scale_param(req), flag(req, "supervoxels")
        roi = req.get_param("roi")
        if axes is None:
            box = Box3.at(offset, Point3(*parse_size(args[1], 3)))
            compression = (req.get_param("compression") or "").lower()
            nbytes = box.voxels * 8
            self.labels.check_voxel_bytes(nbytes)
            if compression in ("", "none") and not roi and nbytes > self.s.config.stream_bytes:
                slabs = self.labels.read_slabs(
                    at, inst, box, SLAB_BYTES, scale=scale, supervoxels=sv
                )
                stream_slabs(req, resp, self.s.budget, nbytes, slabs)
                return
            whole_claim(self.s.budget, req, nbytes)
            vol = self.labels.read_box(at, inst, box, scale=scale, supervoxels=sv, roi=roi)
            _send_volume(resp, vol, compression)
            return
        box = plane_box(axes, parse_size(args[1], 2), offset)
        vol = self.labels.read_box(at, inst, box, scale=scale, supervoxels=sv, roi=roi)
        img = vol[0] if axes == (0, 1) else vol[:, 0, :] if axes == (0, 2) else vol[:, :, 0]
        _send_label_image(resp, img, args[3] if len(args) > 3 else "png")

    def get_arb(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET arb/{top left}/{top right}/{bottom left}/{res}[/{format}]: nearest labels.

        Not in DVID (its arb is imageblk's); png is the label PNG of 2-D slices, raw
        is little-endian uint64.
        """
        tl, tr, bl, res = parse_arb_args(args)
        img = self.labels.read_arb(at, inst, tl, tr, bl, res, supervoxels=flag(req, "supervoxels"))
        _send_label_image(resp, img, args[4] if len(args) > 4 and args[4] else "png")

    def post_raw(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST raw/0_1_2/{size}/{offset}[?compression=lz4|gzip]: block-aligned supervoxels."""
        if len(args) != 3 or parse_dims(args[0]) is not None:
            raise InvalidInputError("can only POST raw/0_1_2/{size}/{offset} (3d, block-aligned)")
        box = Box3.at(parse_point(args[2]), Point3(*parse_size(args[1], 3)))
        self.labels.check_voxel_bytes(box.voxels * 8)
        body = read_body(req, min(box.voxels * 8 + (1 << 20), self.s.config.max_body_bytes))
        compression = (req.get_param("compression") or "").lower()
        self.labels.writer.write_raw(at, inst, box, body, compression, 'POST on endpoint "raw"')

    def get_label(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET label/{x_y_z}: {"Label": n}."""
        if len(args) != 1 or not args[0]:
            raise InvalidInputError("DVID requires coord to follow 'label' command")
        point = parse_point(args[0], "coord")
        sv = flag(req, "supervoxels")
        label = self.labels.labels_at(at, inst, [point], scale=scale_param(req), supervoxels=sv)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = f'{{"Label": {label[0]}}}'.encode()

    def get_labels(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET labels, body [[x,y,z],...]: the label at each point."""
        points = parse_points(read_json(req, self.s.config.max_json_bytes, required=True))
        sv = flag(req, "supervoxels")
        labels = self.labels.labels_at(at, inst, points, scale=scale_param(req), supervoxels=sv)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = ("[" + ",".join(map(str, labels)) + "]").encode()

    # -- blocks ------------------------------------------------------------------------

    def get_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET blocks/{size}/{offset}: the stored blocks of an aligned box as records."""
        if len(args) != 2:
            raise InvalidInputError("must specify size and offset with GET /blocks endpoint")
        box = Box3.at(parse_point(args[1]), Point3(*parse_size(args[0], 3)))
        mode = req.get_param("compression") or BLOCKS_DEFAULT
        records = self.labels.blockio.records_in_box(
            at, inst, box, mode, scale=scale_param(req), supervoxels=flag(req, "supervoxels")
        )
        _send_records(resp, records)

    def get_specificblocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET specificblocks?blocks=x,y,z,...: those blocks as records."""
        coords = parse_block_list(req.get_param("blocks") or "")
        mode = req.get_param("compression") or SPECIFIC_DEFAULT
        records = self.labels.blockio.records_of(
            at, inst, coords, mode, scale=scale_param(req), supervoxels=flag(req, "supervoxels")
        )
        _send_records(resp, records)

    def post_blocks(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST blocks[?downres=true&noindexing=true&scale=N]: records of gzip(label Block)."""
        body = read_body(req, self.s.config.max_body_bytes)
        self.labels.writer.write_stream(
            at,
            inst,
            body,
            'POST on endpoint "blocks"',
            scale=scale_param(req),
            index=not flag(req, "noindexing"),
            downres=flag(req, "downres"),
        )

    def post_ingest(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST ingest-supervoxels[?scale=N]: blocks stored without indexing."""
        body = read_body(req, self.s.config.max_body_bytes)
        what = 'POST on endpoint "ingest-supervoxels"'
        self.labels.writer.write_stream(at, inst, body, what, scale=scale_param(req), index=False)

    def post_downres(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST downres (cas_dvid): rebuild every lower-res block marked stale; {"blocks": n}."""
        n = self.labels.writer.downres_stale(at, inst, 'POST on endpoint "downres"')
        send_json(resp, {"blocks": n})

    # -- counters ----------------------------------------------------------------------

    def get_maxlabel(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET maxlabel: {"maxlabel": n}, the largest label at this version."""
        n = self.labels.max_label(self.labels.root(at, inst))
        if n is None:
            version = at.repo.nodes[at.uuid].version_id
            raise InvalidInputError(f"No maximum label found for {inst.name} version {version}")
        resp.content_type = falcon.MEDIA_JSON
        resp.data = f'{{"maxlabel": {n}}}'.encode()

    def post_maxlabel(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST maxlabel/{n}: raise the max label of this version (never lowers it)."""
        if len(args) != 1:
            raise InvalidInputError("DVID requires max label ID to follow POST /maxlabel")
        self.labels.writer.raise_max_label(at, inst, parse_label(args[0], "max label"))

    def get_nextlabel(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET nextlabel: {"nextlabel": n}."""
        resp.content_type = falcon.MEDIA_JSON
        resp.data = f'{{"nextlabel": {self.labels.counters(inst).next_label()}}}'.encode()

    def post_nextlabel(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST nextlabel/{count}: reserve labels repo-wide; {"start": a, "end": b}."""
        if len(args) != 1:
            raise InvalidInputError(
                "DVID requires number of requested labels to follow POST /nextlabel"
            )
        start, end = self.labels.writer.reserve(at, inst, parse_label(args[0], "label count"))
        resp.content_type = falcon.MEDIA_JSON
        resp.data = f'{{"start": {start}, "end": {end}}}'.encode()

    def post_set_nextlabel(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST set-nextlabel/{label}[?ceiling=n]: where reservations continue from."""
        if len(args) != 1:
            raise InvalidInputError("DVID requires a label ID to follow POST /set-nextlabel")
        text = req.get_param("ceiling")
        ceiling = None if text is None else parse_label(text, "ceiling")
        self.labels.counters(inst).set_next(parse_label(args[0]), ceiling)

    def get_metadata(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET metadata: DVID's nd-data description."""
        send_json(resp, self.labels.metadata(at, inst))
        resp.content_type = "application/vnd.dvid-nd-data+json"


EDITS = frozenset(
    {"merge", "cleave", "split-supervoxel", "split", "renumber"}
    | {"mutations", "mutations-range", "history"}
)
MAPPED_ONLY = frozenset({"mapping", "mappings", "supervoxels", "supervoxel-sizes"}) | EDITS
INDEXED = frozenset(
    {
        "supervoxels",
        "size",
        "sizes",
        "supervoxel-sizes",
        "sparsevol",
        "sparsevol-size",
        "sparsevol-coarse",
        "sparsevols-coarse",
        "sparsevol-by-point",
        "index",
        "indices",
        "indices-compressed",
        "listlabels",
        "maxlabel",
        "nextlabel",
    }
    | EDITS
)


def parse_points(doc: object) -> list[Point3]:
    """Return a JSON list of [x, y, z] integer points."""
    if not isinstance(doc, list):
        raise InvalidInputError("Bad labels request JSON: expected a list of [x,y,z] points")
    out = []
    for p in doc:
        if not (isinstance(p, list) and len(p) == 3 and all(type(v) is int for v in p)):
            raise InvalidInputError(f"Bad labels request JSON: {json.dumps(p)[:60]} is not [x,y,z]")
        out.append(Point3(*p))
    return out


def _send_volume(resp: falcon.Response, vol: np.ndarray, compression: str) -> None:
    """Return a uint64 volume as DVID sends it: raw, lz4 (no size prefix), gzip or google."""
    raw = np.ascontiguousarray(vol).tobytes()
    resp.content_type = OCTET
    if compression in ("", "none"):
        resp.data = raw
    elif compression == "lz4":
        resp.data = bytes(lz4.block.compress(raw, store_size=False))
    elif compression == "gzip":
        resp.data = gzip.compress(raw, compresslevel=1)
    elif compression in ("google", "googlegzip"):
        data = encode_google(np.ascontiguousarray(vol))
        if compression == "googlegzip":
            data = gzip.compress(data, compresslevel=1)
            resp.set_header("Content-Encoding", "gzip")
        resp.data = data
    else:
        raise InvalidInputError(
            f"unknown compression {compression!r}: use lz4, gzip, google or googlegzip"
        )


def _send_records(resp: falcon.Response, records: list[tuple[tuple[int, int, int], bytes]]) -> None:
    resp.content_type = OCTET
    resp.data = b"".join(bytes(p) for p in pack_records(records))


__all__ = ["LabelHandler", "MissingDataError", "parse_label"]


def _send_label_image(resp: falcon.Response, img: NDArray[np.uint64], fmt_text: str) -> None:
    """Send a 2-D label image as raw uint64 or DVID's label PNG."""
    fmt, _ = parse_format(fmt_text)
    if fmt == "raw":
        resp.content_type = OCTET
        resp.data = np.ascontiguousarray(img).tobytes()
    elif fmt == "png":
        resp.content_type = "image/png"
        resp.data = encode_label_png(np.ascontiguousarray(img))
    else:
        raise InvalidInputError(f"format {fmt} is not available for labels; use png or raw")
