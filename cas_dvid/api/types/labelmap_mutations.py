"""HTTP for proofreading a labelmap: merge, cleave, split, renumber, and the mutation log.

Thin: each endpoint parses with DVID's checks and texts, makes one call to the
LabelStore's ``mutations``, ``splits`` or ``log``, and answers DVID's bytes.  Who
made an edit comes from DVID's ``u=`` and ``app=`` query parameters.

The log reads answer a JSON array of the stored records, as DVID streams them.
``mutations?since=N`` (every record visible at the version with a larger id) is
cas_dvid's cheap poll; DVID pushes the same records to Kafka.  DEVIATION:
``history`` answers a JSON array; DVID writes the records back to back with no
separator, which is not JSON.
"""

from __future__ import annotations

import json

import falcon

from cas_dvid.api._common import Services, read_body
from cas_dvid.api._instances import Endpoint
from cas_dvid.api.types import labelmap as lm
from cas_dvid.datatypes.labelmap import LabelStore
from cas_dvid.datatypes.labelmap.mutations import ModInfo
from cas_dvid.errors import CasDvidError, InvalidInputError
from cas_dvid.versions import At, Instance

Req = falcon.Request
Resp = falcon.Response
_U64_MAX = (1 << 64) - 1
ZERO = "Label 0 is protected background value and cannot be used as {} target\n"


def mutation_routes(services: Services, labels: LabelStore) -> dict[str, dict[str, Endpoint]]:
    """Return the routes of the proofreading endpoints, for LabelHandler."""
    h = MutationHandlers(services, labels)
    return {
        "merge": {"POST": h.post_merge},
        "cleave": {"POST": h.post_cleave},
        "split-supervoxel": {"POST": h.post_split_supervoxel},
        "split": {"POST": h.post_split},
        "renumber": {"POST": h.post_renumber},
        "mutations": {"GET": h.get_mutations},
        "mutations-range": {"GET": h.get_mutations_range},
        "history": {"GET": h.get_history},
    }


def mod_info(req: Req) -> ModInfo:
    """Return who makes this edit: DVID's ``u=`` and ``app=`` query parameters."""
    return ModInfo(user=req.get_param("u") or "", app=req.get_param("app") or "")


def u64_list(raw: bytes, bad: str) -> list[int]:
    """Parse a JSON list of uint64s as Go's json.Unmarshal into []uint64 does."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"{bad}: {exc}") from None
    if not isinstance(doc, list):
        raise InvalidInputError(f"{bad}: cannot unmarshal {type(doc).__name__} into []uint64")
    for v in doc:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _U64_MAX:
            raise InvalidInputError(f"{bad}: cannot unmarshal {json.dumps(v)} into uint64")
    return list(doc)


def send_ids(resp: Resp, text: str) -> None:
    """DVID's hand-built JSON answers, e.g. ``{"MutationID": 1000000001}``."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = text.encode()


