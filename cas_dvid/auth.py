"""The write token a client sends: ``CAS_DVID_WRITE_TOKEN`` in the environment.

A server started with ``serve --write-token-file F`` refuses writes without
``Authorization: Bearer <token>``; the CLI, ``DvidClient`` and push/pull to a server
send the token from this variable when it is set (never from an argument, so it
stays out of shell history and process listings).
"""

from __future__ import annotations

import os

TOKEN_ENV = "CAS_DVID_WRITE_TOKEN"


def auth_headers() -> dict[str, str]:
    """Return the Authorization header for the token in the environment (none if unset)."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}
