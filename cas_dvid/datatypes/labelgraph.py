"""labelgraph: DVID's weighted graph of labels (vertices, edges, properties), versioned.

What DVID did (``datatype/labelgraph/labelgraph.go`` and ``storage/graphkeyvalue.go``,
removed from DVID in 2023 with its graph engine, read at the parent of commit 99ba21db):
vertices and edges carry a float64 weight; an edge is stored once, smaller id first;
``subgraph`` POST adds or overwrites vertices and edges, GET returns the whole graph
or, given vertices, those vertices and every edge from them; ``merge`` folds vertices
into the last one, summing vertex and edge weights; ``weight`` adds increments,
creating missing vertices and edges; vertices and edges have binary properties.

Here every vertex, edge, adjacency and property is a tree key of the instance, so a
graph is versioned, diffed, pushed and pulled like any other data, and each request
is one atomic write (a plan re-run if it loses a race).  DVID needed vertex locks and
transaction ids (``propertytransaction``) for that; cas_dvid does not offer them.

Deviations, on purpose: an edge to a vertex that does not exist is refused with a 400
and nothing is written (DVID failed partway, leaving earlier items of the request);
``neighbors`` lists neighbours in id order (DVID: in the order edges were made).

Keys (this module owns them):
    ``VERTEX`` + id            -> float64 weight
    ``EDGE`` + lo + hi         -> float64 weight (lo < hi)
    ``ADJ`` + a + b            -> empty, both directions: neighbours by one range scan
    ``VPROP`` + id + name      -> property bytes
    ``EPROP`` + lo + hi + name -> property bytes
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cas_dvid.datatypes.base import (
    DataType,
    TypeService,
    decode_values,
    encode_value,
    inline_payload,
    inline_value,
)
from cas_dvid.errors import InvalidInputError, NotFoundError
from cas_dvid.trees.keys import prefix_range
from cas_dvid.versions import At, Instance
from cas_dvid.versions.heads import Reader, TreeReader

VERTEX, EDGE, ADJ, VPROP, EPROP = b"\x61", b"\x62", b"\x63", b"\x64", b"\x65"
U64_MAX = (1 << 64) - 1
_ID = struct.Struct(">Q")
_W = struct.Struct("<d")

Graph = dict[str, Any]
"""DVID's LabelGraph JSON: ``{"Transactions", "Vertices": [{Id, Weight}], "Edges": [...]}``."""


def _id(v: int) -> bytes:
    return _ID.pack(v)


def vertex_key(v: int) -> bytes:
    """Return the tree key of vertex ``v``."""
    return VERTEX + _id(v)


def edge_key(a: int, b: int) -> bytes:
    """Return the tree key of the edge between ``a`` and ``b`` (either order)."""
    lo, hi = min(a, b), max(a, b)
    return EDGE + _id(lo) + _id(hi)


def _weight(value: bytes) -> float:
    (w,) = _W.unpack(inline_payload(value))
    return float(w)


def _wvalue(w: float) -> bytes:
    return inline_value(_W.pack(w))


def go_number(w: float) -> int | float:
    """Return ``w`` as Go's encoder writes a float64: integral values without a fraction."""
    return int(w) if w.is_integer() and abs(w) < 1e21 else w


