"""Decode JSON lists of int32 tuples with the error wording of Go's ``encoding/json``.

DVID unmarshals ROI spans into ``[]dvid.Span`` (``[4]int32``) and ptquery points
into ``[]dvid.Point3d`` (``[3]int32``). Go's messages for wrong types are
reproduced (``json: cannot unmarshal number 1.5 into Go value of type int32``);
syntax errors get Go's common phrasings, not always its exact text.

NOTE: Go pads a short inner array with zeros, drops the extra items of a long
one and leaves ``null`` items as zeros, all silently; here a wrong length or a
``null`` is an error instead, since such input is nearly always a client bug.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import numpy.typing as npt

from cas_dvid.errors import InvalidInputError

_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1


class _FloatLiteral(str):
    """A JSON number with a fraction or exponent, kept as the text that came."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise InvalidInputError(f"invalid character {name[0]!r} looking for beginning of value")


def _go_kind(value: object) -> str:
    """Name the JSON kind of a value as Go's UnmarshalTypeError does."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, _FloatLiteral):
        return f"number {value}"
    if isinstance(value, int):
        return f"number {value}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _syntax_message(exc: json.JSONDecodeError) -> str:
    rest = exc.doc[exc.pos :]
    if not rest.strip():
        return "unexpected end of JSON input"
    char = rest[0]
    if exc.msg.startswith("Extra data"):
        return f"invalid character {char!r} after top-level value"
    if exc.msg.startswith("Expecting value"):
        return f"invalid character {char!r} looking for beginning of value"
    if exc.msg.startswith("Expecting ','"):
        return f"invalid character {char!r} after array element"
    return f"invalid character {char!r} in JSON input ({exc.msg})"


BytesLike = bytes | bytearray | memoryview


def loads(body: BytesLike | str) -> Any:
    """Parse JSON as Go would accept it: no NaN/Infinity, floats kept as literal text."""
    text = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
    try:
        return json.loads(text, parse_float=_FloatLiteral, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(_syntax_message(exc)) from None
    except InvalidInputError:
        raise
    except (ValueError, RecursionError) as exc:
        # NOTE: ints over 4300 digits (ValueError) and deep nesting were 500s.
        raise InvalidInputError(f"invalid JSON input: {str(exc)[:80]}") from None


def int32_tuples(doc: Any, width: int, go_type: str, what: str) -> npt.NDArray[np.int64]:
    """Convert a decoded JSON list of ``width``-int32 lists to an (n, width) int64 array.

    Args:
        doc: the decoded document (``None`` for JSON ``null``, which Go takes as empty).
        width: items per tuple (4 for spans, 3 for points).
        go_type: Go's element type name for messages (``dvid.Span``).
        what: how to name one tuple in messages (``span [z, y, x0, x1]``).

    Raises:
        InvalidInputError: for the first bad item in document order.

    """
    if doc is None:
        return np.zeros((0, width), dtype=np.int64)
    if not isinstance(doc, list):
        kind = _go_kind(doc).split(" ")[0]
        raise InvalidInputError(f"json: cannot unmarshal {kind} into Go value of type []{go_type}")
    # PERF: one cheap pass for the well-formed case; the slow pass only names the error.
    if all(type(item) is list and len(item) == width for item in doc) and all(
        type(v) is int for item in doc for v in item
    ):
        try:
            arr = np.array(doc, dtype=np.int64).reshape(len(doc), width)
        except OverflowError:
            arr = None
        if arr is not None and (not arr.size or (arr.min() >= _I32_MIN and arr.max() <= _I32_MAX)):
            return arr
    for i, item in enumerate(doc):
        _check_tuple(item, i, width, go_type, what)
    return np.array(doc, dtype=np.int64).reshape(len(doc), width)


def _check_tuple(item: Any, index: int, width: int, go_type: str, what: str) -> None:
    if item is None or not isinstance(item, list):
        if item is None:
            raise InvalidInputError(f"expected a {what} at item {index}, got null")
        kind = _go_kind(item).split(" ")[0]
        raise InvalidInputError(f"json: cannot unmarshal {kind} into Go value of type {go_type}")
    for v in item:
        if isinstance(v, bool) or not isinstance(v, int) or not _I32_MIN <= v <= _I32_MAX:
            if v is None:
                raise InvalidInputError(f"expected a {what} at item {index}, got null in {item}")
            raise InvalidInputError(
                f"json: cannot unmarshal {_go_kind(v)} into Go value of type int32"
            )
    if len(item) != width:
        raise InvalidInputError(
            f"expected a {what} of {width} integers at item {index}, got {len(item)}: {item}"
        )
