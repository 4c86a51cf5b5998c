"""HTTP for what a label instance's index answers: sizes, sparse volumes, index, mappings.

Thin: each endpoint parses, makes one call to ``LabelStore.index``, renders the
answer with DVID's bytes (its hand-written JSON included).  Labels DVID does not
find are 404s with a short text body (DVID's are empty).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import falcon
import numpy as np

from cas_dvid.api._common import Services, read_body
from cas_dvid.api._instances import Endpoint
from cas_dvid.api.types import labelmap as lm
from cas_dvid.datatypes.geometry import parse_point
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.bodies import serialize
from cas_dvid.datatypes.labelmap.bodyvol import SparseQuery, SparseVol
from cas_dvid.datatypes.labelmap.labelindex import (
    parse_label_index,
    parse_label_indices,
    parse_mapping_ops,
)
from cas_dvid.datatypes.labelmap.sparsevol import Bounds, parse_bounds
from cas_dvid.errors import CasDvidError, InvalidInputError, MissingDataError
from cas_dvid.versions import At, Instance

OCTET = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
AS_BODY = "Label 0 is protected background value and cannot be queried as body.\n"
AS_SPARSEVOL = "Label 0 is protected background value and cannot be used as sparse volume.\n"
_LIST_CHUNK = 1 << 16
_U64_MAX = (1 << 64) - 1

log = logging.getLogger("cas_dvid.api")

Req = falcon.Request
Resp = falcon.Response


def body_routes(services: Services, labels: LabelStore) -> dict[str, dict[str, Endpoint]]:
    """Return the routes of the label index endpoints, for LabelHandler."""
    h = BodyHandlers(services, labels)
    return {
        "mapping": {"GET": h.get_mapping},
        "mappings": {"GET": h.get_mappings, "POST": h.post_mappings},
        "supervoxels": {"GET": h.get_supervoxels},
        "size": {"GET": h.get_size},
        "sizes": {"GET": h.get_sizes},
        "supervoxel-sizes": {"GET": h.get_supervoxel_sizes},
        "lastmod": {"GET": h.get_lastmod},
        "sparsevol": {"GET": h.get_sparsevol, "HEAD": h.head_sparsevol},
        "sparsevol-size": {"GET": h.get_sparsevol_size},
        "sparsevol-coarse": {"GET": h.get_coarse},
        "sparsevols-coarse": {"GET": h.get_coarse_many},
        "sparsevol-by-point": {"GET": h.get_by_point},
        "listlabels": {"GET": h.get_listlabels},
        "index": {"GET": h.get_index, "POST": h.post_index},
        "indices": {"GET": h.get_indices, "POST": h.post_indices},
        "indices-compressed": {"GET": h.get_indices_compressed},
    }


# -- parsing -------------------------------------------------------------------------------


def label_arg(args: list[str], missing: str, zero: str) -> int:
    """Return the label in the path: ``missing`` when there is none, ``zero`` for label 0."""
    if not args or not args[0]:
        raise InvalidInputError(missing)
    label = lm.parse_label(args[0])
    if label == 0:
        raise InvalidInputError(zero)
    return label


def check_hash(req: Req, body: bytes) -> None:
    """DVID's ``hash=``: the MD5 hex of the request body, when given."""
    want = req.get_param("hash") or ""
    if not want:
        return
    got = hashlib.md5(body).hexdigest()
    if got != want:
        raise InvalidInputError(f"content hash incorrect.  expected {want}, got {got}")


def parse_label_list(body: bytes, prefix: str) -> list[int]:
    """Parse a JSON list of uint64 labels as Go decodes []uint64; errors start with ``prefix``."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{prefix}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        why = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
        raise InvalidInputError(f"{prefix}: {why}") from None
    if not isinstance(doc, list):
        raise InvalidInputError(f"{prefix}: expected a JSON list, got {type(doc).__name__}")
    for v in doc:
        if type(v) is not int or not 0 <= v <= _U64_MAX:
            raise InvalidInputError(
                f"{prefix}: cannot unmarshal {json.dumps(v)[:40]} into Go value of type uint64"
            )
    return doc


def sparse_query(req: Req, lay_scale: bool = True) -> SparseQuery:
    """Parse the options of GET sparsevol from the query string."""
    return SparseQuery(
        format=req.get_param("format") or "rles",
        bounds=bounds_param(req),
        exact=req.get_param("exact") != "false",
        scale=lm.scale_param(req) if lay_scale else 0,
        compression=req.get_param("compression") or "",
        supervoxels=lm.flag(req, "supervoxels"),
    )


def bounds_param(req: Req) -> Bounds:
    """``minx`` .. ``maxz``."""
    names = ("minx", "maxx", "miny", "maxy", "minz", "maxz")
    return parse_bounds({n: req.get_param(n) or "" for n in names})


def uint_param(req: Req, name: str, default: int) -> int:
    """Parse an unsigned integer query parameter (absent or empty: ``default``)."""
    text = req.get_param(name)
    return default if not text else lm.parse_label(text, name)


def json_ints(values: list[int]) -> bytes:
    """Return ``[1,2,3]`` as DVID prints integer lists (no spaces)."""
    return ("[" + ",".join(map(str, values)) + "]").encode()


def go_quote(text: str) -> str:
    """Quote a string as Go's %q prints it (JSON-compatible for what clients send)."""
    return json.dumps(text, ensure_ascii=False)


