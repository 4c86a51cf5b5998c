"""keyvalue endpoints: key, keys, keyrange, keyrangevalues, keyvalues."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable

import falcon

from cas_dvid.api import protobuf
from cas_dvid.api._common import Services, read_body, send_json
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.errors import InvalidInputError, MissingDataError
from cas_dvid.versions import At, Instance

OCTET = "application/octet-stream"
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)$")

Handler = Callable[[falcon.Request, falcon.Response, At, Instance, list[str]], None]


class KeyValueHandler:
    """HTTP for keyvalue instances; one method per endpoint."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.kv = KeyValueStore(services.versions)
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "key"): self.get_key,
            ("HEAD", "key"): self.head_key,
            ("POST", "key"): self.post_key,
            ("PUT", "key"): self.post_key,
            ("DELETE", "key"): self.delete_key,
            ("GET", "keys"): self.get_keys,
            ("GET", "keyrange"): self.get_keyrange,
            ("GET", "keyrangevalues"): self.get_keyrangevalues,
            ("GET", "keyvalues"): self.get_keyvalues,
            ("POST", "keyvalues"): self.post_keyvalues,
        }

    def handle(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, endpoint: str, args: list[str]
    ) -> None:
        """Dispatch on method and endpoint."""
        fn = self.routes.get((req.method, endpoint))
        if fn is None:
            raise InvalidInputError(
                f"Bad API call: keyvalue instance {inst.name!r} has no {req.method} endpoint {endpoint!r}"
            )
        fn(req, resp, at, inst, args)

    # -- single keys ----------------------------------------------------------------

    def _value(self, at: At, inst: Instance, args: list[str]) -> tuple[str, bytes]:
        key = _one_key(args)
        value = self.kv.get(at, inst, key)
        if value is None:
            raise MissingDataError(f'Key "{key}" not found')
        return key, value

    def get_key(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """GET key/{k}, whole or a byte range."""
        _, value = self._value(at, inst, args)
        resp.content_type = OCTET
        resp.set_header("Accept-Ranges", "bytes")
        span = _byte_span(req, len(value))
        if span is None:
            resp.data = value
            return
        first, last, partial = span
        resp.data = value[first : last + 1]
        if partial:
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", f"bytes {first}-{last}/{len(value)}")

    def head_key(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """HEAD key/{k}: 200 if present, 404 if not."""
        self._value(at, inst, args)
        resp.content_type = OCTET

    def post_key(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """POST key/{k}: the body is the value."""
        key = _one_key(args)
        body = read_body(req, self.s.config.max_body_bytes)
        self.kv.put_many(at, inst, {key: body}, 'POST on endpoint "key"')

    def delete_key(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """DELETE key/{k}: hide it at this version."""
        self.kv.delete(at, inst, _one_key(args), 'DELETE on endpoint "key"')

    # -- many keys ------------------------------------------------------------------------

    def get_keys(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """GET keys: every key, sorted."""
        send_json(resp, self.kv.keys(at, inst))

    def get_keyrange(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """GET keyrange/{k1}/{k2}: keys in [k1, k2]."""
        first, last = _two_keys(args)
        send_json(resp, self.kv.keys(at, inst, first, last))

    def get_keyrangevalues(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET keyrangevalues/{k1}/{k2} as protobuf (default), JSON or tar."""
        first, last = _two_keys(args)
        _send_items(req, resp, list(self.kv.items(at, inst, first, last)))

    def get_keyvalues(self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]) -> None:
        """GET keyvalues with a body naming keys (protobuf Keys, or a JSON list)."""
        body = read_body(req, self.s.config.max_json_bytes)
        if _flag(req, "json") or _flag(req, "tar") or _flag(req, "jsontar"):
            keys, ranges = _json_keys(body), []
        else:
            keys, ranges = protobuf.decode_keys(body)
        found = self.kv.get_many(at, inst, [k for k in keys if k])
        items: list[tuple[str, bytes | None]] = [(k, found.get(k)) for k in keys]
        for first, last in ranges:
            items.extend(self.kv.items(at, inst, first, last))
        _send_items(req, resp, items)

    def post_keyvalues(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST keyvalues: a protobuf KeyValues, written in one batch."""
        body = read_body(req, self.s.config.max_body_bytes)
        items = dict(protobuf.decode_keyvalues(body))
        if "" in items:
            raise InvalidInputError("key must not be empty")
        if items:
            self.kv.put_many(at, inst, items, 'POST on endpoint "keyvalues"')


def _one_key(args: list[str]) -> str:
    if not args or not args[0]:
        raise InvalidInputError("missing key: expected key/{key}")
    if len(args) > 1:
        raise InvalidInputError(
            "key must not contain '/': DVID splits instance paths on '/', even when escaped as %2F"
        )
    return args[0]


def _two_keys(args: list[str]) -> tuple[str, str]:
    if len(args) != 2 or not all(args):
        raise InvalidInputError("expected two keys: .../{first key}/{last key}")
    return args[0], args[1]


def _flag(req: falcon.Request, name: str) -> bool:
    value = req.get_param(name)
    return value is not None and value.lower() in ("true", "1", "on", "")


def _byte_span(req: falcon.Request, size: int) -> tuple[int, int, bool] | None:
    """(first, last, is_partial) from a Range header or byte_start/byte_end, or None."""
    header = req.get_header("Range")
    start, end = req.get_param("byte_start"), req.get_param("byte_end")
    if header and (start is not None or end is not None):
        raise InvalidInputError("use either a Range header or byte_start/byte_end, not both")
    if header:
        m = _RANGE_RE.match(header.strip())
        if m is None or m.groups() == ("", ""):
            raise InvalidInputError(f"unsupported Range header {header!r}: expected bytes=a-b, a- or -n")
        a, b = m.groups()
        if a == "":
            first, last = max(0, size - int(b)), size - 1
        else:
            first, last = int(a), size - 1 if b == "" else min(int(b), size - 1)
        if first >= size or first > last:
            raise falcon.HTTPRangeNotSatisfiable(size)
        return first, last, True
    if start is None and end is None:
        return None
    try:
        first = int(start) if start is not None else 0
        last = int(end) if end is not None else size - 1
    except ValueError:
        raise InvalidInputError(f"byte_start/byte_end must be integers, got {start!r}/{end!r}") from None
    if first < 0 or last < first or first >= size:
        raise InvalidInputError(f"byte range {first}-{last} is outside the value of {size} bytes")
    return first, min(last, size - 1), False


def _json_keys(body: bytes) -> list[str]:
    try:
        doc = json.loads(body or b"[]")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"malformed JSON list of keys: {exc}") from None
    if not isinstance(doc, list) or not all(isinstance(k, str) for k in doc):
        raise InvalidInputError("expected a JSON list of key strings")
    return doc


def _send_items(req: falcon.Request, resp: falcon.Response, items: Iterable[tuple[str, bytes | None]]) -> None:
    if _flag(req, "tar"):
        resp.content_type = "application/tar"
        resp.data = _tar(items)
    elif _flag(req, "json"):
        check = _flag(req, "check")
        parts = []
        for key, value in items:
            raw = b"{}" if value is None else value
            if check:
                try:
                    json.loads(raw)
                except ValueError:
                    raise InvalidInputError(f"value of key {key!r} is not valid JSON") from None
            parts.append(json.dumps(key).encode() + b":" + raw)
        resp.content_type = falcon.MEDIA_JSON
        resp.data = b"{" + b",".join(parts) + b"}"
    else:
        resp.content_type = "application/x-protobuf"
        resp.data = protobuf.encode_keyvalues((k, v or b"") for k, v in items)


def _tar(items: Iterable[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, value in items:
            data = value or b""
            info = tarfile.TarInfo(key)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
