"""Extensions DVID lacks, under /api/cas/: diffs between versions."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import Services, send_json
from cas_dvid.errors import InvalidInputError


class Diff:
    """GET /api/cas/diff/{from}/{to}/{data}[?limit=N]: what changed between two versions.

    Answers ``{"from", "to", "data", "added", "changed", "removed"}``, each list the
    changed entries in key order as the datatype names them (``block 3_0_1``,
    ``extents``, a keyvalue key...), plus what the datatype sums up from them (a
    labelmap: the bodies created, deleted and changed, and the mutations made).
    Computed by the tree diff: its cost follows the change, not the size of the data.
    """

    def __init__(self, services: Services) -> None:
        self.s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, a: str, b: str, data: str) -> None:
        """Answer the diff, at most ``limit`` entries (0: all)."""
        versions = self.s.versions
        at_a, at_b = versions.resolve(a), versions.resolve(b)
        if at_a.repo.root != at_b.repo.root:
            raise InvalidInputError(f"versions {at_a.uuid} and {at_b.uuid} are in different repos")
        inst = at_a.instance(data)
        dtype = self.s.types.get(inst.typename)
        limit = req.get_param_as_int("limit", min_value=1) or 0
        lists: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        summary = dtype.diff_summary()
        for n, (key, old, new) in enumerate(versions.diff(at_a, at_b, inst)):
            if limit and n >= limit:
                break
            kind = "added" if old is None else "removed" if new is None else "changed"
            lists[kind].append(dtype.show_key(key))
            summary.add(key, old, new)
        doc = {"from": at_a.uuid, "to": at_b.uuid, "data": inst.name, **lists, **summary.doc()}
        send_json(resp, doc)
