"""The text of /api/help: every endpoint this server answers, one line each."""

from __future__ import annotations

import cas_dvid

ENDPOINTS: list[tuple[str, str, str]] = [
    ("GET", "/api/help", "this text"),
    ("GET", "/api/heartbeat", "'OK' when the server is up"),
    ("GET", "/api/server/info", "server facts as a JSON object of strings"),
    ("GET", "/api/server/types", "datatypes this server can create"),
    ("GET", "/api/server/compiled-types", "same as types"),
]


def help_text() -> str:
    """Render the endpoint table as plain text."""
    width = max(len(p) for _, p, _ in ENDPOINTS)
    lines = [
        f"cas_dvid {cas_dvid.__version__}: a content-addressed, versioned datastore speaking DVID's API",
        "",
    ]
    lines += [f"{m:<6} {p:<{width}}  {d}" for m, p, d in ENDPOINTS]
    return "\n".join(lines) + "\n"
