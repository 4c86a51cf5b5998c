"""HTTP for labelgraph instances: subgraph, neighbors, merge, weight, property."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import Services, read_body, send_json
from cas_dvid.api._images import OCTET
from cas_dvid.api._instances import RoutedHandler, handles
from cas_dvid.datatypes.labelgraph import U64_MAX, GraphStore
from cas_dvid.errors import InvalidInputError
from cas_dvid.strconv import is_uint
from cas_dvid.versions import At, Instance

Req = falcon.Request
Resp = falcon.Response


def _vertex(text: str) -> int:
    if not is_uint(text) or not 0 < int(text) <= U64_MAX:
        raise InvalidInputError(f"Vertex number not provided: got {text[:40]!r}")
    return int(text)


def _property_args(args: list[str]) -> tuple[tuple[int, ...], str]:
    if len(args) == 2:
        return (_vertex(args[0]),), args[1]
    if len(args) == 3:
        a, b = _vertex(args[0]), _vertex(args[1])
        if a == b:
            raise InvalidInputError(f"an edge joins two different vertices, got {a}-{a}")
        return (a, b), args[2]
    raise InvalidInputError("Incorrect number of parameters specified for handling properties")


@handles(GraphStore)
class GraphHandler(RoutedHandler):
    """labelgraph: parse, one call to the GraphStore, render DVID's JSON."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.graphs = services.data.of(GraphStore)
        self.limit = services.config.max_json_bytes
        self.data_limit = services.config.max_body_bytes
        self.routes = {
            "subgraph": {
                "GET": self.get_subgraph,
                "POST": self.post_subgraph,
                "DELETE": self.delete_subgraph,
            },
            "neighbors": {"GET": self.get_neighbors},
            "merge": {"POST": self.post_merge},
            "weight": {"POST": self.post_weight},
            "property": {
                "GET": self.get_property,
                "POST": self.post_property,
                "DELETE": self.delete_property,
            },
            "undomerge": {"POST": self.post_undomerge},
            "propertytransaction": {"GET": self.transaction, "POST": self.transaction},
        }

    def get_subgraph(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET subgraph [body: vertices]."""
        send_json(resp, self.graphs.subgraph(at, inst, read_body(req, self.limit)))

    def post_subgraph(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST subgraph."""
        self.graphs.post_subgraph(at, inst, read_body(req, self.limit))

    def delete_subgraph(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """DELETE subgraph [body: vertices/edges]."""
        self.graphs.delete_subgraph(at, inst, read_body(req, self.limit))

    def get_neighbors(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET neighbors/{vertex}."""
        if len(args) != 1:
            raise InvalidInputError("Vertex number not provided")
        send_json(resp, self.graphs.neighbors(at, inst, _vertex(args[0])))

    def post_merge(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST merge[/nohistory] (no history is kept either way, as DVID)."""
        if args and args != ["nohistory"]:
            raise InvalidInputError(f"unexpected merge option {'/'.join(args)!r}")
        self.graphs.merge(at, inst, read_body(req, self.limit))

    def post_weight(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST weight."""
        self.graphs.add_weights(at, inst, read_body(req, self.limit))

    def get_property(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """GET property/{v}[/{v2}]/{name}: the bytes."""
        ids, name = _property_args(args)
        resp.content_type = OCTET
        resp.data = self.graphs.property(at, inst, ids, name)

    def post_property(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST property/{v}[/{v2}]/{name}: the body is the value."""
        ids, name = _property_args(args)
        self.graphs.set_property(at, inst, ids, name, read_body(req, self.data_limit))

    def delete_property(
        self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]
    ) -> None:
        """DELETE property/{v}[/{v2}]/{name}."""
        ids, name = _property_args(args)
        self.graphs.delete_property(at, inst, ids, name)

    def post_undomerge(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """POST undomerge: DVID's answer (merge history never existed)."""
        raise InvalidInputError("undomerge not yet implemented")

    def transaction(self, req: Req, resp: Resp, at: At, inst: Instance, args: list[str]) -> None:
        """Propertytransaction: refused; use property/..., which is atomic per request here."""
        raise InvalidInputError(
            "propertytransaction is not offered by cas_dvid: each property/... request is "
            "atomic, so vertex locks and transaction ids are not needed"
        )
