"""Who may read and write: the optional write and read tokens, and public published versions.

A token comes as ``Authorization: Bearer <token>`` or, as DVID takes its admin token,
as the ``admintoken`` query parameter. With a write token configured every write
needs it; with a read token configured every read outside ``OPEN_READS`` needs the
read or the write token, except reads of a version that is public: locked and
published (a ``published/<commit id>`` pin in this store, see ``cas_dvid.sync.publish``).
No token: 401 (with ``WWW-Authenticate: Bearer``); a token that does not grant the
request: 403. Tokens are compared in constant time and never logged or echoed.
"""

from __future__ import annotations

import hmac

import falcon

from cas_dvid.errors import CasDvidError, NotFoundError
from cas_dvid.versions import VersionService
from cas_dvid.versions.refs import published_ref

OPEN_READS = ("/api/heartbeat", "/api/help", "/api/server/", "/console/")
"""Reads that never need a token (what a client asks before it knows any repo, and the
web console's own files; ``/`` itself too). The console's data requests still do."""
READS = ("GET", "HEAD", "OPTIONS")


def given_token(req: falcon.Request) -> bytes | None:
    """Return the token a request carries (bearer header first, then ``admintoken``)."""
    scheme, _, value = (req.get_header("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip().encode()
    param = req.get_param("admintoken")
    return param.encode() if param else None


def _granted(token: bytes, allowed: list[bytes]) -> bool:
    # NOTE: every candidate is compared (no early exit) so timing says nothing.
    ok = False
    for t in allowed:
        ok |= hmac.compare_digest(token, t)
    return ok


class Access:
    """Middleware: the token rules above, checked before any resource runs."""

    def __init__(self, versions: VersionService, write_token: str, read_token: str) -> None:
        self.versions = versions
        self.write = [write_token.encode()] if write_token else []
        self.read = [read_token.encode()] + self.write if read_token else []

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Refuse the request (401/403) unless its token, or the version, allows it."""
        if req.method == "OPTIONS":
            return
        if req.method in READS:
            path = req.path
            if not self.read or path == "/" or path.startswith(OPEN_READS) or self.is_public(path):
                return
            self._check(req, self.read, "reads")
        elif self.write:
            self._check(req, self.write, "writes")

    def _check(self, req: falcon.Request, allowed: list[bytes], what: str) -> None:
        token = given_token(req)
        if token is None:
            raise falcon.HTTPUnauthorized(
                title="token required",
                description=f"this server needs a token for {what}: send "
                "'Authorization: Bearer <token>' or ?admintoken=<token>",
                challenges=["Bearer"],
            )
        if not _granted(token, allowed):
            raise falcon.HTTPForbidden(
                title="token refused", description=f"the token given does not allow {what}"
            )

    def is_public(self, path: str) -> bool:
        """Whether ``path`` reads a version that is locked and published in this store."""
        parts = path.split("/")
        if len(parts) > 3 and parts[1] == "api" and parts[2] == "node":
            spec = parts[3]
        elif len(parts) > 2 and parts[1] == "zarr":
            spec = parts[2]
        else:
            return False
        try:
            node = self.versions.resolve(spec).node
        except CasDvidError:
            return False
        if not node.locked or not node.commit:
            return False
        try:
            self.versions.store.backend.get_ref(published_ref(node.commit))
        except NotFoundError:
            return False
        return True
