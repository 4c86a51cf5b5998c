"""keyvalue endpoints: key, keys, keyrange, keyrangevalues, keyvalues (DVID's messages)."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable

import falcon

from cas_dvid.api import protobuf
from cas_dvid.api._common import Services, read_body, send_json
from cas_dvid.api._instances import RoutedHandler, handles
from cas_dvid.datatypes.keyvalue import KeyValueStore
from cas_dvid.errors import InvalidInputError, MissingDataError
from cas_dvid.strconv import is_uint
from cas_dvid.versions import At, Instance

OCTET = "application/octet-stream"
_RANGE_RE = re.compile(r"bytes=([0-9]*)-([0-9]*)")

Read = tuple[str, int | None, int | None]  # key, inclusive byte_start/byte_end or None


@handles(KeyValueStore)
class KeyValueHandler(RoutedHandler):
    """HTTP for keyvalue instances; one method per endpoint."""

    def __init__(self, services: Services) -> None:
        super().__init__(services)
        self.kv = services.data.of(KeyValueStore)
        self.routes = {
            "key": {
                "GET": self.get_key,
                "HEAD": self.head_key,
                "POST": self.post_key,
                "DELETE": self.delete_key,
            },
            "keys": {"GET": self.get_keys},
            "keyrange": {"GET": self.get_keyrange},
            "keyrangevalues": {"GET": self.get_keyrangevalues},
            "keyvalues": {"GET": self.get_keyvalues, "POST": self.post_keyvalues},
        }

    # -- single keys ----------------------------------------------------------------

    def _value(self, at: At, inst: Instance, args: list[str]) -> tuple[str, bytes]:
        key = _one_key(args)
        value = self.kv.get(at, inst, key)
        if value is None:
            raise MissingDataError(f'Key "{key}" not found')
        return key, value

    def get_key(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET key/{k}: whole, ``byte_start``/``byte_end`` (inclusive), or an HTTP Range."""
        key, value = self._value(at, inst, args)
        resp.content_type = OCTET
        resp.set_header("Accept-Ranges", "bytes")
        header = req.get_header("Range")
        if header:
            first, last = _http_range(header, len(value))
            resp.status = falcon.HTTP_206
            resp.set_header("Content-Range", f"bytes {first}-{last}/{len(value)}")
            resp.data = value[first : last + 1]
            return
        span = _byte_params(req, key, len(value))
        resp.data = value if span is None else value[span[0] : span[1] + 1]

    def head_key(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """HEAD key/{k}: 200 if present, 404 if not."""
        self._value(at, inst, args)

    def post_key(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST key/{k}: the body is the value."""
        key = _one_key(args)
        body = read_body(req, self.s.config.max_body_bytes)
        self.kv.put_many(at, inst, {key: body}, 'POST on endpoint "key"')

    def delete_key(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """DELETE key/{k}: hide it at this version."""
        self.kv.delete(at, inst, _one_key(args), 'DELETE on endpoint "key"')

    # -- many keys ------------------------------------------------------------------------

    def get_keys(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET keys: every key, sorted."""
        send_json(resp, self.kv.keys(at, inst))

    def get_keyrange(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET keyrange/{k1}/{k2}: keys in [k1, k2]."""
        first, last = _two_keys(args, "keyrange")
        send_json(resp, self.kv.keys(at, inst, first, last) if first <= last else [])

    def get_keyrangevalues(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET keyrangevalues/{k1}/{k2} as protobuf (default), JSON or tar."""
        first, last = _two_keys(args, "keyrangevalues")
        items = list(self.kv.items(at, inst, first, last)) if first <= last else []
        _send_items(req, resp, items)

    def get_keyvalues(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """GET keyvalues: the body names keys (protobuf Keys, or JSON with json/tar=true)."""
        body = read_body(req, self.s.config.max_json_bytes)
        try:
            if _output(req) != "protobuf":
                reads = _json_reads(body)
            else:
                keys, ranges = protobuf.decode_keys(body)
                reads = [(k, None, None) for k in keys] + [(k, s, e) for k, s, e in ranges]
            found = self.kv.get_many(at, inst, list({k for k, _, _ in reads if k}))
            items = [(k, _slice(k, found.get(k), s, e)) for k, s, e in reads]
        except InvalidInputError as exc:
            n = len(reads) if "reads" in locals() else 0
            raise InvalidInputError(
                f'GET /keyvalues on {n} keys, data "{inst.name}": {exc}'
            ) from None
        _send_items(req, resp, items)

    def post_keyvalues(
        self, req: falcon.Request, resp: falcon.Response, at: At, inst: Instance, args: list[str]
    ) -> None:
        """POST keyvalues: a protobuf KeyValues, written in one batch (all or nothing)."""
        body = read_body(req, self.s.config.max_body_bytes)
        items = dict(protobuf.decode_keyvalues(body))
        if items:
            self.kv.put_many(at, inst, items, 'POST on endpoint "keyvalues"')


def _one_key(args: list[str]) -> str:
    if not args or not args[0]:
        raise InvalidInputError("expect key string to follow 'key' endpoint")
    if len(args) > 1:
        # NOTE: DVID silently uses the first segment; acting on a different key than
        # the client named would lose data, so this is refused instead.
        raise InvalidInputError(
            "key must not contain '/': DVID splits instance paths on '/', even when escaped as %2F"
        )
    return args[0]


def _two_keys(args: list[str], endpoint: str) -> tuple[str, str]:
    if len(args) < 2 or not args[0] or not args[1]:
        raise InvalidInputError(f"expect beginning and end keys to follow '{endpoint}' endpoint")
    return args[0], args[1]


def _output(req: falcon.Request) -> str:
    tar = req.get_param("tar") == "true" or req.get_param("jsontar") == "true"
    js = req.get_param("json") == "true"
    if tar and js:
        raise InvalidInputError("can only specify tar or json output, not both")
    return "tar" if tar else "json" if js else "protobuf"


def _http_range(header: str, size: int) -> tuple[int, int]:
    """Return an RFC 7233 single range (an extension: DVID offers only byte_start/byte_end)."""
    m = _RANGE_RE.fullmatch(header.strip())
    if m is None or m.groups() == ("", ""):
        raise InvalidInputError(
            f"unsupported Range header {header!r}: expected bytes=a-b, a- or -n"
        )
    a, b = (_range_int(g) for g in m.groups())
    if a is None:
        first, last = max(0, size - (b or 0)), size - 1
    else:
        first, last = a, size - 1 if b is None else min(b, size - 1)
    if first >= size or first > last:
        raise falcon.HTTPRangeNotSatisfiable(size)
    return first, last


def _range_int(digits: str) -> int | None:
    """Return a Range bound; bounds past any value's size (up to thousands of digits) are 2**64.

    Python's ``int()`` refuses strings over 4300 digits with a ValueError (a 500 before).
    """
    if digits == "":
        return None
    return int(digits) if len(digits) <= 20 else 1 << 64


def _json_fault(exc: Exception) -> str:
    """Say why json.loads gave up past its syntax errors: deep nesting or a huge integer."""
    return "JSON body is nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:80]


def _uint(text: str, name: str) -> int:
    if not is_uint(text):
        raise InvalidInputError(f'{name} must be an unsigned integer, got "{text[:40]}"')
    return int(text)


def _byte_params(req: falcon.Request, key: str, size: int) -> tuple[int, int] | None:
    if not req.query_string:  # PERF: the usual GET names no span
        return None
    start, end = req.get_param("byte_start"), req.get_param("byte_end")
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise InvalidInputError(f'range read for key "{key}" requires both byte_start and byte_end')
    return _check_span(key, _uint(start, "byte_start"), _uint(end, "byte_end"), size)


def _check_span(key: str, first: int, last: int, size: int) -> tuple[int, int]:
    if first > last:
        raise InvalidInputError(f'byte_start {first} must be <= byte_end {last} for key "{key}"')
    if first >= size:
        raise InvalidInputError(
            f'byte_start {first} is outside value for key "{key}" with {size} bytes'
        )
    if last >= size:
        raise InvalidInputError(
            f'byte_end {last} is outside value for key "{key}" with {size} bytes'
        )
    return first, last


def _slice(key: str, value: bytes | None, start: int | None, end: int | None) -> bytes | None:
    if value is None or start is None or end is None:
        return value
    first, last = _check_span(key, start, end, len(value))
    return value[first : last + 1]


def _json_reads(body: bytes) -> list[Read]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(str(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInputError(_json_fault(exc)) from None
    if not isinstance(doc, list):
        raise InvalidInputError("expected a JSON list of keys or of {key, byte_start, byte_end}")
    reads: list[Read] = []
    for item in doc:
        if isinstance(item, str):
            reads.append((item, None, None))
        elif isinstance(item, dict) and isinstance(item.get("key"), str):
            s, e = item.get("byte_start"), item.get("byte_end")
            if (s is None) != (e is None):
                raise InvalidInputError(
                    f'range read for key "{item["key"]}" requires both byte_start and byte_end'
                )
            if s is not None and not (
                isinstance(s, int) and isinstance(e, int) and s >= 0 and e >= 0
            ):
                raise InvalidInputError(
                    f"byte_start and byte_end must be unsigned integers in {item}"
                )
            reads.append((item["key"], s, e))
        else:
            raise InvalidInputError(
                f"expected a key string or {{key, byte_start, byte_end}}, got {item!r}"
            )
    return reads


def _send_items(
    req: falcon.Request, resp: falcon.Response, items: Iterable[tuple[str, bytes | None]]
) -> None:
    out = _output(req)
    if out == "tar":
        resp.content_type = "application/tar"
        resp.data = _tar(items)
    elif out == "json":
        resp.content_type = falcon.MEDIA_JSON
        resp.data = _json_object(items, check=req.get_param("check") == "true")
    else:
        resp.content_type = OCTET
        resp.data = protobuf.encode_keyvalues((k, v or b"") for k, v in items)


def _json_object(items: Iterable[tuple[str, bytes | None]], check: bool) -> bytes:
    """``{"key":<raw value>,...}``: values spliced in verbatim, ``{}`` for missing or empty."""
    parts = []
    for key, value in items:
        raw = value or b"{}"
        if check:
            try:
                json.loads(raw)
            except (ValueError, RecursionError):
                # NOTE: DVID answers 200 with a truncated body here; a clean 400 loses nothing.
                raise InvalidInputError(f'bad JSON for key "{key}"') from None
        parts.append(json.dumps(key, ensure_ascii=False).encode() + b":" + raw)
    return b"{" + b",".join(parts) + b"}"


def _tar(items: Iterable[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for key, value in items:
            data = value or b""
            info = tarfile.TarInfo(key)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
