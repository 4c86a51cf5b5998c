"""Extensions DVID lacks, under /api/cas/: diffs between versions."""

from __future__ import annotations

import falcon

from cas_dvid.api._common import Services, send_json
from cas_dvid.datatypes import keyvalue
from cas_dvid.errors import InvalidInputError


class Diff:
    """GET /api/cas/diff/{from}/{to}/{data}: keys added, changed and removed between versions."""

    def __init__(self, services: Services) -> None:
        self.v = services.versions

    def on_get(self, req: falcon.Request, resp: falcon.Response, a: str, b: str, data: str) -> None:
        """Computed by the tree diff: cost follows the change, not the data size."""
        at_a, at_b = self.v.resolve(a), self.v.resolve(b)
        if at_a.repo.root != at_b.repo.root:
            raise InvalidInputError(f"versions {at_a.uuid} and {at_b.uuid} are in different repos")
        inst = self.v.instance(at_a, data)
        show = keyvalue.user_key if inst.typename == "keyvalue" else bytes.hex
        limit = req.get_param_as_int("limit", min_value=1) or 0
        added: list[str] = []
        changed: list[str] = []
        removed: list[str] = []
        for n, (key, old, new) in enumerate(self.v.diff(at_a, at_b, inst)):
            if limit and n >= limit:
                break
            (added if old is None else removed if new is None else changed).append(show(key))
        send_json(
            resp,
            {
                "from": at_a.uuid,
                "to": at_b.uuid,
                "data": inst.name,
                "added": added,
                "changed": changed,
                "removed": removed,
            },
        )