def show_key(key: bytes) -> str:
    """Return a tree key as people read it (``vertex 5``, ``edge 5-7``, ...)."""
    kind, rest = key[:1], key[1:]
    ids = [_ID.unpack_from(rest, i)[0] for i in range(0, min(len(rest), 16) // 8 * 8, 8)]
    if kind == VERTEX and len(rest) == 8:
        return f"vertex {ids[0]}"
    if kind == EDGE and len(rest) == 16:
        return f"edge {ids[0]}-{ids[1]}"
    if kind == ADJ and len(rest) == 16:
        return f"adjacency {ids[0]}->{ids[1]}"
    if kind == VPROP and len(rest) > 8:
        return f"vertex {ids[0]} property {rest[8:].decode(errors='replace')}"
    if kind == EPROP and len(rest) > 16:
        return f"edge {ids[0]}-{ids[1]} property {rest[16:].decode(errors='replace')}"
    return key.hex()


# -- the JSON DVID exchanges ----------------------------------------------------------


@dataclass(slots=True)
class Parsed:
    """A posted LabelGraph: vertices (id, weight) and edges (id1, id2, weight), in order."""

    vertices: list[tuple[int, float]] = field(default_factory=list)
    edges: list[tuple[int, int, float]] = field(default_factory=list)


def _member(obj: dict[str, Any], name: str) -> Any:
    """Go's encoding/json matches field names case-insensitively."""
    for k, v in obj.items():
        if k.lower() == name.lower():
            return v
    return None


def _vertex_id(v: Any, what: str) -> int:
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is not int or not 0 < v <= U64_MAX:
        raise InvalidInputError(f"{what} must be a vertex id in 1..2^64-1, got {v!r:.40}")
    return v


def _weight_of(obj: dict[str, Any]) -> float:
    w = _member(obj, "Weight")
    if w is None:
        return 0.0
    if type(w) not in (int, float) or not math.isfinite(w):
        raise InvalidInputError(f"Weight must be a finite number, got {w!r:.40}")
    return float(w)


def parse_graph(body: bytes, *, require: bool) -> Parsed:
    """Parse a LabelGraph body (empty: nothing). ``require``: both lists must be present."""
    if not body.strip():
        if require:
            raise InvalidInputError('expected a JSON graph {"Vertices": [...], "Edges": [...]}')
        return Parsed()
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidInputError("graph body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInputError("expected a JSON object with Vertices and Edges")
    verts, edges = _member(doc, "Vertices"), _member(doc, "Edges")
    if require and (verts is None or edges is None):
        raise InvalidInputError("JSON did not pass validation: Vertices and Edges are required")
    out = Parsed()
    for item in verts or []:
        if not isinstance(item, dict):
            raise InvalidInputError('each vertex must be an object {"Id": n, "Weight": w}')
        out.vertices.append((_vertex_id(_member(item, "Id"), "vertex Id"), _weight_of(item)))
    for item in edges or []:
        if not isinstance(item, dict):
            raise InvalidInputError('each edge must be an object {"Id1", "Id2", "Weight"}')
        a = _vertex_id(_member(item, "Id1"), "edge Id1")
        b = _vertex_id(_member(item, "Id2"), "edge Id2")
        if a == b:
            raise InvalidInputError(f"an edge joins two different vertices, got {a}-{a}")
        out.edges.append((a, b, _weight_of(item)))
    if not isinstance(verts or [], list) or not isinstance(edges or [], list):
        raise InvalidInputError("Vertices and Edges must be lists")
    return out


def graph_json(
    vertices: Iterable[tuple[int, float]],
    edges: Iterable[tuple[int, int, float]],
    *,
    empty_as_null: bool = False,
) -> Graph:
    """DVID's LabelGraph document (``neighbors`` leaves nil lists as null, as Go did)."""
    vs = [{"Id": v, "Weight": go_number(w)} for v, w in vertices]
    es = [{"Id1": a, "Id2": b, "Weight": go_number(w)} for a, b, w in edges]
    none: list[Any] | None = None if empty_as_null else []
    return {"Transactions": none, "Vertices": vs or none, "Edges": es or none}


# -- a graph as one write sees it ------------------------------------------------------


class _Edit:
    """The graph through a Reader plus this request's own changes (read-your-writes)."""

    def __init__(self, read: Reader) -> None:
        self.read = read
        self.ops: dict[bytes, bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if key in self.ops:
            return self.ops[key]
        return self.read([key]).get(key)

    def weight(self, key: bytes) -> float | None:
        v = self.get(key)
        return None if v is None else _weight(v)

    def neighbours(self, v: int) -> list[int]:
        lo, hi = prefix_range(ADJ + _id(v))
        found = {k for k, _ in self.read.range(lo, hi)}
        found |= {k for k, x in self.ops.items() if k.startswith(lo) and x is not None}
        found -= {k for k, x in self.ops.items() if k.startswith(lo) and x is None}
        return sorted(_ID.unpack_from(k, 9)[0] for k in found)

    def set_vertex(self, v: int, w: float) -> None:
        self.ops[vertex_key(v)] = _wvalue(w)

    def set_edge(self, a: int, b: int, w: float) -> None:
        for v in (a, b):
            if self.get(vertex_key(v)) is None:
                raise InvalidInputError(f"cannot add edge {a}-{b}: vertex {v} does not exist")
        self.ops[edge_key(a, b)] = _wvalue(w)
        self.ops[ADJ + _id(a) + _id(b)] = b""
        self.ops[ADJ + _id(b) + _id(a)] = b""

    def remove_edge(self, a: int, b: int) -> None:
        lo, hi = min(a, b), max(a, b)
        for k in (edge_key(a, b), ADJ + _id(a) + _id(b), ADJ + _id(b) + _id(a)):
            self.ops[k] = None
        self._drop_prefix(EPROP + _id(lo) + _id(hi))

    def remove_vertex(self, v: int) -> None:
        for n in self.neighbours(v):
            self.remove_edge(v, n)
        self.ops[vertex_key(v)] = None
        self._drop_prefix(VPROP + _id(v))

    def _drop_prefix(self, prefix: bytes) -> None:
        for k, _ in self.read.range(*prefix_range(prefix)):
            self.ops[k] = None
        for k in [k for k in self.ops if k.startswith(prefix)]:
            self.ops[k] = None


def _require(edit: _Edit, v: int, what: str) -> float:
    w = edit.weight(vertex_key(v))
    if w is None:
        raise InvalidInputError(f"Failed to retrieve vertex {v}: it does not exist ({what})")
    return w


class GraphStore(TypeService):
    """labelgraph instances: subgraph, neighbors, merge, weight, properties."""

    def _write(self, at: At, inst: Instance, run: Any, what: str) -> None:
        def plan(read: Reader) -> dict[bytes, bytes | None]:
            edit = _Edit(read)
            run(edit)
            return edit.ops

        self.versions.write(at, inst, plan, what)

    def _reader(self, at: At, inst: Instance) -> TreeReader:
        return TreeReader(self.tree, self.versions.root_at(at, inst))

    # -- reads -----------------------------------------------------------------------

    def subgraph(self, at: At, inst: Instance, body: bytes) -> Graph:
        """GET subgraph: the whole graph, or the given vertices and every edge from them."""
        want = parse_graph(body, require=False)
        read = self._reader(at, inst)
        if not want.vertices:
            verts = [
                (_ID.unpack_from(k, 1)[0], _weight(v)) for k, v in read.range(*prefix_range(VERTEX))
            ]
            edges = [
                (_ID.unpack_from(k, 1)[0], _ID.unpack_from(k, 9)[0], _weight(v))
                for k, v in read.range(*prefix_range(EDGE))
            ]
            return graph_json(verts, edges)
        edit = _Edit(read)
        used: set[int] = set()
        verts, out_edges = [], []
        for v, _ in want.vertices:  # DVID's walk: an edge once, from the first end listed
            used.add(v)
            verts.append((v, _require(edit, v, "subgraph")))
            for n in edit.neighbours(v):
                if n not in used:
                    w = edit.weight(edge_key(v, n))
                    out_edges.append((min(v, n), max(v, n), w if w is not None else 0.0))
        return graph_json(verts, out_edges)

    def neighbors(self, at: At, inst: Instance, v: int) -> Graph:
        """GET neighbors/{v}: the vertex, its neighbours and the edges to them."""
        edit = _Edit(self._reader(at, inst))
        verts = [(v, _require(edit, v, "neighbors"))]
        edges = []
        for n in edit.neighbours(v):
            verts.append((n, _require(edit, n, "neighbors")))
            w = edit.weight(edge_key(v, n))
            edges.append((min(v, n), max(v, n), w if w is not None else 0.0))
        return graph_json(verts, edges, empty_as_null=True)

    def property(self, at: At, inst: Instance, ids: tuple[int, ...], name: str) -> bytes:
        """GET property/{v}/{name} or property/{v1}/{v2}/{name}."""
        got = self.tree.get(self.versions.root_at(at, inst), _prop_key(ids, name))
        if got is None:
            raise NotFoundError(f"Failed to get property {name}: not set on {_what(ids)}")
        return decode_values(self.store, [got])[0]

    # -- writes ----------------------------------------------------------------------

    def post_subgraph(self, at: At, inst: Instance, body: bytes) -> None:
        """POST subgraph: add (or overwrite) the vertices, then the edges."""
        g = parse_graph(body, require=True)

        def run(edit: _Edit) -> None:
            for v, w in g.vertices:
                edit.set_vertex(v, w)
            for a, b, w in g.edges:
                edit.set_edge(a, b, w)

        self._write(at, inst, run, 'POST on endpoint "subgraph"')

    def delete_subgraph(self, at: At, inst: Instance, body: bytes) -> None:
        """DELETE subgraph: the given vertices (with their edges) and edges, or everything."""
        g = parse_graph(body, require=False)

        def run(edit: _Edit) -> None:
            if not g.vertices and not g.edges:
                for cls in (VERTEX, EDGE, ADJ, VPROP, EPROP):
                    edit._drop_prefix(cls)
                return
            for v, _ in g.vertices:
                if edit.get(vertex_key(v)) is not None:
                    edit.remove_vertex(v)
            for a, b, _ in g.edges:
                edit.remove_edge(a, b)

        self._write(at, inst, run, 'DELETE on endpoint "subgraph"')

    def merge(self, at: At, inst: Instance, body: bytes) -> None:
        """POST merge: fold every listed vertex into the last, as DVID's ``handleMerge``."""
        g = parse_graph(body, require=False)
        if len(g.vertices) < 2:
            raise InvalidInputError("Must specify at least two vertices for merging")
        keep, keep_weight = g.vertices[-1]

        def run(edit: _Edit) -> None:
            overlap: dict[int, float] = {}
            total = 0.0
            members = {v for v, _ in g.vertices}
            for v, _ in g.vertices:
                total += _require(edit, v, "merge")
            for v, _ in g.vertices[:-1]:
                for n in edit.neighbours(v):
                    overlap[n] = overlap.get(n, 0.0) + (edit.weight(edge_key(v, n)) or 0.0)
            kept = set(edit.neighbours(keep))
            for n in kept:
                overlap[n] = overlap.get(n, 0.0) + (edit.weight(edge_key(keep, n)) or 0.0)
            for a, b, w in g.edges:  # weights given for edges of the kept vertex win
                other = b if a == keep else a if b == keep else None
                if other is not None and other in overlap:
                    overlap[other] = w
            for n, w in overlap.items():
                if n not in members:
                    edit.set_edge(keep, n, w)
            edit.set_vertex(keep, keep_weight if keep_weight != 0 else total)
            for v, _ in g.vertices[:-1]:
                if v != keep:
                    edit.remove_vertex(v)

        self._write(at, inst, run, 'POST on endpoint "merge"')

    def add_weights(self, at: At, inst: Instance, body: bytes) -> None:
        """POST weight: add each weight to its vertex or edge, creating missing ones."""
        g = parse_graph(body, require=False)

        def run(edit: _Edit) -> None:
            for v, w in g.vertices:
                edit.set_vertex(v, (edit.weight(vertex_key(v)) or 0.0) + w)
            for a, b, w in g.edges:
                edit.set_edge(a, b, (edit.weight(edge_key(a, b)) or 0.0) + w)

        self._write(at, inst, run, 'POST on endpoint "weight"')

    def set_property(
        self, at: At, inst: Instance, ids: tuple[int, ...], name: str, data: bytes
    ) -> None:
        """POST property/...: set a vertex's or an edge's property (it must exist)."""
        key = _prop_key(ids, name)
        value, _ = encode_value(self.store, data)

        def run(edit: _Edit) -> None:
            owner = vertex_key(ids[0]) if len(ids) == 1 else edge_key(*ids)
            if edit.get(owner) is None:
                raise InvalidInputError(f"cannot set property {name}: no {_what(ids)}")
            edit.ops[key] = value

        self._write(at, inst, run, 'POST on endpoint "property"')

    def delete_property(self, at: At, inst: Instance, ids: tuple[int, ...], name: str) -> None:
        """DELETE property/...: remove it (nothing if absent, as DVID)."""
        self.versions.write(at, inst, {_prop_key(ids, name): None}, 'DELETE on "property"')


def _what(ids: tuple[int, ...]) -> str:
    return f"vertex {ids[0]}" if len(ids) == 1 else f"edge {ids[0]}-{ids[1]}"


def _prop_key(ids: tuple[int, ...], name: str) -> bytes:
    raw = name.encode()
    if not raw or len(raw) > 200:
        raise InvalidInputError("a property name must be 1..200 bytes")
    if len(ids) == 1:
        return VPROP + _id(ids[0]) + raw
    lo, hi = min(ids), max(ids)
    return EPROP + _id(lo) + _id(hi) + raw


HELP = """labelgraph: a weighted graph of labels (DVID's labelgraph), versioned.

  GET    .../subgraph            the whole graph; with a body {"Vertices": [{"Id": n}, ...]}
                                 those vertices and every edge from them
  POST   .../subgraph            {"Vertices": [{"Id", "Weight"}], "Edges": [{"Id1", "Id2",
                                 "Weight"}]}: add or overwrite (edges need both vertices)
  DELETE .../subgraph            the vertices (and their edges) and edges in the body, or all
  GET    .../neighbors/{v}       the vertex, its neighbours and edges
  POST   .../merge               {"Vertices": [...]}: fold them into the last one, summing
                                 weights (a non-zero Weight on the last, or Edges, override)
  POST   .../weight              add the weights given, creating vertices and edges
  GET|POST|DELETE .../property/{v}/{name}, .../property/{v1}/{v2}/{name}   binary properties
Not offered: propertytransaction (every request is atomic here), undomerge (nor in DVID).
"""

DATATYPES = [DataType("labelgraph", "labelgraph", "0.1", GraphStore, show_key=show_key, help=HELP)]
