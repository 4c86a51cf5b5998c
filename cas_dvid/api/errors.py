"""Map the error tree to DVID's plain-text responses, in one place."""

from __future__ import annotations

import logging
from typing import Any

import falcon

from cas_dvid.errors import (
    BackendError,
    CasDvidError,
    ConflictError,
    CorruptObjectError,
    InvalidInputError,
    LockedError,
    MissingDataError,
    MissingObjectError,
    NotFoundError,
    TooLargeError,
)

log = logging.getLogger("cas_dvid.api")
TEXT = "text/plain; charset=utf-8"

# NOTE: DVID answers 400 for nearly everything, unknown UUIDs and instances included;
# only a missing key-value key or label is a 404 (dvid-api.md section 0).
_STATUS: list[tuple[type[CasDvidError], str]] = [
    (TooLargeError, falcon.HTTP_413),
    (MissingDataError, falcon.HTTP_404),
    (LockedError, falcon.HTTP_400),
    (InvalidInputError, falcon.HTTP_400),
    (ConflictError, falcon.HTTP_409),
    (NotFoundError, falcon.HTTP_400),
    (CorruptObjectError, falcon.HTTP_500),
    (BackendError, falcon.HTTP_503),
]


def dvid_text(message: str, path: str) -> str:
    """Return DVID's error body, ``<message> (<url path>).``."""
    return f"{message} ({path}).\n"


def status_for(exc: CasDvidError) -> str:
    """Return the HTTP status for an error category."""
    status = getattr(exc, "http_status", None)
    if isinstance(status, str):
        return status
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return falcon.HTTP_500


def handle_cas_error(
    req: falcon.Request, resp: falcon.Response, exc: CasDvidError, params: Any
) -> None:
    """Falcon error handler: plain text, DVID style; corruption and backend faults are logged."""
    resp.status = status_for(exc)
    if isinstance(exc, CorruptObjectError | BackendError | MissingObjectError):
        log.error("%s %s: %s", req.method, req.path, exc)
    retry = getattr(exc, "retry_after", None)
    if retry is not None:
        resp.set_header("Retry-After", str(retry))
    resp.content_type = TEXT
    resp.text = getattr(exc, "body", None) or dvid_text(str(exc), req.path)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError, params: Any
) -> None:
    """Falcon's own errors (unknown route, bad method) as plain text too."""
    resp.status = exc.status
    resp.content_type = TEXT
    message = exc.description or exc.title or str(exc.status)
    resp.text = dvid_text(message, req.path)
    headers = exc.headers or {}
    for name, value in dict(headers).items():
        resp.set_header(name, value)


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, exc: Exception, params: Any
) -> None:
    """Answer a bug with a 500: log the traceback, reply in plain text, not falcon's JSON."""
    if isinstance(exc, falcon.HTTPError):
        handle_http_error(req, resp, exc, params)
        return
    log.exception("%s %s failed", req.method, req.path)
    resp.status = falcon.HTTP_500
    resp.content_type = TEXT
    resp.text = dvid_text(f"internal error: {type(exc).__name__}: {exc}", req.path)