def send_records(resp: Resp, records: list[bytes]) -> None:
    """Return stored records as DVID streams them: ``[`` record ``,`` record ``]``."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = b"[" + b",".join(records) + b"]"


class MutationHandlers:
    """The proofreading endpoints of LabelHandler."""

    def __init__(self, services: Services, labels: LabelStore) -> None:
        self.services = services
        self.labels = labels
        self.limit = services.config.max_json_bytes
        self.body_limit = services.config.max_body_bytes

    def _label(self, args: list[str], what: str, zero: str) -> int:
        label = lm.parse_label(args[0]) if args and args[0] else None
        if label is None:
            raise InvalidInputError(f"ERROR: DVID requires label ID to follow '{what}' command")
        if label == 0:
            raise InvalidInputError(zero)
        return label

    # -- edits -------------------------------------------------------------------------

    def post_merge(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST merge ``[target, label1, ...]`` -> ``{"MutationID": n}``."""
        labels = u64_list(read_body(req, self.limit), "Bad merge op JSON")
        if len(labels) < 2:
            raise InvalidInputError(
                f"invalid merge tuple {_go(labels)}, need at least target and to-merge labels"
            )
        if 0 in labels:
            raise InvalidInputError(
                f"invalid merge tuple {_go(labels)}, cannot contain background label 0"
            )
        try:
            mid = self.labels.mutations.merge(at, inst, labels[0], labels[1:], mod_info(req))
        except InvalidInputError as exc:
            raise InvalidInputError(f"Error on merge: {exc}") from None
        send_ids(resp, f'{{"MutationID": {mid}}}')

    def post_renumber(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST renumber ``[new1, old1, new2, old2, ...]``: one mutation per pair; no body."""
        pairs = u64_list(
            read_body(req, self.limit), "Bad renumber op JSON, must be list of numbers"
        )
        if len(pairs) % 2:
            raise InvalidInputError(
                "Bad renumber op JSON, must be even list of numbers [new1, old1, new2, old2, ...]"
            )
        info = mod_info(req)
        for new, old in zip(pairs[::2], pairs[1::2], strict=True):
            try:
                self.labels.mutations.renumber(at, inst, new, old, info)
            except InvalidInputError as exc:
                raise InvalidInputError(f"Error on merge: {exc}") from None
        resp.data = b""

    def post_cleave(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST cleave/{label} ``[sv, ...]`` -> ``{"CleavedLabel": n, "MutationID": n}``."""
        label = self._label(args, "cleave", ZERO.format("cleave"))
        raw = read_body(req, self.limit)
        if not raw:
            raise InvalidInputError("no cleave supervoxels JSON was POSTed")
        svs = u64_list(raw, "bad cleave supervoxels JSON")
        new, mid = self.labels.mutations.cleave(at, inst, label, svs, mod_info(req))
        send_ids(resp, f'{{"CleavedLabel": {new}, "MutationID": {mid}}}')

    def post_split_supervoxel(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST split-supervoxel/{sv}[?split=&remain=&downres=false] (legacy RLE body)."""
        split, remain = _opt_u64(req, "split"), _opt_u64(req, "remain")
        sv = self._label(args, "split", ZERO.format("split"))
        rles = read_body(req, self.body_limit)
        downres = req.get_param("downres") != "false"
        try:
            out = self.labels.splits.split_supervoxel(
                at, inst, sv, rles, mod_info(req), split=split, remain=remain, downres=downres
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"split supervoxel {sv} -> {split}, {remain}: {exc}") from None
        send_ids(
            resp,
            f'{{"SplitSupervoxel": {out.split}, "RemainSupervoxel": {out.remain}, '
            f'"MutationID": {out.mutid}}}',
        )

    def post_split(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST split/{label} (legacy RLE body), only with ``serve --allow-split``."""
        if not self.services.config.allow_split:
            raise InvalidInputError(
                "Split endpoint deactivated in this DVID server's configuration."
            )
        label = self._label(
            args,
            "split",
            "Label 0 is protected background value and cannot be used as sparse volume.\n",
        )
        rles = read_body(req, self.body_limit)
        try:
            out = self.labels.splits.split_body(at, inst, label, rles, mod_info(req))
        except InvalidInputError as exc:
            raise InvalidInputError(f"split label {label}: {exc}") from None
        send_ids(resp, f'{{"label": {out.split}, "MutationID": {out.mutid}}}')

    # -- the log -----------------------------------------------------------------------

    def get_mutations(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET mutations[?since=N]: this version's records (or all visible ones after N)."""
        since = req.get_param("since")
        if since is None:
            send_records(resp, self.labels.log.own(at, inst))
        else:
            send_records(resp, self.labels.log.since(at, inst, lm.parse_label(since, "since")))

    def get_mutations_range(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET mutations-range/{begin}/{end}[?rangefmt=mutids]: versions or ids, inclusive."""
        if len(args) != 2 or not all(args):
            raise InvalidInputError("mutations-range needs /{begin}/{end}")
        fmt = req.get_param("rangefmt") or ""
        if fmt == "mutids":
            first, last = (lm.parse_label(a, "mutation id") for a in args)
            send_records(resp, self.labels.log.between(at, inst, first, last))
            return
        if fmt:
            raise InvalidInputError(f"unknown rangefmt {fmt!r} (versions by default, or mutids)")
        begin, end = (self._version(at, spec) for spec in args)
        send_records(resp, self.labels.log.sequence(begin, end, inst))

    def get_history(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET history/{label}/{from UUID}/{to UUID}: the records of the label's lineage."""
        if len(args) < 3 or not all(args[:3]):
            raise InvalidInputError(
                "ERROR: DVID requires label ID, 'from' UUID, and 'to' UUID to follow 'history'"
                " command"
            )
        label = lm.parse_label(args[0])
        if label == 0:
            raise InvalidInputError(
                "Label 0 is protected background value and cannot be used as sparse volume.\n"
            )
        start, end = self._version(at, args[1]), self._version(at, args[2])
        try:
            records = self.labels.log.history(start, end, inst, label)
        except CasDvidError as exc:
            raise InvalidInputError(f"unable to get mutation history: {exc}") from None
        send_records(resp, records)

    def _version(self, at: At, spec: str) -> At:
        other = self.services.versions.resolve(spec)
        if other.repo.root != at.repo.root:
            raise InvalidInputError(f"version {spec} is not in the repo of {at.uuid}")
        return At(at.repo, other.uuid)


def _opt_u64(req: Req, name: str) -> int:
    text = req.get_param(name)
    if not text:
        return 0
    try:
        return lm.parse_label(text, name)
    except InvalidInputError:
        raise InvalidInputError(f"bad {name} query string provided: {text}") from None


def _go(values: list[int]) -> str:
    return "[" + " ".join(str(v) for v in values) + "]"
