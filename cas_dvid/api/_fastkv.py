"""A keyvalue GET of one whole value, answered before falcon builds a request (a fast path).

PERF: falcon's Request and Response, its routing, the middleware and the instance
dispatch were about a quarter of a 4 KiB keyvalue GET in-process (29 us of which
8 went there, tools/profile_keyvalue.py), and more under waitress.  This path serves
only the plain case: ``GET /api/node/{uuid}/{data}/key/{k}`` with no query string and
no Range header, on a keyvalue instance, for a key that is there, in an app without
access tokens.  It makes the service calls the handler makes (the repo record and the
head read afresh, so every write is seen as before) and sends the headers falcon
would.  Anything else, a missing key and any error included, goes to falcon, which
answers as it always did: the plain twin ``tests/test_api_fastkv.py`` compares it with.
"""

from __future__ import annotations

from typing import Any

import falcon

from cas_dvid.api._common import CORS_HEADERS
from cas_dvid.datatypes import TypeRegistry
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.versions import VersionService

_HEADERS = (
    ("content-type", "application/octet-stream"),
    ("accept-ranges", "bytes"),
    *CORS_HEADERS,
)
"""What falcon sends for such a GET (the handler's two, then the CORS middleware's)."""


class KeyGets:
    """Answers the plain keyvalue GETs of one app's services."""

    def __init__(self, versions: VersionService, types: TypeRegistry, kv: KeyValueStore) -> None:
        self.versions = versions
        self.types = types
        self.kv = kv

    def answer(self, env: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes] | None:
        """Return the headers and body of the 200 falcon would send, or None to ask falcon."""
        if env["REQUEST_METHOD"] != "GET" or env.get("QUERY_STRING") or "HTTP_RANGE" in env:
            return None
        path: str = env.get("PATH_INFO", "")
        parts = path.split("/")
        if len(parts) != 7 or parts[5] != "key" or parts[2] != "node" or parts[1] != "api":
            return None
        if parts[0]:
            return None
        try:
            if not path.isascii():  # UTF-8 tunnelled as latin-1 (PEP 3333), as falcon reads it
                parts = path.encode("iso-8859-1").decode("utf-8", "replace").split("/")
            at = self.versions.resolve(parts[3])
            inst = at.instance(parts[4])
            if self.types.get(inst.typename).service is not KeyValueStore:
                return None
            value = self.kv.get(at, inst, parts[6])
        except Exception:  # noqa: BLE001 - falcon asks again and words the error
            return None
        if value is None:
            return None
        return [*_HEADERS, ("content-length", str(len(value)))], value


class App(falcon.App[falcon.Request, falcon.Response]):
    """The falcon app, with ``key_gets`` (if set) tried before falcon's own dispatch."""

    key_gets: KeyGets | None = None

    def __call__(self, env: Any, start_response: Any) -> Any:
        """WSGI entry: the fast path's answer, else falcon's."""
        fast = self.key_gets
        if fast is not None:
            got = fast.answer(env)
            if got is not None:
                start_response("200 OK", got[0])
                return [got[1]]
        return super().__call__(env, start_response)
