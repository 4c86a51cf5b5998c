"""The web console at ``/``: static HTML, ES modules and CSS from ``api/console/``.

No build step: the files in the package folder are served as they are, and the
page talks to the server only through DVID's HTTP API (and ``/api/cas/diff``).
The set of files is fixed when the app is built, so no request can name a path
outside the folder; each answer's ETag is the BLAKE3 of its bytes, and a matching
``If-None-Match`` is a 304.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import blake3
import falcon

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True, slots=True)
class _File:
    data: bytes
    content_type: str
    etag: str


def _load_files() -> dict[str, _File]:
    """Every servable file of the console folder, by name."""
    folder = resources.files(__package__ or "cas_dvid.api") / "console"
    out = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in TYPES:
            data = entry.read_bytes()
            out[entry.name] = _File(data, TYPES[suffix], blake3.blake3(data).hexdigest()[:32])
    return out


class ConsoleFiles:
    """GET / (index.html) and GET /console/{name}."""

    def __init__(self) -> None:
        """Read the console's files once."""
        self.files = _load_files()

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "index.html") -> None:
        """Answer one file, or a 304 when the client holds this version of it."""
        f = self.files.get(name)
        if f is None:
            raise falcon.HTTPNotFound(description=f"the console has no file {name!r}")
        resp.etag = f.etag
        resp.cache_control = ["no-cache"]
        if any(str(t) == f.etag for t in req.if_none_match or []):
            resp.status = falcon.HTTP_304
            return
        resp.content_type = f.content_type
        resp.data = f.data


def add_routes(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Serve the console at ``/`` and its files under ``/console/``."""
    files = ConsoleFiles()
    app.add_route("/", files)
    app.add_route("/console/{name}", files)
