"""Helpers every resource shares: bodies with limits, JSON in and out, the services bundle."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import falcon

from cas_dvid.api.budget import MemoryBudget
from cas_dvid.api.config import ServerConfig
from cas_dvid.datatypes import DataServices, TypeRegistry
from cas_dvid.errors import InvalidInputError, TooLargeError
from cas_dvid.objects import ObjectStore
from cas_dvid.versions import VersionService

CORS_HEADERS = (
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", "ETag, Content-Length, Content-Range, Content-Type"),
)
"""The CORS headers of every answer (``app._Cors``, and the keyvalue GET fast path)."""


@dataclass(frozen=True, slots=True)
class Services:
    """What resources are handed: versions, the datatypes and their services, the config."""

    versions: VersionService
    types: TypeRegistry
    data: DataServices
    config: ServerConfig
    budget: MemoryBudget

    @property
    def store(self) -> ObjectStore:
        """The object store under everything."""
        return self.versions.store


def read_body(req: falcon.Request, limit: int) -> bytes:
    """Return the whole request body, refusing bodies over ``limit`` and bodies cut short."""
    length = req.content_length
    if length is not None and length > limit:
        raise TooLargeError(f"request body of {length} bytes is over the {limit}-byte limit")
    data = req.bounded_stream.read(limit + 1)
    if len(data) > limit:
        raise TooLargeError(f"request body is over the {limit}-byte limit")
    if length is not None and len(data) != length:
        raise InvalidInputError(f"request body cut off: got {len(data)} of {length} bytes")
    return bytes(data)


def read_json(req: falcon.Request, limit: int, *, required: bool = False) -> Any:
    """Parse a JSON body; an empty body is ``{}`` unless ``required``."""
    raw = read_body(req, limit)
    if not raw.strip():
        if required:
            raise InvalidInputError("expected a JSON body, got an empty one")
        return {}
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"Malformed JSON request in body: {exc}") from None
    except (ValueError, RecursionError) as exc:
        # NOTE: deep nesting and ints over 4300 digits were 500s.
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]
        raise InvalidInputError(f"Malformed JSON request in body: {why}") from None


def json_object(doc: Any, what: str = "request") -> dict[str, Any]:
    """Insist the JSON is an object."""
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


def config_object(doc: Any, what: str = "request") -> dict[str, Any]:
    """Return a JSON object with its keys lower-cased: DVID reads config keys in any case."""
    return {k.lower(): v for k, v in json_object(doc, what).items()}


def string_field(doc: dict[str, Any], name: str, default: str = "") -> str:
    """Return a string member (case-sensitive), or ``default``; other types are refused."""
    value = doc.get(name, default)
    if not isinstance(value, str):
        raise InvalidInputError(f"{name!r} must be a string, got {value!r}")
    return value


def string_list(doc: dict[str, Any], name: str) -> list[str]:
    """Return a list-of-strings member (absent -> [])."""
    value = doc.get(name, [])
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InvalidInputError(f"{name!r} must be a list of strings, got {value!r}")
    return value


def go_json(doc: Any) -> bytes:
    """JSON as Go's encoding/json writes it: compact, UTF-8, with <, > and & escaped."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def posted_member(req: falcon.Request, limit: int, name: str) -> Any:
    """Return a POSTed JSON object that must have ``name``; DVID's message when it lacks it."""
    doc = json_object(read_json(req, limit))
    if name not in doc:
        raise InvalidInputError(f"Could not find '{name}' value in POSTed JSON.")
    return doc


def send_json(resp: falcon.Response, doc: Any) -> None:
    """JSON out, as DVID's Go encoder writes it."""
    resp.content_type = falcon.MEDIA_JSON
    resp.data = go_json(doc)


def send_pair(resp: falcon.Response, key: str, value: str, **extra: str) -> None:
    """DVID's hand-built one-pair answers, ``{"child": "<uuid>"}`` (note the space)."""
    resp.content_type = falcon.MEDIA_JSON
    more = "".join(f", {json.dumps(k)}: {json.dumps(v)}" for k, v in extra.items())
    resp.data = f"{{{json.dumps(key)}: {json.dumps(value)}{more}}}".encode()