def missing(what: str, label: int) -> MissingDataError:
    """Return the 404 of an absent label."""
    return MissingDataError(f"{what} {label} not found")


def send(resp: Resp, data: bytes, content_type: str = falcon.MEDIA_JSON) -> None:
    """Bytes out."""
    resp.content_type = content_type
    resp.data = data


def send_volume(resp: Resp, vol: SparseVol) -> None:
    """Send a sparse volume; its first chunk is made here, so early errors are still 400s."""
    chunks = vol.chunks
    first = next(chunks, b"")
    resp.content_type = OCTET
    resp.stream = _chain(first, chunks)


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    for chunk in rest:
        if chunk:
            yield chunk


class BodyHandlers:
    """The endpoints; each is ``fn(req, resp, at, inst, args)``."""

    def __init__(self, services: Services, labels: LabelStore) -> None:
        self.s = services
        self.index = labels.index
        self.limit = services.config.max_json_bytes

    def _labels_body(self, req: Req, prefix: str) -> list[int]:
        body = read_body(req, self.limit)
        check_hash(req, body)
        return parse_label_list(body, prefix)

    # -- the mapping --------------------------------------------------------------------

    def get_mapping(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET mapping, body [sv, ...]: [body, ...] (0 for retired or unknown supervoxels)."""
        svs = self._labels_body(req, "Bad mapping request JSON")
        send(resp, json_ints(self.index.mapping(at, inst, svs, lm.flag(req, "nolookup"))))

    def get_mappings(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET mappings[?format=binary]: "sv body" lines, or LE u64 pairs."""
        pairs = list(self.index.mappings(at, inst))
        if req.get_param("format") == "binary":
            send(resp, np.array(pairs, "<u8").reshape(-1, 2).tobytes(), OCTET)
            return
        send(resp, "".join(f"{sv} {body}\n" for sv, body in pairs).encode(), TEXT)

    def post_mappings(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST mappings: a MappingOps protobuf."""
        ops = parse_mapping_ops(read_body(req, self.limit))
        self.index.writes.post_mappings(at, inst, ops)

    # -- supervoxels and sizes ----------------------------------------------------------

    def get_supervoxels(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET supervoxels/{label}: [sv, ...]."""
        label = label_arg(args, "DVID requires label to follow 'supervoxels' command", AS_BODY)
        svs = self.index.supervoxels(at, inst, label)
        if svs is None:
            raise missing("label", label)
        send(resp, json_ints(svs))

    def get_size(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET size/{label}[?supervoxels=true]: {"voxels": n}."""
        label = label_arg(args, "DVID requires label to follow 'size' command", AS_BODY)
        try:
            n = self.index.size(at, inst, label, lm.flag(req, "supervoxels"))
        except InvalidInputError as exc:
            raise InvalidInputError(f"unable to get label {label} size: {exc}") from None
        if n == 0:
            raise missing("label", label)
        send(resp, f'{{"voxels": {n}}}'.encode())

    def get_sizes(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET sizes[?supervoxels=true], body [label, ...]: [voxels, ...] (0 if absent)."""
        labels = self._labels_body(req, "Bad mapping request JSON")
        send(resp, json_ints(self.index.sizes(at, inst, labels, lm.flag(req, "supervoxels"))))

    def get_supervoxel_sizes(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET supervoxel-sizes/{label}: {"supervoxels": [...], "sizes": [...]}."""
        label = label_arg(args, "DVID requires label to follow 'supervoxels' command", AS_BODY)
        svs, sizes = self.index.supervoxel_sizes(at, inst, label)
        if not svs:
            raise missing("label", label)
        text = (
            f'{{\n  "supervoxels": {json_ints(svs).decode()},'
            f'\n  "sizes": {json_ints(sizes).decode()}\n}}'
        )
        send(resp, text.encode())

    def get_lastmod(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET lastmod/{label}: the body's last mutation id, user, app and time."""
        label = label_arg(args, "DVID requires label to follow 'lastmod' command", AS_BODY)
        s = self.index.lastmod(at, inst, label)
        if s is None:
            raise missing("label", label)
        text = (
            f'{{"mutation id": {s.mutid}, "last mod user": {go_quote(s.user)}, '
            f'"last mod app": {go_quote(s.app)}, "last mod time": {go_quote(s.time)} }}'
        )
        send(resp, text.encode())

    def get_listlabels(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET listlabels[?start=&number=&sizes=true]: LE u64 labels (and voxels)."""
        start = uint_param(req, "start", 0)
        number = uint_param(req, "number", 10_000_000)
        sizes = lm.flag(req, "sizes")
        resp.content_type = OCTET
        resp.stream = _listed(self.index.listlabels(at, inst, start, number, sizes), sizes)

    # -- sparse volumes -----------------------------------------------------------------

    def get_sparsevol(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET sparsevol/{label}: rles (default), srles or blocks."""
        missing_msg = "ERROR: DVID requires label ID to follow 'sparsevol' command"
        label = label_arg(args, missing_msg, AS_SPARSEVOL)
        vol = self.index.volumes.sparsevol(at, inst, label, sparse_query(req))
        if vol is None:
            raise missing("sparse volume of label", label)
        send_volume(resp, vol)

    def head_sparsevol(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """HEAD sparsevol/{label}: 200 if the label has blocks within the bounds, else 204."""
        missing_msg = "ERROR: DVID requires label ID to follow 'sparsevol' command"
        label = label_arg(args, missing_msg, AS_SPARSEVOL)
        found = self.index.volumes.exists(at, inst, label, sparse_query(req, lay_scale=False))
        # NOTE: DVID sets text/html on both; a 204 may carry no Content-Type (WSGI).
        if found:
            resp.content_type = "text/html"
        resp.status = falcon.HTTP_200 if found else falcon.HTTP_204

    def get_by_point(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET sparsevol-by-point/{x_y_z}: the sparse volume of the label at that voxel."""
        if not args or not args[0]:
            raise InvalidInputError(
                "ERROR: DVID requires coord to follow 'sparsevol-by-point' command"
            )
        point = parse_point(args[0], "coord")
        q = sparse_query(req)
        labels = self.index.labels
        label = labels.labels_at(at, inst, [point], scale=q.scale, supervoxels=q.supervoxels)[0]
        if label == 0:
            raise InvalidInputError(AS_SPARSEVOL)
        vol = self.index.volumes.sparsevol(at, inst, label, q)
        if vol is None:
            raise missing("sparse volume of label", label)
        send_volume(resp, vol)

    def get_sparsevol_size(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET sparsevol-size/{label}: voxels, numblocks, block-granular min/max voxel."""
        missing_msg = "ERROR: DVID requires label ID to follow 'sparsevol-size' command"
        label = label_arg(args, missing_msg, AS_SPARSEVOL)
        doc = self.index.volumes.sparsevol_size(at, inst, label, lm.flag(req, "supervoxels"))
        if doc is None:
            raise missing("label", label)
        send(resp, _sparsevol_size_text(doc).encode())

    def get_coarse(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET sparsevol-coarse/{label}: block spans."""
        missing_msg = "DVID requires label ID to follow 'sparsevol-coarse' command"
        label = label_arg(args, missing_msg, AS_SPARSEVOL)
        data = self.index.volumes.coarse(
            at, inst, label, bounds_param(req), lm.flag(req, "supervoxels")
        )
        if data is None:
            raise missing("label", label)
        send(resp, data, OCTET)

    def get_coarse_many(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET sparsevols-coarse/{a}/{b}: u64 label, int32 nspans, spans, per body."""
        if len(args) < 2:
            raise InvalidInputError(
                "DVID requires start and end label ID to follow 'sparsevols-coarse' command"
            )
        first, last = lm.parse_label(args[0]), lm.parse_label(args[1])
        if first == 0 or last == 0:
            raise InvalidInputError(AS_SPARSEVOL)
        records = self.index.volumes.coarse_many(at, inst, first, last, bounds_param(req))
        send(resp, b"".join(records), OCTET)

    # -- label indices ------------------------------------------------------------------

    def get_index(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET index/{label}[?metadata-only=true]: the LabelIndex protobuf (or its JSON summary)."""
        label = label_arg(args, "DVID requires label to follow 'index' command", _NO_INDEX_0)
        mutid = req.get_param("mutid")
        if mutid:
            lm.parse_label(mutid, "mutid")
            # NOTE: DVID answers from its mutation cache, absent unless configured: a 404.
            raise MissingDataError(f"no cached index of label {label} before mutation {mutid}")
        if req.get_param("metadata-only") == "true":
            s = self.index.lastmod(at, inst, label)
            if s is None:
                raise missing("label index of", label)
            send(resp, _metadata_text(s.voxels, s.mutid, s.time, s.user, s.app).encode())
            return
        idx = self.index.index(at, inst, label)
        if idx is None:
            raise missing("label index of", label)
        send(resp, serialize(idx), OCTET)

    def post_index(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST index/{label}: store a LabelIndex (no blocks: delete the label's index)."""
        label = label_arg(args, "DVID requires label to follow 'index' command", _NO_INDEX_0)
        idx = parse_label_index(read_body(req, self.limit))
        if idx.label != label:
            raise InvalidInputError(
                f"serialized Index was for label {idx.label} yet was POSTed to label {label}"
            )
        self.index.writes.post_indices(at, inst, [idx], 'POST on endpoint "index"')

    def get_indices(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET indices, body [label, ...]: a LabelIndices protobuf."""
        prefix = "error getting protobuf label indices: expected JSON label list"
        labels = parse_label_list(read_body(req, self.limit), prefix)
        try:
            out = self.index.indices(at, inst, labels)
        except InvalidInputError as exc:
            raise InvalidInputError(f"error getting protobuf label indices: {exc}") from None
        send(resp, serialize(out), OCTET)

    def post_indices(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST indices: a LabelIndices protobuf; an index with no blocks deletes its label's."""
        try:
            msg = parse_label_indices(read_body(req, self.limit))
            self.index.writes.post_indices(at, inst, list(msg.indices))
        except InvalidInputError as exc:
            raise InvalidInputError(f"error putting protobuf label indices: {exc}") from None

    def get_indices_compressed(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET indices-compressed, body [label, ...]: u64 size, u64 label, LZ4 value each."""
        prefix = "expected JSON label list for GET /indices"
        labels = parse_label_list(read_body(req, self.limit), prefix)
        send(resp, b"".join(self.index.indices_compressed(at, inst, labels)), OCTET)


_NO_INDEX_0 = "there is no index for protected label 0"


def _sparsevol_size_text(doc: dict[str, Any]) -> str:
    lo, hi = doc["minvoxel"], doc["maxvoxel"]
    return (
        f'{{"voxels": {doc["voxels"]}, "numblocks": {doc["numblocks"]}, '
        f'"minvoxel": [{lo[0]}, {lo[1]}, {lo[2]}], "maxvoxel": [{hi[0]}, {hi[1]}, {hi[2]}]}}'
    )


def _metadata_text(voxels: int, mutid: int, time: str, user: str, app: str) -> str:
    # NOTE: DVID prints the strings with %s, unescaped; so do we.
    return (
        f'{{"num_voxels":{voxels},"last_mutid":{mutid},"last_mod_time":"{time}",'
        f'"last_mod_user":"{user}","last_mod_app":"{app}"}}'
    )


def _listed(rows: Iterator[tuple[int, int]], sizes: bool) -> Iterator[bytes]:
    """Return listlabels' LE u64 stream in chunks; an error mid-stream ends it as DVID does."""
    batch: list[tuple[int, int]] = []
    try:
        for row in rows:
            batch.append(row)
            if len(batch) == _LIST_CHUNK:
                yield _pack(batch, sizes)
                batch = []
    except CasDvidError as exc:
        # NOTE: the status is sent; DVID marks a failed stream with four zero uint64s.
        log.error("listlabels stream failed: %s", exc)
        yield _pack(batch, sizes) + bytes(32)
        return
    if batch:
        yield _pack(batch, sizes)


def _pack(batch: list[tuple[int, int]], sizes: bool) -> bytes:
    arr = np.array(batch, "<u8").reshape(-1, 2)
    return (arr if sizes else arr[:, 0]).tobytes()
